// io::to_display's table path for 8-bit content gives exactly the per-value VOI function.
#include <catch2/catch.hpp>
#include <opencv2/core.hpp>

#include <cmath>
#include <limits>

#include "io/image.h"

using namespace medattn::io;

namespace {

// Every value 0..255 in every channel of a 16 x 48 image (3 rows per value... and then some).
Image all_values(int channels) {
  Image image;
  image.bits_stored = 8;
  image.pixels.create(16, 48, CV_32FC(channels));
  for (int r = 0; r < 16; ++r) {
    for (int c = 0; c < 48 * channels; ++c) image.pixels.ptr<float>(r)[c] = static_cast<float>((r * 48 * channels + c * 7) % 256);
  }
  return image;
}

void require_per_value(const Image& image) {
  const cv::Mat d = to_display(image);
  REQUIRE(d.type() == image.pixels.type());
  REQUIRE(d.size() == image.pixels.size());
  for (int r = 0; r < d.rows; ++r) {
    for (int c = 0; c < d.cols * d.channels(); ++c) {
      const double v = image.pixels.ptr<float>(r)[c];
      const double expected = apply_window(v, image.window);
      const float want = static_cast<float>(image.invert ? 1.0 - expected : expected);
      REQUIRE(d.ptr<float>(r)[c] == want);  // bit for bit, not approximately
    }
  }
}

}  // namespace

TEST_CASE("8-bit images are windowed through a table exactly as value by value", "[io][display]") {
  for (int channels : {1, 3}) {
    for (const Window w : {window_from_range(0, 255), Window{100.5, 51}, Window{40, 400}, Window{128, 1}, Window{127.3, 0.5}}) {
      for (bool invert : {false, true}) {
        Image image = all_values(channels);
        image.window = w;
        image.invert = invert;
        CAPTURE(channels, w.center, w.width, invert);
        require_per_value(image);
      }
    }
  }
}

TEST_CASE("values that are not 8-bit integers take the per-value path", "[io][display]") {
  Image image = all_values(1);
  image.window = Window{100.5, 51};
  image.pixels.at<float>(3, 5) = 127.25f;  // not an integer
  image.pixels.at<float>(4, 6) = 300.0f;   // beyond 255
  image.pixels.at<float>(5, 7) = -2.0f;    // below 0
  require_per_value(image);
  const cv::Mat d = to_display(image);
  CHECK(d.at<float>(3, 5) == static_cast<float>(apply_window(127.25, image.window)));
  CHECK(d.at<float>(4, 6) == 1.0f);
  CHECK(d.at<float>(5, 7) == 0.0f);
}
