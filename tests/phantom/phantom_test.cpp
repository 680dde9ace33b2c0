#include "phantom/phantom.h"

#include <catch2/catch.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/error.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using medattn::phantom::make_phantom;
using medattn::phantom::Phantom;
using medattn::phantom::phantom_classes;
using medattn::phantom::PhantomOptions;
using medattn::phantom::write_phantoms;

namespace {

bool same_pixels(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a != b) == 0;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::set<std::string> file_names(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

using medattn::testing::TempDir;

}  // namespace

TEST_CASE("phantom classes are normal, nodule, consolidation in label order", "[phantom]") {
  REQUIRE(phantom_classes() == std::vector<std::string>{"normal", "nodule", "consolidation"});
}

TEST_CASE("make_phantom gives 8-bit grey images and masks of the requested size", "[phantom]") {
  for (int size : {64, 128, 256}) {
    for (int label = 0; label < 3; ++label) {
      const Phantom p = make_phantom(label, 42, size);
      CHECK(p.label == label);
      CHECK(p.image.type() == CV_8UC1);
      CHECK(p.mask.type() == CV_8UC1);
      CHECK(p.image.rows == size);
      CHECK(p.image.cols == size);
      CHECK(p.mask.size() == p.image.size());
      // A radiograph-like picture uses a wide grey range: dark air, bright mediastinum.
      double lo = 0, hi = 0;
      cv::minMaxLoc(p.image, &lo, &hi);
      CHECK(hi - lo > 100);
      // The mask holds only 0 and 255.
      CHECK(cv::countNonZero((p.mask != 0) & (p.mask != 255)) == 0);
    }
  }
}

TEST_CASE("make_phantom is deterministic: same seed same pixels, other seed other pixels", "[phantom]") {
  for (int label = 0; label < 3; ++label) {
    const Phantom a = make_phantom(label, 7);
    const Phantom b = make_phantom(label, 7);
    CHECK(same_pixels(a.image, b.image));
    CHECK(same_pixels(a.mask, b.mask));
    const Phantom c = make_phantom(label, 8);
    CHECK_FALSE(same_pixels(a.image, c.image));
    // Images differ a lot, not by a few pixels.
    cv::Mat diff;
    cv::absdiff(a.image, c.image, diff);
    CHECK(cv::mean(diff)[0] > 5.0);
  }
}

TEST_CASE("make_phantom pins its output: a checksum of a few images never changes", "[phantom]") {
  // Guards against accidental changes to the generator (the demo model is trained on it)
  // and against platform-dependent arithmetic. Update deliberately if the generator changes.
  uint64_t h = 1469598103934665603ULL;  // FNV-1a over image and mask bytes
  for (int label = 0; label < 3; ++label) {
    const Phantom p = make_phantom(label, 1234, 96);
    for (const cv::Mat* m : {&p.image, &p.mask}) {
      for (int y = 0; y < m->rows; ++y) {
        const uint8_t* row = m->ptr<uint8_t>(y);
        for (int x = 0; x < m->cols; ++x) h = (h ^ row[x]) * 1099511628211ULL;
      }
    }
  }
  CHECK(h == 0x806c45fcf241da38ULL);
}

TEST_CASE("make_phantom refuses a bad label or a tiny size", "[phantom]") {
  CHECK_THROWS_AS(make_phantom(3, 1), medattn::Error);
  CHECK_THROWS_AS(make_phantom(-1, 1), medattn::Error);
  CHECK_THROWS_AS(make_phantom(0, 1, 32), medattn::Error);
}

TEST_CASE("normal phantoms have an all-zero mask", "[phantom]") {
  for (uint64_t seed = 0; seed < 10; ++seed) CHECK(cv::countNonZero(make_phantom(0, seed).mask) == 0);
}

TEST_CASE("lesion masks are non-empty, lie inside the lung fields and have the documented size",
          "[phantom]") {
  const int size = 256;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    INFO("seed " << seed);
    const cv::Mat lung = medattn::phantom::detail::phantom_lung_field(0, seed, size);
    const int lung_area = cv::countNonZero(lung);
    // Two lungs take a sizeable part of the picture.
    CHECK(lung_area > size * size / 8);
    CHECK(lung_area < size * size / 2);
    for (int label = 1; label < 3; ++label) {
      INFO("label " << label);
      const Phantom p = make_phantom(label, seed, size);
      const int area = cv::countNonZero(p.mask);
      REQUIRE(area > 0);
      // Every lesion pixel is inside a lung field.
      CHECK(cv::countNonZero(p.mask & ~lung) == 0);
      // The lung field does not depend on the label (same anatomy for the same seed).
      CHECK(same_pixels(lung, medattn::phantom::detail::phantom_lung_field(label, seed, size)));
      if (label == 1) {
        // One or two nodules of radius ~4.5-8.5% of the width: area between a disc of 2% and two of 9%.
        const double r_min = 0.02 * size, r_max = 0.09 * size;
        CHECK(area > 3.14159 * r_min * r_min);
        CHECK(area < 2 * 3.14159 * r_max * r_max);
      } else {
        // Consolidation: ~10-25% of one lung, i.e. about 4-16% of both lungs.
        const double frac = static_cast<double>(area) / lung_area;
        CHECK(frac > 0.03);
        CHECK(frac < 0.18);
        // It stays within one lung: all mask pixels on one side of the image's middle.
        const int half = size / 2;
        const int left = cv::countNonZero(p.mask(cv::Rect(0, 0, half, size)));
        const int right = cv::countNonZero(p.mask(cv::Rect(half, 0, size - half, size)));
        CHECK((left == 0 || right == 0));
      }
    }
  }
}

TEST_CASE("a lesion only brightens: same seed without the lesion is the normal phantom", "[phantom]") {
  // make_phantom(0, s) is make_phantom(k, s) without its lesion (same anatomy and noise).
  for (uint64_t seed = 100; seed < 115; ++seed) {
    const Phantom normal = make_phantom(0, seed);
    for (int label = 1; label < 3; ++label) {
      INFO("seed " << seed << " label " << label);
      const Phantom p = make_phantom(label, seed);
      cv::Mat diff;
      cv::subtract(p.image, normal.image, diff, cv::noArray(), CV_32S);
      double lo = 0, hi = 0;
      cv::minMaxLoc(diff, &lo, &hi);
      CHECK(lo >= 0);  // no pixel gets darker
      // Inside the mask the lesion is clearly brighter (visible to a human): >= 10 grey levels.
      CHECK(cv::mean(diff, p.mask)[0] >= 10.0);
      // Far from nodules nothing changes. (Consolidations may have faint sub-threshold
      // patches near the mask, so only nodules are held to this.)
      if (label == 1) {
        cv::Mat near;
        cv::dilate(p.mask, near, cv::getStructuringElement(cv::MORPH_ELLIPSE, {25, 25}));
        CHECK(cv::countNonZero((diff != 0) & ~near) == 0);
      }
      // Inside the mask it is also brighter than a ring of lung around it, on average.
      cv::Mat ring;
      cv::dilate(p.mask, ring, cv::getStructuringElement(cv::MORPH_ELLIPSE, {15, 15}));
      ring &= ~p.mask;
      ring &= medattn::phantom::detail::phantom_lung_field(label, seed, 256);
      if (cv::countNonZero(ring) > 20) CHECK(cv::mean(p.image, p.mask)[0] > cv::mean(p.image, ring)[0]);
    }
  }
}

TEST_CASE("write_phantoms spreads the count over the classes and writes images and masks", "[phantom]") {
  TempDir tmp("write");
  PhantomOptions options;
  options.count = 10;
  options.seed = 5;
  options.size = 64;
  std::vector<std::pair<int, int>> calls;
  const int written = write_phantoms(tmp.path.string(), options,
                                     [&](int done, int total) { calls.emplace_back(done, total); });
  CHECK(written == 10);
  REQUIRE(calls.size() == 10);
  for (int i = 0; i < 10; ++i) CHECK(calls[i] == std::make_pair(i + 1, 10));

  const std::vector<std::pair<std::string, int>> expected = {
      {"normal", 4}, {"nodule", 3}, {"consolidation", 3}};
  for (const auto& [name, n] : expected) {
    INFO(name);
    const auto images = file_names(tmp.path / "images" / name);
    const auto masks = file_names(tmp.path / "masks" / name);
    CHECK(images.size() == static_cast<size_t>(n));
    CHECK(images == masks);  // same names, no temporary files left behind
    for (int i = 0; i < n; ++i) {
      char file[64];
      std::snprintf(file, sizeof(file), "%s_%04d.png", name.c_str(), i);
      CHECK(images.count(file) == 1);
      const cv::Mat image = cv::imread((tmp.path / "images" / name / file).string(), cv::IMREAD_UNCHANGED);
      const cv::Mat mask = cv::imread((tmp.path / "masks" / name / file).string(), cv::IMREAD_UNCHANGED);
      REQUIRE(!image.empty());
      REQUIRE(!mask.empty());
      CHECK(image.type() == CV_8UC1);
      CHECK(mask.type() == CV_8UC1);
      CHECK(image.size() == cv::Size(64, 64));
      if (name == "normal") {
        CHECK(cv::countNonZero(mask) == 0);
      } else {
        CHECK(cv::countNonZero(mask) > 0);
      }
    }
  }
  // Only the three class folders exist under images/ and masks/.
  CHECK(file_names(tmp.path / "images") == std::set<std::string>{"normal", "nodule", "consolidation"});
  CHECK(file_names(tmp.path / "masks") == std::set<std::string>{"normal", "nodule", "consolidation"});
}

TEST_CASE("write_phantoms: the same seed gives the same files, whatever the count", "[phantom]") {
  TempDir a("seed_a"), b("seed_b"), c("seed_c");
  PhantomOptions options;
  options.size = 64;
  options.seed = 11;
  options.count = 6;
  write_phantoms(a.path.string(), options);
  options.count = 3;
  write_phantoms(b.path.string(), options);
  options.seed = 12;
  write_phantoms(c.path.string(), options);
  for (const char* kind : {"images", "masks"}) {
    for (const auto& name : phantom_classes()) {
      const fs::path rel = fs::path(kind) / name / (name + "_0000.png");
      INFO(rel.string());
      const std::string bytes = read_bytes(a.path / rel);
      CHECK(!bytes.empty());
      CHECK(bytes == read_bytes(b.path / rel));  // image 0 of a class does not depend on count
      if (std::string(kind) == "images" || name != "normal") CHECK(bytes != read_bytes(c.path / rel));
    }
  }
  // Classes get different images even at the same index.
  CHECK(read_bytes(a.path / "images/normal/normal_0000.png") !=
        read_bytes(a.path / "images/nodule/nodule_0000.png"));
}

TEST_CASE("write_phantoms overwrites earlier files and writes count 0 as empty folders", "[phantom]") {
  TempDir tmp("rewrite");
  PhantomOptions options;
  options.size = 64;
  options.count = 3;
  CHECK(write_phantoms(tmp.path.string(), options) == 3);
  CHECK(write_phantoms(tmp.path.string(), options) == 3);
  CHECK(file_names(tmp.path / "images" / "normal").size() == 1);
  options.count = 0;
  TempDir empty("empty");
  CHECK(write_phantoms(empty.path.string(), options) == 0);
  CHECK(fs::is_directory(empty.path / "masks" / "consolidation"));
}

TEST_CASE("write_phantoms reports a directory it cannot create", "[phantom]") {
  TempDir tmp("unwritable");
  const fs::path file = tmp.path / "plain_file";
  std::ofstream(file) << "x";
  const std::string dir = (file / "sub").string();
  try {
    write_phantoms(dir, PhantomOptions{});
    FAIL("expected medattn::Error");
  } catch (const medattn::Error& e) {
    CHECK(e.kind() == medattn::ErrorKind::kIOError);
    CHECK(std::string(e.what()).rfind("cannot write phantoms '" + dir + "': ", 0) == 0);
  }
  PhantomOptions bad;
  bad.count = -1;
  CHECK_THROWS_AS(write_phantoms(tmp.path.string(), bad), medattn::Error);
}
