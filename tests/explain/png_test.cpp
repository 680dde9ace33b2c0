// The fast PNG writer of the heatmap files: what it writes decodes (with libpng, through
// OpenCV) to exactly the image given, for every type the heatmaps use, at any size (the
// 1500x1000 colour image takes the streamed path, above 4 MB of pixels).
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "explain/png.h"

using namespace medattn;

namespace {

cv::Mat decode(const std::string& bytes) {
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  return cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.type() == b.type() && a.size() == b.size() && cv::norm(a, b, cv::NORM_INF) == 0;
}

uint32_t be32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(s[at])) << 24) | (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) | static_cast<uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

}  // namespace

TEST_CASE("fast PNG files decode to exactly the image written", "[explain][png]") {
  cv::RNG rng(7);
  for (const cv::Size size : {cv::Size(1, 1), cv::Size(3, 2), cv::Size(224, 224), cv::Size(344, 286), cv::Size(1000, 3), cv::Size(1500, 1000)}) {
    for (const int type : {CV_8UC1, CV_8UC3, CV_16UC1}) {
      INFO(size.width << "x" << size.height << " type " << type);
      // Noise (incompressible), flat areas and a smooth ramp, as overlays and maps have.
      cv::Mat image(size, type);
      rng.fill(image, cv::RNG::UNIFORM, 0, type == CV_16UC1 ? 65536 : 256);
      image(cv::Rect(0, 0, size.width, size.height / 2)).setTo(cv::Scalar::all(type == CV_16UC1 ? 40000 : 200));
      const std::string png = explain::encode_png_fast(image);
      CHECK(same(decode(png), image));
    }
  }
}

TEST_CASE("fast PNG files are well formed: signature, IHDR first, chunk CRCs, IEND last", "[explain][png]") {
  cv::Mat image(5, 7, CV_16UC1);
  cv::randu(image, 0, 65535);
  const std::string png = explain::encode_png_fast(image);
  REQUIRE(png.compare(0, 8, "\x89PNG\r\n\x1a\n", 8) == 0);
  std::vector<std::string> types;
  for (size_t at = 8; at < png.size();) {
    const uint32_t length = be32(png, at);
    REQUIRE(at + 12 + length <= png.size());
    types.push_back(png.substr(at + 4, 4));
    const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(png.data() + at + 4), length + 4);
    CHECK(be32(png, at + 8 + length) == static_cast<uint32_t>(crc));
    if (types.back() == "IHDR") {
      CHECK(be32(png, at + 8) == 7);   // width
      CHECK(be32(png, at + 12) == 5);  // height
      CHECK(static_cast<int>(png[at + 16]) == 16);  // bit depth
      CHECK(static_cast<int>(png[at + 17]) == 0);   // greyscale
    }
    at += 12 + length;
  }
  CHECK(types == std::vector<std::string>{"IHDR", "IDAT", "IEND"});
}

TEST_CASE("fast PNG writer refuses types it does not write", "[explain][png]") {
  CHECK_THROWS_AS(explain::encode_png_fast(cv::Mat(4, 4, CV_32FC1, cv::Scalar(0.5))), Error);
  CHECK_THROWS_AS(explain::encode_png_fast(cv::Mat(4, 4, CV_8UC4, cv::Scalar::all(1))), Error);
  CHECK_THROWS_AS(explain::encode_png_fast(cv::Mat()), Error);
}
