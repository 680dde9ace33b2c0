// Heatmap method "random", a baseline: a smooth random map (options.seed), the same for every
// model. A method that does no better than it explains nothing.
#include "explain/methods/common.h"

namespace medattn::explain {

Explanation explain_random(model::AttnNet& net, const at::Tensor& x, const ExplainOptions& options,
                           const std::vector<int>& targets, const at::Tensor& clinical) {
  at::NoGradGuard no_grad;
  Explanation out;
  out.logits = model::forward(net, x, false, clinical).logits;
  out.targets = detail::resolve_targets(out.logits, targets);
  auto gen = at::detail::createCPUGenerator(options.seed);
  const int g = model::grid_size(net);
  out.maps = upsample_maps(at::rand({x.size(0), g, g}, gen), static_cast<int>(x.size(2)));
  return out;
}

}  // namespace medattn::explain
