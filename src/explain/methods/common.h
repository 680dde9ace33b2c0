// What the heatmap methods (explain/methods/*.cpp) share: scaling, upsampling, the class to
// explain, blurring. Defined in explain/methods.cpp. Internal to explain/.
//
// ATen, not <torch/torch.h>: a method file compiles in about 6 s where LibTorch's whole API
// cost it 16-21 s. It runs the network through model/net_api.h; for gradients it has
// torch::autograd::grad() (torch/csrc/autograd/autograd.h, without the rest of the API) and
// the grad-mode guards c10::AutoGradMode and at::NoGradGuard.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <vector>

#include "explain/methods.h"

namespace medattn::explain::detail {

// Per-image min-max to [0,1]; constant maps become zero. maps: [B,H,W].
at::Tensor normalise(const at::Tensor& maps);

// The method's maps as the options want them: each scaled to [0,1], or left in its own units.
at::Tensor scaled(const at::Tensor& maps, const ExplainOptions& options);

// Token-grid maps [B,g,g] upsampled (bilinear) to [B,S,S], then scaled as the options say.
at::Tensor upsample_scaled(const at::Tensor& maps, int size, const ExplainOptions& options);

// The class each image's map explains: targets[b] when given and >= 0, else the argmax of
// logits ([B,K]).
std::vector<int> resolve_targets(const at::Tensor& logits, const std::vector<int>& targets);

// Sum over the batch of each image's target logit: one backward pass explains all images,
// since images do not interact in eval mode.
at::Tensor target_score(const at::Tensor& logits, const std::vector<int>& targets);

// Separable Gaussian blur of [B,C,H,W] (each channel on its own) with replicate borders.
at::Tensor gaussian_blur(const at::Tensor& x, double sigma);

// The saliency blur for input size S: options.saliency_sigma, or S/24 (at least 1) when < 0.
double saliency_sigma(const ExplainOptions& options, int S);

// The views the maps are averaged over, as flip bits: the prediction's views and the requested
// flips, closed under composition (hflip and vflip give all four views).
int map_view_bits(const ExplainOptions& options, const std::vector<int>& views);

}  // namespace medattn::explain::detail
