// Heatmap method "saliency": gradient saliency (Simonyan et al. 2014), smoothed: |d score / d x|
// blurred with sigma = S/24 by default (4 px at 96) so that the map marks regions rather than
// single pixels.
#include "explain/methods/common.h"

namespace medattn::explain {

Explanation explain_saliency(model::AttnNet& net, const at::Tensor& x, const ExplainOptions& options,
                             const std::vector<int>& targets, const at::Tensor& clinical) {
  c10::AutoGradMode grad(true);
  Explanation out;
  auto input = x.detach().clone().requires_grad_(true);
  auto logits = model::forward(net, input, false, clinical).logits;
  out.logits = logits.detach();
  out.targets = detail::resolve_targets(out.logits, targets);
  auto g = torch::autograd::grad({detail::target_score(logits, out.targets)}, {input})[0];
  const double sigma = detail::saliency_sigma(options, static_cast<int>(x.size(2)));
  auto magnitude = g.detach().abs().sum(1, /*keepdim=*/true);  // over colour channels
  out.maps = detail::scaled((sigma > 0 ? detail::gaussian_blur(magnitude, sigma) : magnitude).squeeze(1), options);
  return out;
}

}  // namespace medattn::explain
