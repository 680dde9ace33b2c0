// PNG encoding of the heatmap files, tuned for speed: the encoder thread of `diagnose
// --heatmaps` spent most of its time in OpenCV's PNG writer (docs/performance.md).
#pragma once

#include <opencv2/core.hpp>
#include <string>

namespace medattn::explain {

// The PNG file of an 8-bit grey (CV_8UC1), 8-bit colour (CV_8UC3, BGR) or 16-bit grey
// (CV_16UC1) image: every row with the Up filter, one zlib stream in one IDAT chunk (libdeflate
// at level 1; zlib level 1 with run-length matching, streamed row by row, above 4 MB of pixels).
// Decodes to exactly `image`. Other types throw.
std::string encode_png_fast(const cv::Mat& image);

// Whether encode_png_fast takes `image` (a non-empty CV_8UC1, CV_8UC3 or CV_16UC1).
bool fast_png_takes(const cv::Mat& image);

}  // namespace medattn::explain
