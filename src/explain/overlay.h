// Turning a heatmap into pictures: the overlay a person looks at and the raw map a script
// reads back.
#pragma once

#include <opencv2/core.hpp>
#include <string>

namespace medattn::explain {

// display: the windowed original, CV_32FC1 or CV_32FC3 in [0,1]; heatmap: CV_32FC1 in [0,1]
// of the same size. Returns a CV_8UC3 BGR image: the original in grey with the heatmap in the
// TURBO colour map blended in, weighted by alpha * heatmap (cold regions stay the original).
cv::Mat make_overlay(const cv::Mat& display, const cv::Mat& heatmap, double alpha = 0.5);

// Encodes `image` as PNG and writes it atomically. Throws medattn::Error(kIOError).
void write_png(const std::string& path, const cv::Mat& image);

// The raw map as a 16-bit grey PNG: value v in [0,1] stored as round(v * 65535).
cv::Mat heatmap_to_u16(const cv::Mat& heatmap);

}  // namespace medattn::explain
