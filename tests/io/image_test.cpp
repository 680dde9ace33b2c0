// read_image() dispatch, the OpenCV reader and to_display(), on files written here.
#include <catch2/catch.hpp>
#include <opencv2/imgcodecs.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/helpers.h"
#include "support/temp_dir.h"
#include "io/image.h"

namespace fs = std::filesystem;
using medattn::Error;
using medattn::ErrorKind;
using namespace medattn::io;

namespace {

using medattn::testing::TempDir;
using medattn::testing::require_error;
using medattn::testing::values;

std::string write_image(const TempDir& dir, const std::string& name, const cv::Mat& m,
                        const std::vector<int>& params = {}) {
  const std::string path = dir.file(name);
  REQUIRE(cv::imwrite(path, m, params));
  return path;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A noisy 3-channel image: JPEG needs content to have a long entropy-coded segment.
cv::Mat noise_bgr(int rows, int cols) {
  cv::Mat m(rows, cols, CV_8UC3);
  cv::RNG rng(7);
  rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  return m;
}

}  // namespace

TEST_CASE("read_image: 8-bit grey PNG", "[io][image]") {
  TempDir dir;
  const cv::Mat grey = (cv::Mat_<uint8_t>(2, 3) << 0, 1, 2, 127, 200, 255);
  const Image image = read_image(write_image(dir, "grey.png", grey));
  REQUIRE(image.pixels.type() == CV_32FC1);
  CHECK(values(image.pixels) == std::vector<float>{0, 1, 2, 127, 200, 255});
  CHECK(image.format == FileFormat::kPng);
  CHECK(image.bits_stored == 8);
  CHECK_FALSE(image.invert);
  CHECK(image.modality.empty());
  // 8-bit: the window maps 0..255 onto 0..1.
  CHECK(image.window.center == 128.0);
  CHECK(image.window.width == 256.0);
  CHECK(values(to_display(image)) ==
        std::vector<float>{0.0f, 1.0f / 255, 2.0f / 255, 127.0f / 255, 200.0f / 255, 1.0f});
}

TEST_CASE("read_image: 16-bit PNG and TIFF keep their values", "[io][image]") {
  TempDir dir;
  const cv::Mat deep = (cv::Mat_<uint16_t>(2, 2) << 0, 256, 1000, 65535);
  for (const char* name : {"deep.png", "deep.tif"}) {
    INFO(name);
    const Image image = read_image(write_image(dir, name, deep));
    REQUIRE(image.pixels.type() == CV_32FC1);
    CHECK(values(image.pixels) == std::vector<float>{0, 256, 1000, 65535});
    CHECK(image.bits_stored == 16);
    // min-max window
    CHECK(image.window.center == window_from_range(0, 65535).center);
    CHECK(image.window.width == 65536.0);
  }
  const cv::Mat narrow = (cv::Mat_<uint16_t>(1, 3) << 300, 400, 500);
  const Image image = read_image(write_image(dir, "narrow.png", narrow));
  CHECK(image.window.center == 400.5);
  CHECK(image.window.width == 201.0);
}

TEST_CASE("read_image: colour PNG, BMP, TIFF exactly and JPEG closely, in BGR", "[io][image]") {
  TempDir dir;
  cv::Mat colour(2, 2, CV_8UC3, cv::Scalar(200, 100, 50));  // B, G, R
  colour.at<cv::Vec3b>(1, 1) = cv::Vec3b(1, 2, 3);
  for (const char* name : {"c.png", "c.bmp", "c.tif"}) {
    INFO(name);
    const Image image = read_image(write_image(dir, name, colour));
    REQUIRE(image.pixels.type() == CV_32FC3);
    CHECK(values(image.pixels) ==
          std::vector<float>{200, 100, 50, 200, 100, 50, 200, 100, 50, 1, 2, 3});
    CHECK(image.window.width == 256.0);
  }
  CHECK(read_image(dir.file("c.bmp")).format == FileFormat::kBmp);
  CHECK(read_image(dir.file("c.tif")).format == FileFormat::kTiff);

  const cv::Mat flat(16, 16, CV_8UC3, cv::Scalar(200, 100, 50));
  const Image jpeg = read_image(write_image(dir, "c.jpg", flat, {cv::IMWRITE_JPEG_QUALITY, 100}));
  REQUIRE(jpeg.pixels.type() == CV_32FC3);
  CHECK(jpeg.format == FileFormat::kJpeg);
  const cv::Vec3f centre = jpeg.pixels.at<cv::Vec3f>(8, 8);
  CHECK(centre[0] == Approx(200).margin(3));
  CHECK(centre[1] == Approx(100).margin(3));
  CHECK(centre[2] == Approx(50).margin(3));
}

TEST_CASE("read_image: alpha is dropped, grey JPEGs stay as stored", "[io][image]") {
  TempDir dir;
  const cv::Mat bgra(1, 2, CV_8UC4, cv::Scalar(10, 20, 30, 128));
  const Image image = read_image(write_image(dir, "alpha.png", bgra));
  REQUIRE(image.pixels.type() == CV_32FC3);
  CHECK(values(image.pixels) == std::vector<float>{10, 20, 30, 10, 20, 30});

  const cv::Mat grey(8, 8, CV_8UC1, cv::Scalar(90));
  CHECK(read_image(write_image(dir, "grey.jpg", grey)).pixels.channels() == 1);
  // A 3-channel JPEG of grey content stays 3-channel (preprocessing converts).
  cv::Mat grey3;
  cv::merge(std::vector<cv::Mat>{grey, grey, grey}, grey3);
  CHECK(read_image(write_image(dir, "grey3.jpg", grey3)).pixels.channels() == 3);
}

TEST_CASE("read_image: the window option overrides", "[io][image]") {
  TempDir dir;
  const cv::Mat grey = (cv::Mat_<uint8_t>(1, 2) << 10, 20);
  ReadOptions options;
  options.window = Window{15.5, 11.0};  // 10 -> 0, 20 -> 1
  const Image image = read_image(write_image(dir, "g.png", grey), options);
  CHECK(image.window.center == 15.5);
  CHECK(image.window.width == 11.0);
  CHECK(values(to_display(image)) == std::vector<float>{0.0f, 1.0f});
}

TEST_CASE("read_image: format by content, not by extension", "[io][image]") {
  TempDir dir;
  const cv::Mat grey = (cv::Mat_<uint8_t>(1, 2) << 10, 20);
  const std::string png = write_image(dir, "real.png", grey);
  const std::string named_jpg = dir.file("actually_png.jpg");
  fs::copy_file(png, named_jpg);
  const Image image = read_image(named_jpg);
  CHECK(image.format == FileFormat::kPng);
  CHECK(values(image.pixels) == std::vector<float>{10, 20});

  const std::string no_extension = dir.file("image");
  fs::copy_file(png, no_extension);
  CHECK(read_image(no_extension).format == FileFormat::kPng);
}

TEST_CASE("read_image: truncated files are errors, not half-grey images", "[io][image]") {
  TempDir dir;
  const std::string jpeg = write_image(dir, "full.jpg", noise_bgr(64, 64));
  const std::string bytes = read_all(jpeg);

  SECTION("JPEG cut in the entropy-coded data") {
    const std::string cut = dir.file("cut.jpg");
    write_bytes(cut, bytes.substr(0, bytes.size() / 2));
    require_error([&] { read_image(cut); }, ErrorKind::kCorruption,
                  "cannot read JPEG '" + cut + "': truncated (no end-of-image marker)");
  }
  SECTION("JPEG cut just before EOI") {
    const std::string cut = dir.file("cut.jpg");
    write_bytes(cut, bytes.substr(0, bytes.size() - 2));
    require_error([&] { read_image(cut); }, ErrorKind::kCorruption,
                  "cannot read JPEG '" + cut + "': truncated (no end-of-image marker)");
  }
  SECTION("JPEG cut and padded with zeros") {
    const std::string cut = dir.file("cut.jpg");
    write_bytes(cut, bytes.substr(0, bytes.size() / 2) + std::string(4096, '\0'));
    require_error([&] { read_image(cut); }, ErrorKind::kCorruption,
                  "cannot read JPEG '" + cut + "': truncated (no end-of-image marker)");
  }
  SECTION("JPEG cut inside its header") {
    const std::string cut = dir.file("cut.jpg");
    write_bytes(cut, bytes.substr(0, 40));
    require_error([&] { read_image(cut); }, ErrorKind::kCorruption,
                  "cannot read JPEG '" + cut + "': truncated (no end-of-image marker)");
  }
  SECTION("a complete JPEG followed by zero padding or trailing bytes is fine") {
    const std::string padded = dir.file("padded.jpg");
    write_bytes(padded, bytes + std::string(100, '\0'));
    CHECK(read_image(padded).pixels.size() == cv::Size(64, 64));
    const std::string trailing = dir.file("trailing.jpg");
    write_bytes(trailing, bytes + "trailing bytes");
    CHECK(read_image(trailing).pixels.size() == cv::Size(64, 64));
  }
  SECTION("PNG without IEND") {
    const std::string png_bytes = read_all(write_image(dir, "full.png", noise_bgr(32, 32)));
    const std::string cut = dir.file("cut.png");
    write_bytes(cut, png_bytes.substr(0, png_bytes.size() - 12));  // IEND is the last 12 bytes
    require_error([&] { read_image(cut); }, ErrorKind::kCorruption,
                  "cannot read PNG '" + cut + "': truncated (no end-of-image marker)");
    write_bytes(cut, png_bytes.substr(0, png_bytes.size() / 2));
    require_error([&] { read_image(cut); }, ErrorKind::kCorruption,
                  "cannot read PNG '" + cut + "': truncated (no end-of-image marker)");
  }
  SECTION("BMP missing rows") {
    const std::string bmp_bytes = read_all(write_image(dir, "full.bmp", noise_bgr(8, 8)));
    const std::string cut = dir.file("cut.bmp");
    write_bytes(cut, bmp_bytes.substr(0, bmp_bytes.size() - 24));
    require_error([&] { read_image(cut); }, ErrorKind::kCorruption,
                  "cannot read BMP '" + cut + "': truncated (no end-of-image marker)");
  }
  SECTION("a complete PNG with corrupt compressed data") {
    std::string png_bytes = read_all(write_image(dir, "full.png", noise_bgr(32, 32)));
    const size_t idat = png_bytes.find("IDAT");
    REQUIRE(idat != std::string::npos);
    for (size_t i = idat + 10; i < idat + 60; ++i) png_bytes[i] = static_cast<char>(0xAA);
    const std::string broken = dir.file("broken.png");
    write_bytes(broken, png_bytes);
    require_error([&] { read_image(broken); }, ErrorKind::kCorruption,
                  "cannot read PNG '" + broken + "': corrupt data (CRC error in IDAT chunk)");
  }
  SECTION("a header the decoder rejects") {
    std::string bmp_bytes = read_all(write_image(dir, "full.bmp", noise_bgr(8, 8)));
    bmp_bytes[28] = 7;  // 7 bits per pixel does not exist
    const std::string broken = dir.file("broken.bmp");
    write_bytes(broken, bmp_bytes);
    require_error([&] { read_image(broken); }, ErrorKind::kCorruption,
                  "cannot read BMP '" + broken + "': decoder failed");
  }
}

TEST_CASE("read_image: files that are not images", "[io][image]") {
  TempDir dir;
  SECTION("empty") {
    const std::string path = dir.file("empty.png");
    write_bytes(path, "");
    require_error([&] { read_image(path); }, ErrorKind::kCorruption,
                  "cannot read image '" + path + "': file is empty");
  }
  SECTION("text named .png") {
    const std::string path = dir.file("notes.png");
    write_bytes(path, "this is not an image\n");
    require_error([&] { read_image(path); }, ErrorKind::kUnsupported,
                  "cannot read image '" + path + "': not a supported image (unknown format; supported: DICOM, PNG, JPEG, TIFF, BMP, NIfTI)");
  }
  SECTION("missing") {
    const std::string path = dir.file("missing.png");
    require_error([&] { read_image(path); }, ErrorKind::kNotFound,
                  "cannot read image '" + path + "': no such file");
  }
  SECTION("a directory") {
    const std::string path = dir.file("folder.png");
    fs::create_directories(path);
    require_error([&] { read_image(path); }, ErrorKind::kInvalidArgument,
                  "cannot read image '" + path + "': is a directory");
  }
  SECTION("JPEG 2000") {
    const std::string path = dir.file("scan.jp2");
    write_bytes(path, std::string("\x00\x00\x00\x0CjP  \r\n\x87\n", 12) + std::string(100, 'x'));
    require_error([&] { read_image(path); }, ErrorKind::kUnsupported,
                  "cannot read image '" + path + "': JPEG 2000 is not supported by this build");
  }
}

TEST_CASE("to_display: the DICOM VOI function per value", "[io][image]") {
  Image image;
  image.window = Window{40.0, 400.0};  // CT soft tissue: [-160, 239] -> [0, 1]
  image.pixels = (cv::Mat_<float>(1, 6) << -1000.0f, -160.0f, 39.5f, 100.0f, 239.0f, 240.0f);
  const std::vector<float> display = values(to_display(image));
  REQUIRE(display.size() == 6);
  CHECK(display[0] == 0.0f);
  CHECK(display[1] == 0.0f);  // at the lower edge: v <= c - 0.5 - (w-1)/2
  CHECK(display[2] == 0.5f);  // at c - 0.5
  CHECK(display[3] == static_cast<float>((100.0 - 39.5) / 399.0 + 0.5));  // 0.6516...
  CHECK(display[3] == Approx(0.651629));
  CHECK(display[4] == 1.0f);  // (239 - 39.5) / 399 + 0.5 = 1
  CHECK(display[5] == 1.0f);
  for (int i = 0; i < 6; ++i)
    CHECK(display[i] ==
          static_cast<float>(apply_window(image.pixels.at<float>(0, i), image.window)));

  SECTION("inverted (MONOCHROME1)") {
    image.invert = true;
    const std::vector<float> inverted = values(to_display(image));
    CHECK(inverted == std::vector<float>{1.0f, 1.0f, 0.5f,
                                         static_cast<float>(1.0 - ((100.0 - 39.5) / 399.0 + 0.5)),
                                         0.0f, 0.0f});
  }
  SECTION("width 1 is a threshold at the centre") {
    image.window = Window{100.0, 1.0};
    image.pixels = (cv::Mat_<float>(1, 3) << 99.0f, 99.5f, 100.0f);
    CHECK(values(to_display(image)) == std::vector<float>{0.0f, 0.0f, 1.0f});
  }
  SECTION("colour keeps its channels") {
    image.window = window_from_range(0, 255);
    image.pixels = cv::Mat(1, 1, CV_32FC3, cv::Scalar(0, 51, 255));
    const cv::Mat display3 = to_display(image);
    REQUIRE(display3.type() == CV_32FC3);
    CHECK(values(display3) == std::vector<float>{0.0f, 0.2f, 1.0f});
  }
}

TEST_CASE("to_display equals apply_window on a sweep of values and windows", "[io][image]") {
  Image image;
  cv::Mat sweep(1, 2001, CV_32FC1);
  for (int i = 0; i < sweep.cols; ++i) sweep.at<float>(0, i) = -1000.0f + i * 0.75f;
  image.pixels = sweep;
  for (const Window& w :
       {Window{40, 400}, Window{-600, 1500}, Window{0.5, 1}, Window{300.25, 2.5}}) {
    image.window = w;
    const cv::Mat display = to_display(image);
    int mismatches = 0;
    for (int i = 0; i < sweep.cols; ++i)
      if (display.at<float>(0, i) != static_cast<float>(apply_window(sweep.at<float>(0, i), w)))
        ++mismatches;
    CHECK(mismatches == 0);
  }
}
