// The training loss and how it handles class imbalance.
#pragma once

#include <string>

#include <ATen/core/Tensor.h>

namespace medattn::train {

// How the loss treats unequal class counts (`train --balance`):
//  - kWeights: cross-entropy with inverse-frequency class weights (normalised to mean 1);
//  - kLogitAdjust: logit adjustment (Menon et al., ICLR 2021): cross-entropy on
//    logits + log(class prior) with no weights, so that the plain logits, which diagnoses use,
//    estimate a posterior under equal priors and their argmax targets balanced accuracy;
//  - kNone: plain cross-entropy.
enum class Balance { kWeights, kLogitAdjust, kNone };

// "weights", "logit-adjust" or "none"; throws medattn::Error naming the value otherwise.
Balance parse_balance(const std::string& text);
std::string balance_name(Balance balance);
// The card's `training.loss.name` for a balance rule.
std::string describe_loss(Balance balance);

// Mean loss of a batch. `logits` [B, K], `labels` [B] (int64), `class_counts` [K] training
// images per class (float; zeros are treated as one).
at::Tensor training_loss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& class_counts,
                         Balance balance, double label_smoothing);

// Mixup (Zhang et al., ICLR 2018): each image of a batch is blended with another image of the
// same batch, x' = lambda * x + (1 - lambda) * x[partner], lambda ~ Beta(alpha, alpha), one
// lambda per batch. Draws from LibTorch's default generator (repeatable under its seed).
struct Mixed {
  at::Tensor x;        // the blended images
  at::Tensor partner;  // [B] int64: index of the image each one was blended with
  double lambda = 1.0; // weight of the original image
};
Mixed mixup(const at::Tensor& x, double alpha);

// training_loss of blended images: lambda * loss(labels) + (1 - lambda) * loss(labels[partner]).
at::Tensor mixup_loss(const at::Tensor& logits, const at::Tensor& labels, const Mixed& mix, const at::Tensor& class_counts,
                      Balance balance, double label_smoothing);

}  // namespace medattn::train
