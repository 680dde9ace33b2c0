#include "train/loss.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>

#include "core/error.h"

namespace medattn::train {

namespace F = torch::nn::functional;

Balance parse_balance(const std::string& text) {
  if (text == "weights") return Balance::kWeights;
  if (text == "logit-adjust") return Balance::kLogitAdjust;
  if (text == "none") return Balance::kNone;
  throw Error(ErrorKind::kInvalidArgument, "--balance '" + text + "' is not one of weights, logit-adjust, none");
}

std::string balance_name(Balance balance) {
  switch (balance) {
    case Balance::kWeights: return "weights";
    case Balance::kLogitAdjust: return "logit-adjust";
    case Balance::kNone: return "none";
  }
  return "weights";
}

std::string describe_loss(Balance balance) {
  switch (balance) {
    case Balance::kWeights: return "cross-entropy, inverse-frequency class weights";
    case Balance::kLogitAdjust:
      return "cross-entropy on logits + log training class prior (logit adjustment, tau 1); predictions use the plain logits";
    case Balance::kNone: return "cross-entropy, unweighted";
  }
  return "";
}

at::Tensor training_loss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& class_counts,
                         Balance balance, double label_smoothing) {
  const auto counts = class_counts.to(at::kFloat).clamp_min(1);
  auto options = F::CrossEntropyFuncOptions().label_smoothing(label_smoothing);
  switch (balance) {
    case Balance::kWeights:
      return F::cross_entropy(logits, labels, options.weight(counts.sum() / counts / counts.size(0)));
    case Balance::kLogitAdjust:
      return F::cross_entropy(logits + (counts / counts.sum()).log().to(logits.dtype()), labels, options);
    case Balance::kNone:
      return F::cross_entropy(logits, labels, options);
  }
  return F::cross_entropy(logits, labels, options);
}

Mixed mixup(const at::Tensor& x, double alpha) {
  if (!(alpha > 0)) throw Error(ErrorKind::kInvalidArgument, "mixup alpha must be positive");
  // Beta(a, a) as G1 / (G1 + G2) with G1, G2 ~ Gamma(a, 1).
  const auto g = at::_standard_gamma(at::full({2}, alpha, at::kDouble));
  const double g1 = g[0].item<double>(), g2 = g[1].item<double>();
  Mixed mix;
  mix.lambda = g1 + g2 > 0 ? g1 / (g1 + g2) : 0.5;
  mix.partner = at::randperm(x.size(0), at::kLong);
  mix.x = x * mix.lambda + x.index_select(0, mix.partner) * (1.0 - mix.lambda);
  return mix;
}

at::Tensor mixup_loss(const at::Tensor& logits, const at::Tensor& labels, const Mixed& mix, const at::Tensor& class_counts,
                      Balance balance, double label_smoothing) {
  return training_loss(logits, labels, class_counts, balance, label_smoothing) * mix.lambda +
         training_loss(logits, labels.index_select(0, mix.partner), class_counts, balance, label_smoothing) * (1.0 - mix.lambda);
}

}  // namespace medattn::train
