// Heatmap methods: where the model looked for a class. Every method returns maps over the
// model input in [0,1]; preprocess::map_to_original() takes them to the original image.
// Without LibTorch's module headers (model/net_api.h), so that a method file compiles fast.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "explain/options.h"
#include "explain/rollout.h"
#include "model/net_api.h"

namespace medattn::explain {

struct Explanation {
  at::Tensor logits;  // [B,K] (no temperature applied)
  at::Tensor maps;    // [B,S,S] in [0,1] (per-image min-max), S = model input size
  std::vector<int> targets;  // the class each map explains
  // Method "contrast" only: [B,S,S] in [-1,1], evidence for the target (> 0) and against it
  // (< 0), each image divided by its largest magnitude; `maps` is then its positive part, which
  // the metrics and the raw PNG use like any other method's map. Undefined for other methods.
  at::Tensor signed_maps;
};

// Explains x ([B,C,S,S] normalised input; clinical [B,F] or undefined, see model/net.h) for
// `targets` (one class per image; -1 or an empty vector = the predicted class, argmax of the
// logits). The net is put in eval mode. Gradient methods run their own forward pass with
// gradients; others run without. Maps cover the image only (colour channels summed).
// With more than one test-time view (model::tta_views), the logits are the mean over the views
// and the targets are resolved from that mean. With test-time views or options.flips, the map
// is the mean of every view's map taken back to the image's orientation, over the views of
// both together (the random and centre baselines stay as they are).
Explanation explain(model::AttnNet& net, const at::Tensor& x, const ExplainOptions& options,
                    const std::vector<int>& targets = {}, const at::Tensor& clinical = {},
                    const std::vector<int>& views = {});

// An ensemble (model::LoadedModel::nets): the logits are the mean of the members' logits (each
// over `views`), the targets are resolved from that mean, and the map is the mean of the
// members' maps for those targets (the random and centre baselines are computed once).
Explanation explain(const std::vector<model::AttnNet>& nets, const at::Tensor& x, const ExplainOptions& options,
                    const std::vector<int>& targets = {}, const at::Tensor& clinical = {},
                    const std::vector<int>& views = {});

// For a model with clinical covariates, how the CLS token's attention reaches each covariate:
// [B,F], each row sums to at most 1. Joint fusion: the share of the CLS token's attention rollout
// (mean over heads, no discarding) at each covariate token (the rest goes to the image tokens
// and CLS itself). Cross fusion: the CLS query's cross-attention weights, mean over heads and
// blocks (rows sum to 1: how the attention paid to the covariates divides among them).
// Undefined for image-only models.
at::Tensor clinical_attention(model::AttnNet& net, const at::Tensor& x, const at::Tensor& clinical);

// An ensemble's: the mean over its members.
at::Tensor clinical_attention(const std::vector<model::AttnNet>& nets, const at::Tensor& x, const at::Tensor& clinical);

// The same from a forward pass already made with keep_attention.
at::Tensor clinical_attention(model::AttnNet& net, const model::NetOutput& out);

// A Gaussian-blurred copy of x ([B,C,S,S], sigma = S/16): the "information removed" baseline
// of occlusion and of the deletion/insertion metrics.
at::Tensor blurred_baseline(const at::Tensor& x);

// Bilinear upsampling of [B,g,g] maps to [B,S,S] followed by per-image min-max scaling.
at::Tensor upsample_maps(const at::Tensor& maps, int size);

}  // namespace medattn::explain
