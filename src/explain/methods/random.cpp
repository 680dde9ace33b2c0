// Heatmap method "random", a baseline: a smooth random map (options.seed), the same for every
// model. A method that does no better than it explains nothing.
#include "explain/methods/common.h"

namespace medattn::explain {

Explanation explain_random(model::AttnNet& net, const torch::Tensor& x, const ExplainOptions& options,
                           const std::vector<int>& targets, const torch::Tensor& clinical) {
  torch::NoGradGuard no_grad;
  Explanation out;
  out.logits = net->forward(x, false, clinical).logits;
  out.targets = detail::resolve_targets(out.logits, targets);
  auto gen = at::detail::createCPUGenerator(options.seed);
  out.maps = upsample_maps(torch::rand({x.size(0), net->grid_, net->grid_}, gen), static_cast<int>(x.size(2)));
  return out;
}

}  // namespace medattn::explain
