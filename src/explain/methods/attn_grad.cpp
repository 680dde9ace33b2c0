// Heatmap method "attn-grad": gradient-weighted attention relevance through the blocks
// (Chefer et al. 2021, eq. 5-6): per block, A_bar = mean_heads(relu(grad(A) * A)),
// R <- R + A_bar R, starting from R = I; the CLS row of R over the image tokens.
#include "explain/methods/common.h"

namespace medattn::explain {

Explanation explain_attn_grad(model::AttnNet& net, const at::Tensor& x, const ExplainOptions& options,
                              const std::vector<int>& targets, const at::Tensor& clinical) {
  c10::AutoGradMode grad(true);
  const auto B = x.size(0);
  Explanation out;
  auto o = model::forward(net, x.detach(), /*keep_attention=*/true, clinical);
  out.logits = o.logits.detach();
  out.targets = detail::resolve_targets(out.logits, targets);
  auto grads = torch::autograd::grad({detail::target_score(o.logits, out.targets)}, o.attentions);
  const auto T = o.attentions[0].size(2);
  auto R = at::eye(T, at::kFloat).expand({B, T, T}).clone();
  for (size_t l = 0; l < o.attentions.size(); ++l) {
    auto cam = at::relu(grads[l] * o.attentions[l].detach()).mean(1);  // [B,T,T]
    R = R + at::matmul(cam, R);
  }
  auto rel = R.select(1, 0).narrow(1, 1, model::image_tokens(net));
  const int g = model::grid_size(net);
  out.maps = detail::upsample_scaled(rel.reshape({B, g, g}), static_cast<int>(x.size(2)), options);
  return out;
}

}  // namespace medattn::explain
