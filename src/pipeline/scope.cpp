#include "pipeline/scope.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <opencv2/imgproc.hpp>

#include "preprocess/preprocess.h"

namespace medattn::pipeline {
namespace {

std::string upper_trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  std::string out = s.substr(b, e - b + 1);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool listed(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), upper_trimmed(value)) != list.end();
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

}  // namespace

double channel_spread(const cv::Mat& display) {
  if (display.channels() != 3 || display.empty()) return 0.0;
  std::vector<cv::Mat> planes;
  cv::split(display, planes);
  cv::Mat hi = cv::max(cv::max(planes[0], planes[1]), planes[2]);
  cv::Mat lo = cv::min(cv::min(planes[0], planes[1]), planes[2]);
  return cv::mean(hi - lo)[0];
}

std::string scope_check(const io::Image& image, const cv::Mat& display, const model::ModelCard& card,
                        const ScopeLimits& limits, const cv::Mat& grey) {
  const auto& use = card.intended_use;
  const std::string model = "model '" + card.name + "'";
  if (image.format == io::FileFormat::kDicom) {
    if (!use.modalities.empty() && !image.modality.empty() && !listed(use.modalities, image.modality)) {
      return "out of scope: DICOM Modality '" + image.modality + "' (" + model + " takes " + model::join_list(use.modalities) + ")";
    }
    const auto parts = model::parse_upper_list(use.body_part);
    if (!parts.empty() && !upper_trimmed(image.body_part).empty() && !listed(parts, image.body_part)) {
      return "out of scope: DICOM BodyPartExamined '" + image.body_part + "' (" + model + " takes " + model::join_list(parts) + ")";
    }
    if (use.age_years && image.patient_age &&
        (image.patient_age->years < use.age_years->first || image.patient_age->years > use.age_years->second)) {
      return "out of scope: patient aged " + fmt("%.1f", image.patient_age->years) + " years (" + image.patient_age->source +
             "); " + model + " is for patients aged " + model::describe_ages(*use.age_years);
    }
  }
  const int size = card.preprocess.image_size;
  const int longer = std::max(image.pixels.cols, image.pixels.rows);
  const int needed = static_cast<int>(std::ceil(limits.min_side_share * size));
  if (longer < needed) {
    return "out of scope: image " + std::to_string(image.pixels.cols) + "x" + std::to_string(image.pixels.rows) +
           " is too small for " + model + " (input " + std::to_string(size) + " px; longer side at least " +
           std::to_string(needed) + ")";
  }
  cv::Scalar mean, stddev;
  cv::meanStdDev(grey.empty() ? preprocess::to_grey(display) : grey, mean, stddev);
  if (stddev[0] < limits.min_std) {
    return "out of scope: near-constant image after windowing (standard deviation " + fmt("%.4f", stddev[0]) + ", minimum " +
           fmt("%g", limits.min_std) + ")";
  }
  const bool grey_model = use.colour.empty() ? card.preprocess.channels == 1 : use.colour == "grey";
  if (grey_model && display.channels() == 3) {
    const double spread = channel_spread(display);
    if (spread > limits.max_channel_spread) {
      return "out of scope: colour image for grey " + model + " (channel spread " + fmt("%.3f", spread) + ", limit " +
             fmt("%g", limits.max_channel_spread) + ")";
    }
  }
  return "";
}

}  // namespace medattn::pipeline
