// Attention rollout (Abnar & Zuidema, 2020): how much each image token contributed to the
// CLS token through all Transformer blocks, with the residual path accounted for.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "explain/options.h"

namespace medattn::explain {

// attentions: per block [B,H,T,T] (rows sum to 1), token 0 = CLS.
// Per block: fuse heads -> A; discard; A' = (A + I) / 2 renormalised so rows sum to 1;
// R = A'_L * ... * A'_1. Returns R's CLS row over the image tokens: [B,T-1], not normalised
// (values are the share of CLS that flowed from each token).
at::Tensor attention_rollout(const std::vector<at::Tensor>& attentions,
                             const RolloutOptions& options = {});

}  // namespace medattn::explain
