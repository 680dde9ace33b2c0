// Heatmap method "rollout": attention rollout of the CLS token (Abnar & Zuidema 2020), with
// the heads fused and the weakest weights discarded as options.rollout says (explain/rollout.h).
#include "explain/methods/common.h"

namespace medattn::explain {

Explanation explain_rollout(model::AttnNet& net, const at::Tensor& x, const ExplainOptions& options,
                            const std::vector<int>& targets, const at::Tensor& clinical) {
  at::NoGradGuard no_grad;
  const auto B = x.size(0);
  Explanation out;
  auto o = model::forward(net, x, /*keep_attention=*/true, clinical);
  out.logits = o.logits;
  out.targets = detail::resolve_targets(o.logits, targets);
  auto rel = attention_rollout(o.attentions, options.rollout);
  const int g = model::grid_size(net);
  out.maps = detail::upsample_scaled(rel.narrow(1, 0, model::image_tokens(net)).reshape({B, g, g}),
                                     static_cast<int>(x.size(2)), options);
  return out;
}

}  // namespace medattn::explain
