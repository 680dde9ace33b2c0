// Turning a heatmap into pictures: the overlay a person looks at and the raw map a script
// reads back.
#pragma once

#include <opencv2/core.hpp>
#include <string>

namespace medattn::explain {

struct OverlayOptions {
  double alpha = 0.5;        // colour opacity at the hottest point; it falls with the heatmap
  std::string caption;       // e.g. "nodule 0.97", drawn in the top-left corner (empty: none)
  double contour_top = 0.0;  // > 0: outline the top fraction of the map's pixels (e.g. 0.05)
  bool legend = true;        // a low-to-high colour bar at the right edge
};

// display: the windowed original, CV_32FC1 or CV_32FC3 in [0,1]; heatmap: CV_32FC1 in [0,1]
// of the same size. Returns a CV_8UC3 BGR image of the same size: the original in grey with
// the heatmap in the TURBO colour map blended in, weighted by alpha * heatmap (cold regions
// stay the original), plus the caption, contour and legend where the image is large enough
// to hold them (at least 96 pixels on its shorter side).
cv::Mat make_overlay(const cv::Mat& display, const cv::Mat& heatmap, const OverlayOptions& options = {});

// The threshold above which the top `fraction` of the map's pixels lie.
float top_fraction_threshold(const cv::Mat& heatmap, double fraction);

// Encodes `image` as PNG and writes it atomically. Throws medattn::Error(kIOError).
void write_png(const std::string& path, const cv::Mat& image);

// The raw map as a 16-bit grey PNG: value v in [0,1] stored as round(v * 65535).
cv::Mat heatmap_to_u16(const cv::Mat& heatmap);

}  // namespace medattn::explain
