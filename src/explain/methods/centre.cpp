// Heatmap method "centre", a baseline: a centred Gaussian (sigma 0.2 of the side), the same for
// every image: what a method scores when it only knows that lesions are rarely at the border.
#include "explain/methods/common.h"

namespace medattn::explain {

Explanation explain_centre(model::AttnNet& net, const at::Tensor& x, const ExplainOptions& options,
                           const std::vector<int>& targets, const at::Tensor& clinical) {
  at::NoGradGuard no_grad;
  Explanation out;
  out.logits = model::forward(net, x, false, clinical).logits;
  out.targets = detail::resolve_targets(out.logits, targets);
  const int S = static_cast<int>(x.size(2));
  auto r = (at::arange(S, at::kFloat) + 0.5) / S - 0.5;
  auto d2 = r.view({S, 1}).pow(2) + r.view({1, S}).pow(2);
  out.maps = detail::normalise(at::exp(-d2 / (2 * 0.2 * 0.2)).unsqueeze(0).expand({x.size(0), S, S}).contiguous());
  return out;
}

}  // namespace medattn::explain
