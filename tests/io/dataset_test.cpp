#include "io/dataset.h"

#include <catch2/catch.hpp>
#include <opencv2/imgcodecs.hpp>
#include <zip.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/error.h"
#include "support/requires.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using medattn::io::Dataset;
using medattn::io::DatasetOptions;
using medattn::io::load_dataset;

namespace {

using medattn::testing::TempDir;

void write_png(const fs::path& path, int value = 128) {
  fs::create_directories(path.parent_path());
  REQUIRE(cv::imwrite(path.string(), cv::Mat(4, 4, CV_8UC1, cv::Scalar(value))));
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const medattn::Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::vector<std::string> paths_of(const Dataset& ds) {
  std::vector<std::string> out;
  for (const auto& s : ds.samples) out.push_back(s.path);
  return out;
}

std::vector<int> labels_of(const Dataset& ds) {
  std::vector<int> out;
  for (const auto& s : ds.samples) out.push_back(s.label);
  return out;
}

// A minimal .npy (version 1.0) as numpy writes it.
std::string make_npy(const std::string& descr, const std::string& shape, const std::string& data) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + dict.size() + 1;
  dict += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(dict.size() & 0xFF);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict + data;
}

void write_npz(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& members) {
  int err = 0;
  zip_t* z = zip_open(path.string().c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  REQUIRE(z != nullptr);
  for (const auto& [name, bytes] : members) {
    zip_source_t* src = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
    REQUIRE(zip_file_add(z, (name + ".npy").c_str(), src, ZIP_FL_OVERWRITE) >= 0);
  }
  REQUIRE(zip_close(z) == 0);
}

}  // namespace

TEST_CASE("class folders: recursive, sorted, non-images skipped with a notice", "[io][dataset]") {
  TempDir tmp("folders");
  write_png(tmp.path / "normal/b.png");
  write_png(tmp.path / "normal/a.png");
  write_png(tmp.path / "normal/sub/deeper/c.png");
  write_png(tmp.path / "Pneumonia/x.png");
  write_text(tmp.path / "normal/.DS_Store", std::string("\0\0\0\1Bud1", 8));
  write_text(tmp.path / "normal/notes.txt", "some notes");
  write_text(tmp.path / "Pneumonia/empty.png", "");  // empty: not an image whatever its name
  write_png(tmp.path / "Pneumonia/.hidden.png");
  write_png(tmp.path / "Pneumonia/.thumbs/t.png");
  write_text(tmp.path / "README.md", "# data");
  fs::create_directories(tmp.path / ".git");

  const Dataset ds = load_dataset(tmp.path.string());
  // Classes are the folder names, sorted (byte order: upper case first).
  CHECK(ds.classes == std::vector<std::string>{"Pneumonia", "normal"});
  CHECK(paths_of(ds) == std::vector<std::string>{tmp / "Pneumonia/x.png", tmp / "normal/a.png",
                                                 tmp / "normal/b.png", tmp / "normal/sub/deeper/c.png"});
  CHECK(labels_of(ds) == std::vector<int>{0, 1, 1, 1});
  for (const auto& s : ds.samples) {
    CHECK(s.pixels.empty());
    CHECK(s.group.empty());
  }
  CHECK(ds.notices == std::vector<std::string>{
                          "skipped '" + (tmp / ".git") + "': hidden folder",
                          "skipped '" + (tmp / "Pneumonia/.hidden.png") + "': hidden file",
                          "skipped '" + (tmp / "Pneumonia/.thumbs") + "': hidden folder",
                          "skipped '" + (tmp / "Pneumonia/empty.png") + "': not an image",
                          "skipped '" + (tmp / "README.md") + "': not in a class folder",
                          "skipped '" + (tmp / "normal/.DS_Store") + "': not an image",
                          "skipped '" + (tmp / "normal/notes.txt") + "': not an image",
                      });
}

TEST_CASE("class folders: classes from options match case-insensitively, in the given order",
          "[io][dataset]") {
  TempDir tmp("folders_opts");
  write_png(tmp.path / "NORMAL/a.png");
  write_png(tmp.path / "pneumonia/b.png");
  DatasetOptions options;
  options.classes = {"Pneumonia", "Normal", "covid"};
  const Dataset ds = load_dataset(tmp.path.string(), options);
  CHECK(ds.classes == options.classes);
  CHECK(paths_of(ds) == std::vector<std::string>{tmp / "NORMAL/a.png", tmp / "pneumonia/b.png"});
  CHECK(labels_of(ds) == std::vector<int>{1, 0});
  CHECK(ds.notices.empty());

  write_png(tmp.path / "tuberculosis/c.png");
  CHECK(error_of([&] { load_dataset(tmp.path.string(), options); }) ==
        "cannot read dataset '" + tmp.path.string() +
            "': folder 'tuberculosis' is not one of the classes (Pneumonia, Normal, covid)");
}

TEST_CASE("class folders: missing, empty and image-less datasets are errors", "[io][dataset]") {
  TempDir tmp("folders_bad");
  CHECK(error_of([&] { load_dataset(tmp / "nope"); }) ==
        "cannot read dataset '" + (tmp / "nope") + "': no such file or directory");
  CHECK(error_of([&] { load_dataset(tmp.path.string()); }) ==
        "cannot read dataset '" + tmp.path.string() + "': no class folders (expected DATA/<class>/<images>)");
  write_text(tmp.path / "a/readme.txt", "x");
  CHECK(error_of([&] { load_dataset(tmp.path.string()); }) ==
        "cannot read dataset '" + tmp.path.string() + "': no images in the class folders");
  write_png(tmp.path / "a/img.png");
  CHECK(error_of([&] { load_dataset(tmp / "a/img.png"); }) ==
        "cannot read dataset '" + (tmp / "a/img.png") +
            "': is a png image, not a dataset (expected a class-folder directory, a CSV or a .npz)");
}

TEST_CASE("CSV: quoted fields, relative paths, split filter, groups, case-insensitive classes",
          "[io][dataset]") {
  TempDir tmp("csv");
  const std::string csv = tmp / "meta/data.csv";
  write_text(csv,
             "\xEF\xBB\xBFPath,label,age,split,group\r\n"
             "img/b.png,mel,50,train,p1\r\n"
             "\"img/with, comma.png\",nv,\"40\",val,p2\r\n"
             "/abs/c.png,nv,,train,p3\r\n"
             "\r\n"
             "\"img/\"\"quoted\"\".png\",bcc,\"multi\nline\",train,p1\r\n"
             "img/a.png,mel,30,train,p4\r\n");

  const Dataset all = load_dataset(csv);
  CHECK(all.classes == std::vector<std::string>{"bcc", "mel", "nv"});
  const std::string dir = tmp / "meta";
  CHECK(paths_of(all) == std::vector<std::string>{"/abs/c.png", dir + "/img/\"quoted\".png",
                                                  dir + "/img/a.png", dir + "/img/b.png",
                                                  dir + "/img/with, comma.png"});
  CHECK(labels_of(all) == std::vector<int>{2, 0, 1, 1, 2});
  CHECK(all.samples[0].group == "p3");
  CHECK(all.samples[1].group == "p1");
  CHECK(all.notices.empty());

  DatasetOptions val;
  val.split = "val";
  const Dataset v = load_dataset(csv, val);
  // Classes come from every row, so a split keeps the label numbering of the whole file.
  CHECK(v.classes == all.classes);
  REQUIRE(v.samples.size() == 1);
  CHECK(v.samples[0].path == dir + "/img/with, comma.png");
  CHECK(v.samples[0].label == 2);
  CHECK(v.samples[0].group == "p2");

  DatasetOptions named;
  named.classes = {"NV", "MEL", "BCC"};
  named.split = "train";
  const Dataset t = load_dataset(csv, named);
  CHECK(t.classes == named.classes);
  CHECK(labels_of(t) == std::vector<int>{0, 2, 1, 1});

  DatasetOptions test;
  test.split = "test";
  CHECK(error_of([&] { load_dataset(csv, test); }) ==
        "cannot read CSV '" + csv + "': no rows with split 'test' (splits: train, val)");

  DatasetOptions unknown;
  unknown.classes = {"mel", "nv"};
  CHECK(error_of([&] { load_dataset(csv, unknown); }) ==
        "cannot read CSV '" + csv + "': line 6: unknown label 'bcc' (classes: mel, nv)");
}

TEST_CASE("CSV: malformed files give one-line errors with the line number", "[io][dataset]") {
  TempDir tmp("csv_bad");
  auto check = [&](const std::string& text, const std::string& why, const DatasetOptions& options = {}) {
    const std::string csv = tmp / "d.csv";
    write_text(csv, text);
    CHECK(error_of([&] { load_dataset(csv, options); }) == "cannot read CSV '" + csv + "': " + why);
  };
  check("", "empty file (expected a header with path,label)");
  check("path,diagnosis\na.png,x\n", "header has no 'label' column (columns: path, diagnosis)");
  check("file,label\na.png,x\n", "header has no 'path' column (columns: file, label)");
  check("path,label\na.png,x\nb.png\n", "line 3: expected 2 fields, got 1");
  check("path,label\na.png,x\n\"b.png,y\n", "line 3: unterminated quoted field");
  check("path,label\na.png,\n", "line 2: empty label");
  check("path,label\n,x\n", "line 2: empty path");
  check("path,label\n", "no rows after the header");
  DatasetOptions val;
  val.split = "val";
  check("path,label\na.png,x\n", "no 'split' column to select split 'val'", val);
}

TEST_CASE("CSV in the current folder keeps relative paths as they are", "[io][dataset]") {
  TempDir tmp("csv_cwd");
  write_text(tmp.path / "d.csv", "path,label\nx/a.png,A\n");
  const fs::path old = fs::current_path();
  fs::current_path(tmp.path);
  const Dataset ds = load_dataset("d.csv");
  fs::current_path(old);
  REQUIRE(ds.samples.size() == 1);
  CHECK(ds.samples[0].path == "x/a.png");
}

TEST_CASE("npz: split arrays become in-memory grey samples", "[io][dataset]") {
  TempDir tmp("npz");
  const std::string npz = tmp / "tiny.npz";
  std::string train_px, val_px;
  for (int i = 0; i < 3 * 2 * 2; ++i) train_px += static_cast<char>(i * 10);
  for (int i = 0; i < 2 * 2 * 2; ++i) val_px += static_cast<char>(200 + i);
  const std::vector<int64_t> val_labels = {1, 0};
  write_npz(npz, {{"train_images", make_npy("|u1", "(3, 2, 2)", train_px)},
                  {"train_labels", make_npy("|u1", "(3, 1)", std::string("\x01\x00\x02", 3))},
                  {"val_images", make_npy("|u1", "(2, 2, 2)", val_px)},
                  {"val_labels", make_npy("<i8", "(2,)",
                                          std::string(reinterpret_cast<const char*>(val_labels.data()), 16))},
                  {"bad_images", make_npy("|u1", "(2, 2, 2)", val_px)},
                  {"bad_labels", make_npy("|u1", "(2, 1)", std::string("\x00\x05", 2))},
                  {"rgb_images", make_npy("|u1", "(1, 1, 2, 3)", std::string("\xff\x00\x00\x00\x00\xff", 6))},
                  {"rgb_labels", make_npy("|u1", "(1, 1)", std::string(1, '\0'))},
                  {"multi_images", make_npy("|u1", "(1, 1, 1)", "a")},
                  {"multi_labels", make_npy("|u1", "(1, 3)", "abc")}});

  const Dataset train = load_dataset(npz);  // default split: train
  CHECK(train.classes == std::vector<std::string>{"0", "1", "2"});
  REQUIRE(train.samples.size() == 3);
  CHECK(labels_of(train) == std::vector<int>{1, 0, 2});
  CHECK(paths_of(train) == std::vector<std::string>{npz + "#train[0]", npz + "#train[1]", npz + "#train[2]"});
  const cv::Mat& m = train.samples[1].pixels;
  REQUIRE(m.type() == CV_8UC1);
  CHECK(m.size() == cv::Size(2, 2));
  CHECK(m.at<uint8_t>(0, 0) == 40);
  CHECK(m.at<uint8_t>(0, 1) == 50);
  CHECK(m.at<uint8_t>(1, 0) == 60);
  CHECK(m.at<uint8_t>(1, 1) == 70);

  DatasetOptions val;
  val.split = "val";
  val.classes = {"normal", "pneumonia"};
  const Dataset v = load_dataset(npz, val);
  CHECK(v.classes == val.classes);
  CHECK(labels_of(v) == std::vector<int>{1, 0});
  CHECK(v.samples[1].path == npz + "#val[1]");
  CHECK(v.samples[1].pixels.at<uint8_t>(1, 1) == 207);

  DatasetOptions two;
  two.classes = {"a", "b"};
  CHECK(error_of([&] { load_dataset(npz, two); }) ==
        "cannot read npz '" + npz +
            "': array 'train_labels': label 2 at index 2 is out of range for 2 classes (a, b)");
  DatasetOptions bad;
  bad.split = "bad";
  bad.classes = {"a", "b"};
  CHECK(error_of([&] { load_dataset(npz, bad); }) ==
        "cannot read npz '" + npz +
            "': array 'bad_labels': label 5 at index 1 is out of range for 2 classes (a, b)");
  DatasetOptions test;
  test.split = "test";
  CHECK(error_of([&] {
          load_dataset(npz, test);
        }).rfind("cannot read npz '" + npz + "': no array 'test_images' (arrays: ", 0) == 0);
  DatasetOptions multi;
  multi.split = "multi";
  CHECK(error_of([&] { load_dataset(npz, multi); }) ==
        "cannot read npz '" + npz +
            "': array 'multi_labels': expected shape (N,) or (N, 1), got (1, 3) (multi-label data is not "
            "supported)");

  DatasetOptions rgb;
  rgb.split = "rgb";
  const Dataset c = load_dataset(npz, rgb);
  REQUIRE(c.samples.size() == 1);
  CHECK(c.samples[0].pixels.type() == CV_8UC1);
  CHECK(c.samples[0].pixels.size() == cv::Size(2, 1));
  CHECK(c.samples[0].pixels.at<uint8_t>(0, 0) == 76);  // pure red: 0.299 * 255
  CHECK(c.samples[0].pixels.at<uint8_t>(0, 1) == 29);  // pure blue: 0.114 * 255
  CHECK(c.notices.size() == 1);
}

TEST_CASE("datasets from the shared data load with the documented counts", "[io][dataset][shared]") {
  const std::string npz = testdeps::shared_data("pneumoniamnist/pneumoniamnist_trainval.npz");
  const std::string csv = testdeps::shared_data("ham10000/metadata.csv");
  MEDATTN_NEEDS(fs::exists(npz) && fs::exists(csv), npz + " and " + csv);
  {
    DatasetOptions val;
    val.split = "val";
    const Dataset ds = load_dataset(npz, val);
    CHECK(ds.samples.size() == 524);
    const std::vector<int> labels = labels_of(ds);
    CHECK(std::count(labels.begin(), labels.end(), 0) == 135);
    CHECK(ds.samples[0].pixels.size() == cv::Size(28, 28));
  }
  {
    DatasetOptions train;
    train.split = "train";
    const Dataset ds = load_dataset(csv, train);
    CHECK(ds.classes == std::vector<std::string>{"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"});
    CHECK(ds.samples.size() == 7010);
    CHECK(fs::exists(ds.samples.front().path));
  }
}
