#include "explain/overlay.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "core/error.h"
#include "core/fs.h"

namespace medattn::explain {

cv::Mat make_overlay(const cv::Mat& display, const cv::Mat& heatmap, double alpha) {
  CV_Assert(heatmap.type() == CV_32FC1 && display.size() == heatmap.size());
  cv::Mat grey = display;
  if (display.channels() == 3) cv::cvtColor(display, grey, cv::COLOR_BGR2GRAY);
  cv::Mat base8, base;
  grey.convertTo(base8, CV_8U, 255.0);
  cv::cvtColor(base8, base, cv::COLOR_GRAY2BGR);

  cv::Mat heat8, colour;
  cv::Mat clipped;
  cv::min(cv::max(heatmap, 0.0), 1.0, clipped);
  clipped.convertTo(heat8, CV_8U, 255.0);
  cv::applyColorMap(heat8, colour, cv::COLORMAP_TURBO);

  // Per-pixel weight alpha * h: strong evidence shows in colour, the rest stays readable.
  cv::Mat weight;
  cv::Mat w3;
  clipped.convertTo(weight, CV_32F, alpha);
  cv::merge(std::vector<cv::Mat>{weight, weight, weight}, w3);
  cv::Mat basef, colourf;
  base.convertTo(basef, CV_32FC3);
  colour.convertTo(colourf, CV_32FC3);
  cv::Mat blended = basef.mul(cv::Scalar::all(1.0) - w3) + colourf.mul(w3);
  cv::Mat out;
  blended.convertTo(out, CV_8UC3);
  return out;
}

void write_png(const std::string& path, const cv::Mat& image) {
  std::vector<uchar> bytes;
  if (!cv::imencode(".png", image, bytes)) {
    throw file_error(ErrorKind::kIOError, "cannot write", path, "PNG encoding failed");
  }
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

cv::Mat heatmap_to_u16(const cv::Mat& heatmap) {
  cv::Mat clipped, out;
  cv::min(cv::max(heatmap, 0.0), 1.0, clipped);
  clipped.convertTo(out, CV_16U, 65535.0);
  return out;
}

}  // namespace medattn::explain
