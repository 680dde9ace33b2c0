// Heatmap method choices and their options: plain data, no LibTorch, so the CLI and the
// option structs of other modules can hold them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace medattn::explain {

enum class HeadFusion { kMean, kMax, kMin };

// Parses "mean", "max", "min". Throws medattn::Error(kInvalidArgument) otherwise.
HeadFusion parse_head_fusion(const std::string& name);
const char* head_fusion_name(HeadFusion fusion);

struct RolloutOptions {
  HeadFusion head_fusion = HeadFusion::kMean;
  // Fraction of the smallest fused attention weights per row set to zero before adding the
  // identity (0 = keep all). The CLS column is never discarded. REQUIRES: 0 <= x < 1.
  double discard_ratio = 0.0;
};

// Parses a heatmap method's name: returns it when it is one of explain/registry.h's methods;
// throws medattn::Error(kInvalidArgument) naming the choices otherwise.
std::string parse_method(const std::string& name);

struct ExplainOptions {
  // The heatmap method: a name from the table of explain/registry.h (rollout, saliency, ...).
  std::string method = "rollout";
  RolloutOptions rollout;      // rollout only
  int occlusion_patch = 16;    // occlusion: patch side in model-input pixels
  int occlusion_stride = 8;    // occlusion: step between patches
  int occlusion_batch = 64;    // occlusion: occluded images per forward pass
  double saliency_sigma = -1;  // saliency: Gaussian blur in input pixels; < 0: input size / 24; 0: none
  uint64_t seed = 1;           // random baseline
  // Also average the map over these flips of the input ("hflip", "vflip"; model::parse_flips),
  // each view's map taken back to the image's orientation, as pytorch-grad-cam's aug_smooth
  // does: a model trained with flips should not be explained by one orientation's artefacts.
  std::vector<std::string> flips;
  // Keep the method's own units instead of scaling each map to [0,1] by its own minimum and
  // maximum (views and networks are averaged): maps that can be compared across images, for
  // --heatmap-scale model, which divides them by the card's reference. The baselines (random,
  // centre) stay scaled.
  bool absolute = false;
};

struct RandomizationStep {
  std::string layer;   // "head", "norm", "blocks.2", ..., "proj", "stem.2", ..., "stem.0"
  double spearman = 0; // mean over images of the rank correlation with the original maps
};

}  // namespace medattn::explain
