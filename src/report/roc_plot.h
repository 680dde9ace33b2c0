// The ROC curve as a PNG, with the operating point marked.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "eval/metrics.h"

namespace medattn::report {

struct RocSeries {
  std::string label;                  // e.g. "PNEUMONIA (AUC 0.981)"
  std::vector<eval::RocPoint> points;
  double op_fpr = -1, op_tpr = -1;    // operating point; negative = none
};

// Draws the curves on a size x size white canvas with axes, the chance diagonal, grid
// lines at 0.2 steps and a legend. Returns CV_8UC3.
cv::Mat plot_roc(const std::vector<RocSeries>& series, int size = 640);

}  // namespace medattn::report
