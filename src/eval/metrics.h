// Classification metrics, computed exactly (no sampling): accuracy, ROC AUC with ties,
// sensitivity/specificity, F1, expected calibration error, confusion matrix.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace medattn::eval {

// probabilities[i][k]: predicted probability of class k for sample i (rows sum to 1).
// labels[i] in [0, K).
struct Predictions {
  std::vector<std::vector<double>> probabilities;
  std::vector<int> labels;
  int num_classes() const { return probabilities.empty() ? 0 : static_cast<int>(probabilities[0].size()); }
};

// Mann-Whitney AUC of `scores` for positives (label true) against negatives; tied scores
// count one half. Returns NaN when either group is empty.
double binary_auc(const std::vector<double>& scores, const std::vector<bool>& positive);

// Expected calibration error with `bins` equal-width confidence bins (top-class confidence).
double expected_calibration_error(const Predictions& p, int bins = 15);

struct Metrics {
  int n = 0;
  double accuracy = 0;
  double balanced_accuracy = 0;
  double auc = 0;          // binary: class 1 positive; multi-class: macro one-vs-rest mean
  double sensitivity = 0;  // binary: recall of class 1; multi-class: macro mean recall
  double specificity = 0;  // binary: recall of class 0; multi-class: macro mean specificity
  double f1 = 0;           // binary: F1 of class 1; multi-class: macro F1
  double ece = 0;          // 15 bins
  std::vector<std::vector<int>> confusion;  // [true][predicted]
  std::vector<double> precision, recall;    // per class
};

// Decision rule: the most probable class (first one on ties).
Metrics compute_metrics(const Predictions& p);

// The evaluate JSON keys of ../shared/CLI.md plus balanced_accuracy, precision, recall.
nlohmann::json metrics_to_json(const Metrics& m, const std::vector<std::string>& classes);

}  // namespace medattn::eval
