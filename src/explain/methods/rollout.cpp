// Heatmap method "rollout": attention rollout of the CLS token (Abnar & Zuidema 2020), with
// the heads fused and the weakest weights discarded as options.rollout says (explain/rollout.h).
#include "explain/methods/common.h"

namespace medattn::explain {

Explanation explain_rollout(model::AttnNet& net, const torch::Tensor& x, const ExplainOptions& options,
                            const std::vector<int>& targets, const torch::Tensor& clinical) {
  torch::NoGradGuard no_grad;
  const auto B = x.size(0);
  Explanation out;
  auto o = net->forward(x, /*keep_attention=*/true, clinical);
  out.logits = o.logits;
  out.targets = detail::resolve_targets(o.logits, targets);
  auto rel = attention_rollout(o.attentions, options.rollout);
  out.maps = detail::upsample_scaled(rel.narrow(1, 0, net->image_tokens()).reshape({B, net->grid_, net->grid_}),
                                     static_cast<int>(x.size(2)), options);
  return out;
}

}  // namespace medattn::explain
