// JPEG decoding straight through libjpeg(-turbo): OpenCV's decoder asks libjpeg for RGB and
// then swaps every pixel to BGR one byte at a time (12% of `diagnose`'s CPU on 224 px chest
// X-rays without heatmaps); libjpeg-turbo writes BGR itself.
#pragma once

#include <opencv2/core.hpp>
#include <cstddef>

namespace medattn::io {

// The pixels cv::imdecode(bytes, IMREAD_UNCHANGED) gives for a baseline or progressive JPEG of
// one (grey, CV_8UC1) or three (BGR, CV_8UC3) components: libjpeg's defaults (islow DCT, fancy
// upsampling), no EXIF rotation. An empty Mat for anything else (CMYK, a decoding error):
// OpenCV's decoder then decides.
cv::Mat decode_jpeg(const unsigned char* data, size_t size);

}  // namespace medattn::io
