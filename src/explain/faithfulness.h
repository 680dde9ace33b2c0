// Measuring heatmaps: against known lesions (pointing game, IoU), against the model itself
// (deletion/insertion), and against a model whose weights were randomised (Adebayo et al.
// 2018 sanity check).
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "explain/methods.h"
#include "model/card.h"

namespace medattn::explain {

// True when the map's maximum (the first one in row-major order) lies inside the mask.
// map: CV_32FC1; mask: CV_8UC1 of the same size, nonzero = lesion. REQUIRES: mask not empty.
bool pointing_game_hit(const cv::Mat& map, const cv::Mat& mask);

// IoU between the mask and the map's top region of the same area (the k = |mask| highest
// pixels; ties broken by row-major order).
double heatmap_iou(const cv::Mat& map, const cv::Mat& mask);

// Mean of ys over equally spaced points of [0,1] by the trapezoidal rule.
double trapezoid_auc(const std::vector<double>& ys);

// Spearman rank correlation of two equally long samples (average ranks for ties); 0 when
// either is constant.
double spearman(const std::vector<float>& a, const std::vector<float>& b);

struct DeletionInsertion {
  double deletion_auc = 0;   // lower is better: removing the most relevant pixels first
  double insertion_auc = 0;  // higher is better: adding them first to a blurred image
};

// For each image: the target class's probability (softmax(logits / temperature)) as the
// most relevant pixels (by `maps`, [B,S,S]) are replaced by the blurred baseline (deletion)
// or copied into it (insertion), in `steps` equal steps from 0 to all pixels.
// x: [B,C,S,S] normalised input; clinical: [B,F] or undefined (model/net.h).
std::vector<DeletionInsertion> deletion_insertion(model::AttnNet& net, const at::Tensor& x,
                                                  const at::Tensor& maps, const std::vector<int>& targets,
                                                  double temperature, int steps = 16,
                                                  const at::Tensor& clinical = {});

// The same for an ensemble: the probability is that of the members' mean logits.
std::vector<DeletionInsertion> deletion_insertion(const std::vector<model::AttnNet>& nets, const at::Tensor& x,
                                                  const at::Tensor& maps, const std::vector<int>& targets,
                                                  double temperature, int steps = 16,
                                                  const at::Tensor& clinical = {});

// Cascading randomisation from the top layer down: after re-initialising each layer in turn
// (keeping those above randomised), recomputes the maps for the same targets and reports
// their rank correlation with the original maps, averaged over `draws` independent random
// re-initialisations (one draw varies by about +-0.15). Works on copies; `net` is unchanged.
std::vector<RandomizationStep> randomization_check(const model::ModelCard& card, model::AttnNet& net,
                                                   const at::Tensor& x, const ExplainOptions& options,
                                                   uint64_t seed = 1, int draws = 3,
                                                   const at::Tensor& clinical = {});

// The floor of that check: the mean rank correlation (over `draws` pairs) between the maps of
// two independently initialised networks of the card's architecture (same inputs, same targets as `net`
// predicts). What remains at this level is shared by any two random networks (architecture
// and input structure), not learned.
double randomization_floor(const model::ModelCard& card, model::AttnNet& net, const at::Tensor& x,
                           const ExplainOptions& options, uint64_t seed = 1, int draws = 3,
                           const at::Tensor& clinical = {});

}  // namespace medattn::explain
