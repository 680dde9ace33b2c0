#include "io/npz.h"

#include <catch2/catch.hpp>
#include <zip.h>

#include <algorithm>
#include <cstring>
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
using medattn::io::list_npz;
using medattn::io::NpyArray;
using medattn::io::read_npz;

namespace {

using medattn::testing::TempDir;

// Builds .npy bytes the way numpy does: magic, version, little-endian header length, the
// dict padded with spaces to a multiple of 64 and a newline, then `data`.
std::string make_npy(const std::string& descr, const std::string& shape, const std::string& data,
                     bool fortran = false, int major = 1) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                     ", 'shape': " + shape + ", }";
  const size_t prefix = major == 1 ? 10 : 12;
  size_t total = prefix + dict.size() + 1;
  dict += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += static_cast<char>(0);
  const uint32_t len = static_cast<uint32_t>(dict.size());
  out += static_cast<char>(len & 0xFF);
  out += static_cast<char>((len >> 8) & 0xFF);
  if (major != 1) {
    out += static_cast<char>((len >> 16) & 0xFF);
    out += static_cast<char>((len >> 24) & 0xFF);
  }
  return out + dict + data;
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

struct Member {
  std::string name;
  std::string bytes;
  bool deflate = true;
};

// Writes a zip with libzip; stored or deflated members.
void write_zip(const fs::path& path, const std::vector<Member>& members) {
  int err = 0;
  zip_t* z = zip_open(path.string().c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  REQUIRE(z != nullptr);
  for (const auto& m : members) {
    zip_source_t* src = zip_source_buffer(z, m.bytes.data(), m.bytes.size(), 0);
    REQUIRE(src != nullptr);
    const zip_int64_t idx = zip_file_add(z, m.name.c_str(), src, ZIP_FL_OVERWRITE);
    REQUIRE(idx >= 0);
    REQUIRE(zip_set_file_compression(z, static_cast<zip_uint64_t>(idx),
                                     m.deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) == 0);
  }
  REQUIRE(zip_close(z) == 0);  // the buffers above are still alive here
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const medattn::Error& e) {
    return e.what();
  }
  return "(no error)";
}

medattn::ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const medattn::Error& e) {
    return e.kind();
  }
  FAIL("expected medattn::Error");
  return medattn::ErrorKind::kInvalidArgument;
}

}  // namespace

TEST_CASE("read_npz reads stored and deflated arrays of every supported dtype", "[io][npz]") {
  TempDir tmp;
  const fs::path npz = tmp.path / "a.npz";
  std::vector<uint8_t> images(2 * 3 * 4);
  for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<uint8_t>(i * 7);
  const std::vector<uint8_t> labels = {1, 0};
  const std::vector<uint16_t> u2 = {1, 65535, 300};
  const std::vector<int32_t> i4 = {-1, 2, -300000};
  const std::vector<int64_t> i8 = {-5, int64_t{1} << 40};
  const std::vector<float> f4 = {0.5f, -2.25f};
  const std::vector<double> f8 = {3.125, -1e300};
  write_zip(npz, {
                     {"train_images.npy", make_npy("|u1", "(2, 3, 4)", bytes_of(images)), true},
                     {"train_labels.npy", make_npy("|u1", "(2, 1)", bytes_of(labels)), false},
                     {"u2.npy", make_npy("<u2", "(3,)", bytes_of(u2)), true},
                     {"i4.npy", make_npy("<i4", "(3,)", bytes_of(i4), false, 2), false},
                     {"i8.npy", make_npy("<i8", "(1, 2)", bytes_of(i8), false, 3), true},
                     {"f4.npy", make_npy("<f4", "(2,)", bytes_of(f4)), true},
                     {"f8.npy", make_npy("<f8", "(2,)", bytes_of(f8)), false},
                     {"scalar.npy", make_npy("<f8", "()", bytes_of(std::vector<double>{7.0})), true},
                     {"empty.npy", make_npy("<f4", "(0, 5)", ""), true},
                     {"README.txt", "not an array", true},
                 });

  CHECK(list_npz(npz.string()) == std::vector<std::string>{"train_images", "train_labels", "u2", "i4", "i8",
                                                           "f4", "f8", "scalar", "empty"});

  const auto all = read_npz(npz.string());
  CHECK(all.size() == 9);
  const NpyArray& im = all.at("train_images");
  CHECK(im.dtype == "|u1");
  CHECK(im.shape == std::vector<int64_t>{2, 3, 4});
  CHECK(im.size() == 24);
  CHECK(im.itemsize() == 1);
  CHECK(im.data == images);
  CHECK(all.at("train_labels").shape == std::vector<int64_t>{2, 1});
  CHECK(all.at("train_labels").data == labels);

  auto check = [&](const std::string& name, const std::string& bytes, int itemsize, int64_t count) {
    INFO(name);
    const NpyArray& a = all.at(name);
    CHECK(a.itemsize() == itemsize);
    CHECK(a.size() == count);
    CHECK(std::string(a.data.begin(), a.data.end()) == bytes);
  };
  check("u2", bytes_of(u2), 2, 3);
  check("i4", bytes_of(i4), 4, 3);
  check("i8", bytes_of(i8), 8, 2);
  check("f4", bytes_of(f4), 4, 2);
  check("f8", bytes_of(f8), 8, 2);
  check("scalar", bytes_of(std::vector<double>{7.0}), 8, 1);
  check("empty", "", 4, 0);
  CHECK(all.at("scalar").shape.empty());

  // Only the requested arrays.
  const auto some = read_npz(npz.string(), {"f4", "train_labels"});
  CHECK(some.size() == 2);
  CHECK(some.count("f4") == 1);
  CHECK(some.count("train_labels") == 1);
}

TEST_CASE("read_npz and list_npz report missing and corrupt archives in one line", "[io][npz]") {
  TempDir tmp;
  const std::string dir = tmp.path.string();
  auto p = [&](const std::string& name) { return (tmp.path / name).string(); };
  const std::vector<uint8_t> px(2 * 2 * 2, 9);

  SECTION("missing file") {
    const std::string path = p("nope.npz");
    CHECK(error_of([&] { read_npz(path); }) == "cannot read npz '" + path + "': no such file");
    CHECK(error_of([&] { list_npz(path); }) == "cannot read npz '" + path + "': no such file");
    CHECK(kind_of([&] { list_npz(path); }) == medattn::ErrorKind::kNotFound);
  }
  SECTION("not a zip") {
    std::ofstream(p("text.npz")) << "hello, this is not a zip archive at all, just some text\n";
    CHECK(error_of([&] { read_npz(p("text.npz")); }) ==
          "cannot read npz '" + p("text.npz") + "': not a zip archive");
    CHECK(kind_of([&] { list_npz(p("text.npz")); }) == medattn::ErrorKind::kCorruption);
  }
  SECTION("missing array") {
    write_zip(p("a.npz"), {{"train_images.npy", make_npy("|u1", "(2, 2, 2)", bytes_of(px))},
                           {"train_labels.npy", make_npy("|u1", "(2, 1)", std::string(2, '\1'))}});
    CHECK(error_of([&] { read_npz(p("a.npz"), {"val_images"}); }) ==
          "cannot read npz '" + p("a.npz") + "': no array 'val_images' (arrays: train_images, train_labels)");
    CHECK(kind_of([&] { read_npz(p("a.npz"), {"val_images"}); }) == medattn::ErrorKind::kNotFound);
  }
  SECTION("bad magic") {
    std::string npy = make_npy("|u1", "(2, 2, 2)", bytes_of(px));
    npy[1] = 'X';
    write_zip(p("a.npz"), {{"x.npy", npy}});
    CHECK(error_of([&] { read_npz(p("a.npz")); }) ==
          "cannot read npz '" + p("a.npz") + "': array 'x': not a .npy file (bad magic)");
  }
  SECTION("member too short for the magic") {
    write_zip(p("a.npz"), {{"x.npy", "\x93NUM"}});
    CHECK(error_of([&] { read_npz(p("a.npz")); }) ==
          "cannot read npz '" + p("a.npz") + "': array 'x': not a .npy file (bad magic)");
  }
  SECTION("truncated data, stored and deflated") {
    for (bool deflate : {false, true}) {
      const std::string npy = make_npy("|u1", "(2, 2, 2)", bytes_of(px));
      write_zip(p("a.npz"), {{"x.npy", npy.substr(0, npy.size() - 3), deflate}});
      CHECK(error_of([&] { read_npz(p("a.npz")); }) ==
            "cannot read npz '" + p("a.npz") + "': array 'x': truncated data (got 5 bytes, expected 8)");
      CHECK(kind_of([&] { read_npz(p("a.npz")); }) == medattn::ErrorKind::kCorruption);
    }
  }
  SECTION("extra data after the array") {
    write_zip(p("a.npz"), {{"x.npy", make_npy("|u1", "(2, 2, 2)", bytes_of(px) + "zz")}});
    CHECK(error_of([&] { read_npz(p("a.npz")); }) ==
          "cannot read npz '" + p("a.npz") + "': array 'x': data size mismatch (got 10 bytes, expected 8)");
  }
  SECTION("truncated header") {
    const std::string npy = make_npy("|u1", "(2, 2, 2)", "");
    write_zip(p("a.npz"), {{"x.npy", npy.substr(0, 30)}});
    CHECK(error_of([&] { read_npz(p("a.npz")); }) ==
          "cannot read npz '" + p("a.npz") + "': array 'x': truncated header");
  }
  SECTION("big-endian, fortran order, unsupported dtype and version are refused") {
    write_zip(p("a.npz"), {{"be.npy", make_npy(">i4", "(2,)", std::string(8, '\0'))},
                           {"fo.npy", make_npy("<f4", "(2, 2)", std::string(16, '\0'), true)},
                           {"c8.npy", make_npy("<c8", "(1,)", std::string(8, '\0'))},
                           {"v9.npy", make_npy("|u1", "(1,)", "a", false, 9)}});
    const std::string head = "cannot read npz '" + p("a.npz") + "': array ";
    CHECK(error_of([&] { read_npz(p("a.npz"), {"be"}); }) ==
          head + "'be': big-endian dtype '>i4' is not supported");
    CHECK(error_of([&] { read_npz(p("a.npz"), {"fo"}); }) ==
          head + "'fo': fortran-order arrays are not supported");
    CHECK(error_of([&] { read_npz(p("a.npz"), {"c8"}); }) ==
          head +
              "'c8': unsupported dtype '<c8' (expected one of |u1 |i1 |b1 <u2 <i2 <u4 <i4 <u8 <i8 <f2 <f4 "
              "<f8)");
    CHECK(error_of([&] { read_npz(p("a.npz"), {"v9"}); }) == head + "'v9': unsupported .npy version 9.0");
    CHECK(kind_of([&] { read_npz(p("a.npz"), {"be"}); }) == medattn::ErrorKind::kUnsupported);
  }
  SECTION("absurd shapes are refused before allocating") {
    write_zip(p("a.npz"), {{"huge.npy", make_npy("<f8", "(100000000000, 100000000000)", "")},
                           {"big.npy", make_npy("|u1", "(1000000, 1000000)", "")},
                           {"over.npy", make_npy("|u1", "(99999999999999999999,)", "")}});
    const std::string head = "cannot read npz '" + p("a.npz") + "': array ";
    CHECK(error_of([&] { read_npz(p("a.npz"), {"huge"}); }) ==
          head + "'huge': shape (100000000000, 100000000000) is too large");
    CHECK(error_of([&] { read_npz(p("a.npz"), {"big"}); }) ==
          head + "'big': shape (1000000, 1000000) is too large");
    CHECK(error_of([&] { read_npz(p("a.npz"), {"over"}); }) ==
          head + "'over': malformed header ('shape' is not a tuple of integers)");
  }
  SECTION("malformed header dict") {
    std::string npy = make_npy("|u1", "(2,)", "ab");
    const auto pos = npy.find("'shape'");
    npy.replace(pos, 7, "'shapf'");
    write_zip(p("a.npz"), {{"x.npy", npy}});
    CHECK(error_of([&] { read_npz(p("a.npz")); }) ==
          "cannot read npz '" + p("a.npz") + "': array 'x': malformed header (unexpected key 'shapf')");
  }
  SECTION("truncated zip file") {
    write_zip(p("a.npz"), {{"x.npy", make_npy("|u1", "(2, 2, 2)", bytes_of(px))}});
    const auto size = fs::file_size(p("a.npz"));
    fs::resize_file(p("a.npz"), size / 2);
    const std::string msg = error_of([&] { read_npz(p("a.npz")); });
    CHECK(msg.rfind("cannot read npz '" + p("a.npz") + "': ", 0) == 0);
    CHECK(msg.find('\n') == std::string::npos);
  }
}

TEST_CASE("read_npz reads the shared PneumoniaMNIST file", "[io][npz][shared]") {
  const std::string path = testdeps::shared_data("pneumoniamnist/pneumoniamnist_trainval.npz");
  MEDATTN_NEEDS(fs::exists(path), path);
  const auto names = list_npz(path);
  CHECK(std::find(names.begin(), names.end(), "train_images") != names.end());
  CHECK(std::find(names.begin(), names.end(), "val_labels") != names.end());
  const auto arrays = read_npz(path, {"train_images", "train_labels", "val_images", "val_labels"});
  struct Expect {
    const char* split;
    int64_t n, zeros, ones;
  };
  for (const Expect& e : {Expect{"train", 4708, 1214, 3494}, Expect{"val", 524, 135, 389}}) {
    INFO(e.split);
    const NpyArray& images = arrays.at(std::string(e.split) + "_images");
    const NpyArray& labels = arrays.at(std::string(e.split) + "_labels");
    CHECK(images.dtype == "|u1");
    CHECK(images.shape == std::vector<int64_t>{e.n, 28, 28});
    CHECK(images.data.size() == static_cast<size_t>(e.n * 28 * 28));
    CHECK(labels.dtype == "|u1");
    CHECK(labels.shape == std::vector<int64_t>{e.n, 1});
    int64_t zeros = 0, ones = 0;
    for (uint8_t v : labels.data) {
      zeros += v == 0;
      ones += v == 1;
    }
    CHECK(zeros == e.zeros);
    CHECK(ones == e.ones);
  }
}
