// The overlay's layout: caption and legend inside the canvas at every input size, nothing
// drawn over the image, colour kept for colour images.
#include <catch2/catch.hpp>

#include <opencv2/imgproc.hpp>

#include "explain/overlay.h"

using namespace medattn;

namespace {

// A grey ramp with a hot blob right of centre: any image will do; its size is what matters.
void phantom(int w, int h, cv::Mat& display, cv::Mat& heat) {
  display.create(h, w, CV_32FC1);
  heat.create(h, w, CV_32FC1);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      display.at<float>(y, x) = 0.2f + 0.6f * x / std::max(1, w - 1);
      const double dx = (x - 0.7 * w) / (0.15 * w), dy = (y - 0.4 * h) / (0.15 * h);
      heat.at<float>(y, x) = static_cast<float>(std::exp(-(dx * dx + dy * dy)));
    }
  }
}

bool is_strip(const cv::Vec3b& p) { return p == cv::Vec3b(32, 32, 32); }

// The rightmost and bottom-most pixel that is not the strip's colour inside `area`.
cv::Point last_ink(const cv::Mat& canvas, const cv::Rect& area) {
  cv::Point last(-1, -1);
  for (int y = area.y; y < area.y + area.height; ++y) {
    for (int x = area.x; x < area.x + area.width; ++x) {
      if (!is_strip(canvas.at<cv::Vec3b>(y, x))) {
        last.x = std::max(last.x, x);
        last.y = std::max(last.y, y);
      }
    }
  }
  return last;
}

}  // namespace

TEST_CASE("overlay caption and legend lie inside the canvas at 32, 64, 224, 825 and 3000 px", "[explain][overlay]") {
  const int size = GENERATE(32, 64, 224, 825, 3000);
  const int height = size == 3000 ? 2400 : size == 825 ? 1000 : size;  // portrait and landscape too
  CAPTURE(size, height);
  cv::Mat display, heat;
  phantom(size, height, display, heat);
  explain::OverlayOptions options;
  options.caption = "normal_or_benign 0.580 [saliency]\nmap for target PNEUMONIA (p 0.420); diagnosis normal_or_benign";
  options.legend_note = "per image";
  options.contour_top = 0.05;
  explain::OverlayLayout layout;
  const cv::Mat out = explain::make_overlay(display, heat, options, &layout);
  const cv::Rect canvas(0, 0, out.cols, out.rows);
  REQUIRE(out.type() == CV_8UC3);

  // The image part: at least 256 px on its shorter side, never covered by text.
  CHECK(std::min(layout.image.width, layout.image.height) >= std::min(256, std::min(size, height)) );
  CHECK(std::min(layout.image.width, layout.image.height) >= 256);
  CHECK((layout.image & canvas) == layout.image);
  CHECK(layout.caption.y + layout.caption.height <= layout.image.y);
  CHECK(layout.legend.x >= layout.image.x + layout.image.width);
  // 2 caption lines at least (the second wraps at small sizes), 3 ticks, title and note.
  REQUIRE(layout.text.size() >= 2 + 5);
  for (const auto& box : layout.text) {
    CAPTURE(box.x, box.y, box.width, box.height, out.cols, out.rows);
    CHECK((box & canvas) == box);                   // inside the canvas
    CHECK((box & layout.image).area() == 0);        // never over the image
  }
  // Pixel columns: text ink stops short of the canvas's right edge in both strips, and of the
  // bottom edge in the legend (nothing clipped).
  const cv::Point caption_ink = last_ink(out, layout.caption);
  CHECK(caption_ink.x >= 0);  // the caption was drawn
  CHECK(caption_ink.x < out.cols - 2);
  CHECK(caption_ink.y < layout.caption.y + layout.caption.height - 1);
  const cv::Point legend_ink = last_ink(out, layout.legend);
  CHECK(legend_ink.x >= layout.legend.x);  // the legend was drawn
  CHECK(legend_ink.x < out.cols - 2);
  CHECK(legend_ink.y < out.rows - 2);
}

TEST_CASE("overlay text boxes do not overlap each other", "[explain][overlay]") {
  const int size = GENERATE(32, 128, 224);
  cv::Mat display, heat;
  phantom(size, size, display, heat);
  explain::OverlayOptions options;
  options.caption = "consolidation 0.996 [saliency]";
  options.legend_note = "per image";
  explain::OverlayLayout layout;
  explain::make_overlay(display, heat, options, &layout);
  for (size_t i = 0; i < layout.text.size(); ++i) {
    for (size_t j = i + 1; j < layout.text.size(); ++j) {
      CAPTURE(size, i, j);
      CHECK((layout.text[i] & layout.text[j]).area() == 0);
    }
  }
}

TEST_CASE("overlay keeps the size of the image when it has neither caption nor legend", "[explain][overlay]") {
  cv::Mat display, heat;
  phantom(40, 30, display, heat);
  explain::OverlayOptions plain;
  plain.legend = false;
  const cv::Mat out = explain::make_overlay(display, heat, plain);
  CHECK(out.cols == 40);
  CHECK(out.rows == 30);
}

TEST_CASE("overlay of a colour image keeps its colours where the map is cold", "[explain][overlay]") {
  // A pure red (BGR) image with a map that is zero everywhere: the overlay is the red image.
  const cv::Mat display(50, 60, CV_32FC3, cv::Scalar(0.0, 0.0, 1.0));
  const cv::Mat heat = cv::Mat::zeros(50, 60, CV_32FC1);
  explain::OverlayOptions plain;
  plain.legend = false;
  const cv::Mat out = explain::make_overlay(display, heat, plain);
  CHECK(out.at<cv::Vec3b>(10, 10) == cv::Vec3b(0, 0, 255));
  // A grey image stays grey.
  const cv::Mat grey(50, 60, CV_32FC1, cv::Scalar(0.5));
  const cv::Mat g = explain::make_overlay(grey, heat, plain);
  CHECK(g.at<cv::Vec3b>(10, 10) == cv::Vec3b(128, 128, 128));
}

TEST_CASE("probabilities in captions never round to 1 or 0", "[explain][overlay]") {
  CHECK(explain::format_probability(0.996) == "0.996");
  CHECK(explain::format_probability(0.9996) == ">0.999");
  CHECK(explain::format_probability(0.58) == "0.580");
  CHECK(explain::format_probability(0.0004) == "<0.001");
}

TEST_CASE("an 8-bit display gives the overlay the float display would", "[explain][overlay]") {
  // 300 rows: the blend works in bands of 64 rows, the last one partial.
  cv::Mat display, heat;
  phantom(257, 300, display, heat);
  cv::Mat grey8, colour8;
  display.convertTo(grey8, CV_8U, 255.0);
  // Every 8-bit value, in both channel layouts: v / 255 in float rounds back to v.
  for (int y = 0; y < grey8.rows; ++y) {
    for (int x = 0; x < grey8.cols; ++x) grey8.at<uchar>(y, x) = static_cast<uchar>((x + 7 * y) % 256);
  }
  cv::Mat planes[] = {grey8, 255 - grey8, grey8 / 2};
  cv::merge(planes, 3, colour8);
  for (const cv::Mat& eight : {grey8, colour8}) {
    INFO("channels " << eight.channels());
    cv::Mat asfloat;
    eight.convertTo(asfloat, CV_32F, 1.0 / 255.0);
    for (bool diverging : {false, true}) {
      explain::OverlayOptions look;
      look.diverging = diverging;
      look.caption = "NORMAL 0.91";
      const cv::Mat a = explain::make_overlay(eight, heat, look);
      const cv::Mat b = explain::make_overlay(asfloat, heat, look);
      REQUIRE(a.size() == b.size());
      CHECK(cv::norm(a, b, cv::NORM_INF) == 0);
    }
  }
}
