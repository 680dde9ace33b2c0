// JPEGs decoded straight through libjpeg-turbo give exactly OpenCV's pixels (grey and colour,
// baseline and progressive, odd sizes with subsampled chroma), and anything it does not take is
// left to OpenCV (an empty result).
#include <catch2/catch.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "io/jpeg.h"

using namespace medattn;

namespace {

cv::Mat test_image(int rows, int cols, int channels) {
  cv::Mat img(rows, cols, CV_8UC3);
  cv::RNG rng(3);
  rng.fill(img, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(img, img, cv::Size(5, 5), 2.0);  // content a camera would give
  cv::circle(img, cv::Point(cols / 3, rows / 2), rows / 4, cv::Scalar(250, 30, 90), -1);
  if (channels == 1) cv::cvtColor(img, img, cv::COLOR_BGR2GRAY);
  return img;
}

}  // namespace

TEST_CASE("JPEG decoding gives OpenCV's pixels", "[io][jpeg]") {
  for (const int channels : {1, 3}) {
    for (const bool progressive : {false, true}) {
      for (const int quality : {30, 95}) {
        for (const cv::Size size : {cv::Size(224, 224), cv::Size(37, 61), cv::Size(1, 1)}) {
          INFO("channels " << channels << " progressive " << progressive << " quality " << quality << " " << size.width << "x" << size.height);
          std::vector<unsigned char> bytes;
          REQUIRE(cv::imencode(".jpg", test_image(size.height, size.width, channels), bytes,
                               {cv::IMWRITE_JPEG_QUALITY, quality, cv::IMWRITE_JPEG_PROGRESSIVE, progressive ? 1 : 0,
                                cv::IMWRITE_JPEG_OPTIMIZE, progressive ? 0 : 1}));
          const cv::Mat mine = io::decode_jpeg(bytes.data(), bytes.size());
          const cv::Mat theirs = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
          REQUIRE(mine.type() == theirs.type());
          REQUIRE(mine.size() == theirs.size());
          CHECK(cv::norm(mine, theirs, cv::NORM_INF) == 0.0);
        }
      }
    }
  }
}

TEST_CASE("JPEG decoding leaves what it cannot decode to OpenCV", "[io][jpeg]") {
  std::vector<unsigned char> bytes;
  REQUIRE(cv::imencode(".jpg", test_image(64, 64, 3), bytes));
  // Not a JPEG, an empty buffer, a header cut short.
  const std::vector<unsigned char> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0};
  CHECK(io::decode_jpeg(png.data(), png.size()).empty());
  CHECK(io::decode_jpeg(bytes.data(), 0).empty());
  CHECK(io::decode_jpeg(bytes.data(), 40).empty());
  // The image itself still decodes after failures (no state is left behind).
  CHECK(io::decode_jpeg(bytes.data(), bytes.size()).type() == CV_8UC3);
}
