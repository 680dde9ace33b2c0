// Heatmap method "gradcam": Grad-CAM on the last CNN stage (Selvaraju et al. 2017).
#include "explain/methods/common.h"

namespace medattn::explain {

Explanation explain_gradcam(model::AttnNet& net, const at::Tensor& x, const ExplainOptions& options,
                            const std::vector<int>& targets, const at::Tensor& clinical) {
  c10::AutoGradMode grad(true);
  Explanation out;
  auto o = model::forward(net, x.detach(), /*keep_attention=*/false, clinical);
  out.logits = o.logits.detach();
  out.targets = detail::resolve_targets(out.logits, targets);
  auto g = torch::autograd::grad({detail::target_score(o.logits, out.targets)}, {o.feature_map})[0];  // [B,C,g,g]
  auto weights = g.mean({2, 3}, /*keepdim=*/true);
  auto cam = at::relu((weights * o.feature_map.detach()).sum(1));  // [B,g,g]
  out.maps = detail::upsample_scaled(cam, static_cast<int>(x.size(2)), options);
  return out;
}

}  // namespace medattn::explain
