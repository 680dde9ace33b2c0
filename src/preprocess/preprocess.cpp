#include "preprocess/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>
#include <opencv2/imgproc.hpp>

namespace medattn::preprocess {

Letterbox letterbox_for(int width, int height, int size) {
  Letterbox lb;
  lb.original_width = width;
  lb.original_height = height;
  const double scale = static_cast<double>(size) / std::max(width, height);
  const int w = std::clamp(static_cast<int>(std::lround(width * scale)), 1, size);
  const int h = std::clamp(static_cast<int>(std::lround(height * scale)), 1, size);
  lb.content = cv::Rect((size - w) / 2, (size - h) / 2, w, h);
  return lb;
}

cv::Mat to_grey(const cv::Mat& display) {
  if (display.channels() == 1) return display;
  cv::Mat grey;
  cv::cvtColor(display, grey, display.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  return grey;
}

cv::Mat to_channels(const cv::Mat& display, int channels) {
  if (channels == 1) return to_grey(display);
  if (display.channels() == 3) return display;
  cv::Mat bgr;
  cv::cvtColor(display, bgr, display.channels() == 4 ? cv::COLOR_BGRA2BGR : cv::COLOR_GRAY2BGR);
  return bgr;
}

void copy_planar(const cv::Mat& prepared, float* dst) {
  CV_Assert(prepared.depth() == CV_32F && prepared.isContinuous());
  const size_t plane = static_cast<size_t>(prepared.rows) * prepared.cols;
  if (prepared.channels() == 1) {
    std::memcpy(dst, prepared.ptr<float>(), plane * sizeof(float));
    return;
  }
  std::vector<cv::Mat> planes;
  for (int c = 0; c < prepared.channels(); ++c) planes.emplace_back(prepared.rows, prepared.cols, CV_32FC1, dst + c * plane);
  cv::split(prepared, planes);
}

cv::Mat prepare_display(const cv::Mat& display_any, const PreprocessConfig& config,
                        Letterbox* letterbox) {
  CV_Assert(display_any.depth() == CV_32F && !display_any.empty());
  const cv::Mat display = to_channels(display_any, config.channels);
  const int size = config.image_size;
  const Letterbox lb = letterbox_for(display.cols, display.rows, size);
  cv::Mat canvas(size, size, display.type(), cv::Scalar::all(0));
  cv::Mat resized;
  const bool shrinking = lb.content.width < display.cols;
  cv::resize(display, resized, lb.content.size(), 0, 0,
             shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  if (config.colour_constancy == "shades-of-grey" && resized.channels() == 3) shades_of_grey(resized);
  if (config.intensity == "percentile") stretch_percentiles(resized, config.intensity_low, config.intensity_high);
  resized.copyTo(canvas(lb.content));
  if (config.clahe) {
    std::vector<cv::Mat> planes;
    cv::split(canvas, planes);
    auto clahe = cv::createCLAHE(config.clahe_clip, cv::Size(config.clahe_tiles, config.clahe_tiles));
    for (auto& plane : planes) {
      cv::Mat u8, eq;
      plane.convertTo(u8, CV_8U, 255.0);
      clahe->apply(u8, eq);
      eq.convertTo(plane, CV_32F, 1.0 / 255.0);
    }
    cv::merge(planes, canvas);
  }
  cv::Mat out;
  canvas.convertTo(out, CV_32F, 1.0 / config.std, -config.mean / config.std);
  if (letterbox != nullptr) *letterbox = lb;
  return out;
}

void stretch_percentiles(cv::Mat& image, double low, double high) {
  CV_Assert(image.depth() == CV_32F && low >= 0 && low < high && high <= 100);
  const cv::Mat grey = to_grey(image);
  std::vector<float> values;
  values.reserve(grey.total());
  for (int y = 0; y < grey.rows; ++y) values.insert(values.end(), grey.ptr<float>(y), grey.ptr<float>(y) + grey.cols);
  if (values.empty()) return;
  auto rank = [&](double pct) {
    const size_t k = static_cast<size_t>(std::floor(pct / 100.0 * static_cast<double>(values.size() - 1)));
    std::nth_element(values.begin(), values.begin() + k, values.end());
    return static_cast<double>(values[k]);
  };
  const double lo = rank(low), hi = rank(high);
  if (hi - lo < 1e-3) return;
  image.convertTo(image, CV_32F, 1.0 / (hi - lo), -lo / (hi - lo));
  cv::min(cv::max(image, 0.0), 1.0, image);
}

void shades_of_grey(cv::Mat& image, double p) {
  CV_Assert(image.type() == CV_32FC3 && p >= 1);
  cv::Mat powered;
  cv::pow(image, p, powered);
  const cv::Scalar means = cv::mean(powered);
  double e[3], norm = 0;
  for (int c = 0; c < 3; ++c) {
    e[c] = std::pow(means[c], 1.0 / p);
    norm += e[c] * e[c];
  }
  norm = std::sqrt(norm);
  cv::Scalar gain;
  for (int c = 0; c < 3; ++c) gain[c] = e[c] < 1e-4 ? 1.0 : norm / (std::sqrt(3.0) * e[c]);
  cv::multiply(image, gain, image);
  cv::min(cv::max(image, 0.0), 1.0, image);
}

cv::Mat prepare(const io::Image& image, const PreprocessConfig& config, Letterbox* letterbox) {
  return prepare_display(io::to_display(image), config, letterbox);
}

cv::Mat prepare_mask(const cv::Mat& mask_display, int size) {
  const cv::Mat grey = to_grey(mask_display);
  const Letterbox lb = letterbox_for(grey.cols, grey.rows, size);
  cv::Mat resized, out(size, size, CV_8UC1, cv::Scalar(0));
  cv::resize(grey, resized, lb.content.size(), 0, 0,
             lb.content.width < grey.cols ? cv::INTER_AREA : cv::INTER_NEAREST);
  cv::Mat binary;
  cv::threshold(resized, binary, 0.5 - 1e-6, 255.0, cv::THRESH_BINARY);
  binary.convertTo(out(lb.content), CV_8U);
  return out;
}

cv::Mat map_to_original(const cv::Mat& square_map, const Letterbox& lb, int image_size) {
  CV_Assert(square_map.type() == CV_32FC1 && !square_map.empty());
  // Scale the content rectangle from model-input pixels to map pixels.
  const double sx = static_cast<double>(square_map.cols) / image_size;
  const double sy = static_cast<double>(square_map.rows) / image_size;
  // Upsample the map to the model input first so the crop is exact at pixel level.
  cv::Mat full;
  if (sx != 1.0 || sy != 1.0) {
    cv::resize(square_map, full, cv::Size(image_size, image_size), 0, 0, cv::INTER_LINEAR);
  } else {
    full = square_map;
  }
  cv::Mat out;
  cv::resize(full(lb.content), out, cv::Size(lb.original_width, lb.original_height), 0, 0,
             cv::INTER_LINEAR);
  return out;
}

}  // namespace medattn::preprocess
