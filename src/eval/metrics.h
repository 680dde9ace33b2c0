// Classification metrics, computed exactly (no sampling): accuracy, ROC AUC with ties,
// sensitivity/specificity, F1, expected calibration error, confusion matrix.
#pragma once

#include <cstdint>
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

// What ECE a perfectly calibrated model would show on these samples, by chance alone: the
// top-class confidences are kept and each sample's top class is drawn right with exactly that
// probability, `draws` times (fixed seed). An observed ECE below `p95` cannot be told from
// perfect calibration on this many samples; ECE is biased upward on small sets.
struct CalibratedEce {
  double mean = 0;  // mean ECE over the draws
  double p95 = 0;   // 95th percentile (linear interpolation)
  int draws = 0;
};
CalibratedEce ece_if_calibrated(const Predictions& p, int draws = 1000, uint64_t seed = 1, int bins = 15);

struct Metrics {
  int n = 0;
  double accuracy = 0;
  double balanced_accuracy = 0;
  double auc = 0;          // binary: class 1 positive; multi-class: macro one-vs-rest mean
  double sensitivity = 0;  // binary: recall of class 1; multi-class: macro mean recall
  double specificity = 0;  // binary: recall of class 0; multi-class: macro mean specificity
  double f1 = 0;           // binary: F1 of class 1; multi-class: macro F1
  double macro_f1 = 0;     // mean F1 over the classes (both classes for binary models)
  double ece = 0;          // 15 bins
  std::vector<std::vector<int>> confusion;  // [true][predicted]
  std::vector<double> precision, recall;    // per class
  std::vector<double> auc_per_class;        // one-vs-rest, per class (NaN: a class without samples)
};

// Decision rule: the most probable class (first one on ties); for two classes with
// `threshold` in [0,1], class 1 when its probability >= threshold.
Metrics compute_metrics(const Predictions& p, double threshold = -1.0);

// The predicted class under the decision rule of compute_metrics().
int decide(const std::vector<double>& probabilities, double threshold = -1.0);

struct Interval {
  double low = 0, high = 0;  // 2.5th and 97.5th percentiles
};

struct BootstrapResult {
  Interval auc, accuracy;
  int resamples = 0;
};

// Percentile bootstrap (resampling samples with replacement, fixed seed) of AUC and
// accuracy. Resamples in which a class is missing are redrawn for the AUC.
BootstrapResult bootstrap(const Predictions& p, int resamples = 1000, uint64_t seed = 1,
                          double threshold = -1.0);

// One metric of two models on the same samples: its values and the paired difference a - b.
struct PairedDifference {
  double a = 0, b = 0, difference = 0;
  Interval ci;  // 95% percentile interval of the difference over the resamples
};

struct PairedBootstrapResult {
  PairedDifference balanced_accuracy, macro_f1, auc, accuracy;
  int resamples = 0;
};

// Paired percentile bootstrap of the difference between two models' predictions on the same
// samples (same order, same labels): each resample draws sample indices with replacement and
// scores both models on them. REQUIRES: a.labels == b.labels. Resamples in which a class is
// missing are skipped for the AUC.
PairedBootstrapResult paired_bootstrap(const Predictions& a, const Predictions& b, int resamples = 1000,
                                       uint64_t seed = 1, double threshold_a = -1.0, double threshold_b = -1.0);

struct RocPoint {
  double fpr, tpr, threshold;
};

// ROC curve of the score of class `positive` (one-vs-rest), from (0,0) to (1,1), one point
// per distinct score.
std::vector<RocPoint> roc_curve(const Predictions& p, int positive);

// Chooses a decision threshold for class 1 of a binary model on validation predictions:
// "balanced" maximises balanced accuracy (Youden's J); "sensitivity=X" is the highest
// threshold whose sensitivity is at least X. Throws medattn::Error(kInvalidArgument) on an
// unknown rule or a non-binary model.
double choose_threshold(const Predictions& p, const std::string& rule);

// Fits the softmax temperature T > 0 that minimises the negative log-likelihood of
// `labels` under softmax(logits / T) (golden-section search on log T in [0.05, 20]).
// logits[i][k] as Predictions::probabilities.
double fit_temperature(const std::vector<std::vector<double>>& logits, const std::vector<int>& labels);

// softmax(logits / temperature) per row.
Predictions apply_temperature(const std::vector<std::vector<double>>& logits, const std::vector<int>& labels,
                              double temperature);

}  // namespace medattn::eval
