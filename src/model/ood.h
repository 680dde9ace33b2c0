// The out-of-distribution gate: class-conditional Gaussians with one shared covariance, fitted
// on the training images' CLS features (model/ood_features.h), and the Mahalanobis score of a
// new feature: its distance to the nearest class mean (Lee et al. 2018). Torch-free: features
// are plain vectors here; the card section is model::OodGate (model/card_scope.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/card.h"

namespace medattn::model {

inline constexpr const char* kOodFile = "ood.bin";
// The feature the gate scores unless told otherwise (chosen by measurement: see README).
inline constexpr const char* kDefaultOodFeature = "layers";

// What the score needs, stored as the gate's sidecar file.
struct GaussianStats {
  int classes = 0, dim = 0;
  std::vector<double> means;      // [classes * dim], row-major
  std::vector<double> precision;  // [dim * dim]: the inverse of the shrunk shared covariance
  double shrinkage = 0;           // covariance = (1 - s) * pooled + s * diag(pooled)
};

// Fits the class means and the pooled within-class covariance of `features` ([N][D]) with
// `labels` (0..classes-1), shrunk towards its own diagonal by `shrinkage` in [0, 1), and inverts
// it. Throws medattn::Error(kInvalidArgument) when there are no features, their lengths differ,
// a label is out of range, a class has no sample, or the covariance cannot be inverted.
GaussianStats fit_gaussians(const std::vector<std::vector<double>>& features, const std::vector<int>& labels,
                            int classes, double shrinkage = 0.01);

// The Mahalanobis score of one feature: min over classes k of
// sqrt((f - mean_k)^T precision (f - mean_k)). REQUIRES: f.size() == stats.dim.
double mahalanobis_score(const GaussianStats& stats, const std::vector<double>& feature);

// The energy score of logits (Liu et al. 2020), signed so that higher means more unusual like
// the Mahalanobis score: -T * log(sum_k exp(logit_k / T)).
double energy_score(const std::vector<double>& logits, double temperature = 1.0);

// The p-th percentile (0..100) of `values`, linearly interpolated between order statistics
// (numpy's default). REQUIRES: values not empty.
double percentile(std::vector<double> values, double p);

// Separation of scores of in-distribution (negatives) and out-of-distribution (positives)
// images: AUROC (ties count half), and the false-positive rate at 95% true-positive rate: the
// share of in-distribution images whose score is at least the 5th percentile of the OOD scores,
// i.e. that a threshold abstaining on 95% of the OOD images would also abstain on.
double ood_auroc(const std::vector<double>& in_scores, const std::vector<double>& out_scores);
double ood_fpr_at_95_tpr(const std::vector<double>& in_scores, const std::vector<double>& out_scores);

// Sidecar file: magic "MDATTNO1", u32 version 1, u32 classes, u32 dim, f64 shrinkage, then the
// means and the precision as f64 little-endian. Writes atomically.
void save_gaussians(const std::string& path, const GaussianStats& stats);

// Reads a sidecar file. Throws medattn::Error(kModel) "cannot load OOD statistics '<path>':
// <why>" on a wrong magic or version, a truncated file, sizes out of bounds or trailing bytes.
GaussianStats load_gaussians(const std::string& path);

// The gate of the model in `dir` as its card describes it: checks that card.ood.file exists
// and that its SHA-256 equals card.ood.sha256 (like the weights), reads it, and checks its
// class count against the card and its dimension against `feature_dim`. Throws
// medattn::Error(kModel) "cannot load model '<dir>': ood.bin does not match the card's SHA-256
// (got ..., expected ...): corrupt or replaced", "... missing ood.bin", or a shape mismatch.
// REQUIRES: card.ood.enabled().
GaussianStats load_gate(const std::string& dir, const ModelCard& card, int feature_dim);

// One line for an abstention by the gate, e.g. "out of distribution: Mahalanobis score 41.20
// above the threshold 18.73 (98th percentile of validation)".
std::string gate_reason(const OodGate& gate, double score);

}  // namespace medattn::model
