// What the heatmap methods (explain/methods/*.cpp) share: scaling, upsampling, the class to
// explain, blurring. Defined in explain/methods.cpp. Internal to explain/.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "explain/methods.h"

namespace medattn::explain::detail {

// Per-image min-max to [0,1]; constant maps become zero. maps: [B,H,W].
torch::Tensor normalise(const torch::Tensor& maps);

// The method's maps as the options want them: each scaled to [0,1], or left in its own units.
torch::Tensor scaled(const torch::Tensor& maps, const ExplainOptions& options);

// Token-grid maps [B,g,g] upsampled (bilinear) to [B,S,S], then scaled as the options say.
torch::Tensor upsample_scaled(const torch::Tensor& maps, int size, const ExplainOptions& options);

// The class each image's map explains: targets[b] when given and >= 0, else the argmax of
// logits ([B,K]).
std::vector<int> resolve_targets(const torch::Tensor& logits, const std::vector<int>& targets);

// Sum over the batch of each image's target logit: one backward pass explains all images,
// since images do not interact in eval mode.
torch::Tensor target_score(const torch::Tensor& logits, const std::vector<int>& targets);

// Separable Gaussian blur of [B,C,H,W] (each channel on its own) with replicate borders.
torch::Tensor gaussian_blur(const torch::Tensor& x, double sigma);

// The saliency blur for input size S: options.saliency_sigma, or S/24 (at least 1) when < 0.
double saliency_sigma(const ExplainOptions& options, int S);

// The views the maps are averaged over, as flip bits: the prediction's views and the requested
// flips, closed under composition (hflip and vflip give all four views).
int map_view_bits(const ExplainOptions& options, const std::vector<int>& views);

}  // namespace medattn::explain::detail
