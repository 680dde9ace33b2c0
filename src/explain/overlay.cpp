#include "explain/overlay.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <algorithm>
#include <functional>
#include <vector>

#include "core/error.h"
#include "core/fs.h"

namespace medattn::explain {

float top_fraction_threshold(const cv::Mat& heatmap, double fraction) {
  std::vector<float> values(heatmap.begin<float>(), heatmap.end<float>());
  if (values.empty()) return 1.0f;
  const size_t k = std::min(values.size() - 1, static_cast<size_t>(fraction * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<long>(k), values.end(), std::greater<float>());
  return values[k];
}

cv::Mat make_overlay(const cv::Mat& display, const cv::Mat& heatmap, const OverlayOptions& options) {
  CV_Assert(heatmap.type() == CV_32FC1 && display.size() == heatmap.size());
  cv::Mat grey = display;
  if (display.channels() == 3) cv::cvtColor(display, grey, cv::COLOR_BGR2GRAY);
  cv::Mat base8, base;
  grey.convertTo(base8, CV_8U, 255.0);
  cv::cvtColor(base8, base, cv::COLOR_GRAY2BGR);

  cv::Mat heat8, colour, clipped;
  cv::min(cv::max(heatmap, 0.0), 1.0, clipped);
  clipped.convertTo(heat8, CV_8U, 255.0);
  cv::applyColorMap(heat8, colour, cv::COLORMAP_TURBO);

  // Per-pixel weight alpha * h: strong evidence shows in colour, the rest stays readable.
  cv::Mat weight, w3;
  clipped.convertTo(weight, CV_32F, options.alpha);
  cv::merge(std::vector<cv::Mat>{weight, weight, weight}, w3);
  cv::Mat basef, colourf;
  base.convertTo(basef, CV_32FC3);
  colour.convertTo(colourf, CV_32FC3);
  cv::Mat blended = basef.mul(cv::Scalar::all(1.0) - w3) + colourf.mul(w3);
  cv::Mat out;
  blended.convertTo(out, CV_8UC3);

  const int side = std::min(out.rows, out.cols);
  if (side < 96) return out;  // too small for annotations: the overlay alone
  const int thick = std::max(1, side / 300);
  if (options.contour_top > 0.0) {
    cv::Mat top = clipped >= top_fraction_threshold(clipped, options.contour_top);
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(top, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    cv::drawContours(out, contours, -1, cv::Scalar(255, 255, 255), thick + 1, cv::LINE_AA);
    cv::drawContours(out, contours, -1, cv::Scalar(0, 0, 0), std::max(1, thick / 2), cv::LINE_AA);
  }
  if (options.legend) {
    // Vertical bar at the right edge: high at the top, low at the bottom.
    const int bw = std::max(6, side / 40), bh = out.rows / 3;
    const int x0 = out.cols - bw - side / 40, y0 = side / 40 + side / 9;  // below the caption
    cv::Mat ramp(bh, 1, CV_8UC1);
    for (int i = 0; i < bh; ++i) ramp.at<uint8_t>(i) = static_cast<uint8_t>(255 - (255 * i) / std::max(1, bh - 1));
    cv::Mat bar;
    cv::applyColorMap(ramp, bar, cv::COLORMAP_TURBO);
    cv::resize(bar, bar, cv::Size(bw, bh), 0, 0, cv::INTER_NEAREST);
    bar.copyTo(out(cv::Rect(x0, y0, bw, bh)));
    cv::rectangle(out, cv::Rect(x0, y0, bw, bh), cv::Scalar(255, 255, 255), 1);
    const double fs = side / 700.0;
    auto label = [&](const char* text, int y) {
      int base_line = 0;
      const cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, fs, thick, &base_line);
      const cv::Point at(x0 - ts.width - 4, y);
      cv::putText(out, text, at, cv::FONT_HERSHEY_SIMPLEX, fs, cv::Scalar(0, 0, 0), thick + 2, cv::LINE_AA);
      cv::putText(out, text, at, cv::FONT_HERSHEY_SIMPLEX, fs, cv::Scalar(255, 255, 255), thick, cv::LINE_AA);
    };
    label("high", y0 + static_cast<int>(12 * fs * 2));
    label("low", y0 + bh);
  }
  if (!options.caption.empty()) {
    const double fs = side / 450.0;
    int base_line = 0;
    const cv::Size ts = cv::getTextSize(options.caption, cv::FONT_HERSHEY_SIMPLEX, fs, thick, &base_line);
    const cv::Rect box(0, 0, std::min(out.cols, ts.width + 12), ts.height + base_line + 12);
    cv::Mat roi = out(box);
    roi = roi * 0.35;  // darken behind the text so it reads on any image
    cv::putText(out, options.caption, cv::Point(6, ts.height + 6), cv::FONT_HERSHEY_SIMPLEX, fs,
                cv::Scalar(255, 255, 255), thick, cv::LINE_AA);
  }
  return out;
}

void write_png(const std::string& path, const cv::Mat& image) {
  std::vector<uchar> bytes;
  if (!cv::imencode(".png", image, bytes)) {
    throw file_error(ErrorKind::kIOError, "cannot write", path, "PNG encoding failed");
  }
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()), /*sync=*/false);
}

cv::Mat heatmap_to_u16(const cv::Mat& heatmap) {
  cv::Mat clipped, out;
  cv::min(cv::max(heatmap, 0.0), 1.0, clipped);
  clipped.convertTo(out, CV_16U, 65535.0);
  return out;
}

}  // namespace medattn::explain
