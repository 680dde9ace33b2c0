#include "explain/rollout.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace medattn::explain {

at::Tensor attention_rollout(const std::vector<at::Tensor>& attentions,
                             const RolloutOptions& options) {
  TORCH_CHECK(!attentions.empty(), "attention_rollout needs at least one block");
  TORCH_CHECK(options.discard_ratio >= 0.0 && options.discard_ratio < 1.0,
              "discard_ratio must be in [0,1)");
  at::NoGradGuard no_grad;
  const auto B = attentions[0].size(0);
  const auto T = attentions[0].size(2);
  auto eye = at::eye(T, attentions[0].options().dtype(at::kDouble)).expand({B, T, T});
  auto rollout = eye.clone();
  for (const auto& block : attentions) {
    TORCH_CHECK(block.dim() == 4 && block.size(2) == T && block.size(3) == T,
                "attention must be [B,H,T,T]");
    auto a = block.detach().to(at::kDouble);
    at::Tensor fused;
    switch (options.head_fusion) {
      case HeadFusion::kMean: fused = a.mean(1); break;
      case HeadFusion::kMax: fused = std::get<0>(a.max(1)); break;
      case HeadFusion::kMin: fused = std::get<0>(a.min(1)); break;
    }
    if (options.discard_ratio > 0.0) {
      // Zero the lowest weights of each row, never the CLS column.
      const auto k = static_cast<int64_t>((T - 1) * options.discard_ratio);
      if (k > 0) {
        auto body = fused.narrow(2, 1, T - 1);
        auto lowest = std::get<1>(body.topk(k, /*dim=*/-1, /*largest=*/false));
        body.scatter_(-1, lowest, 0.0);
      }
    }
    auto with_residual = (fused + eye) * 0.5;
    with_residual = with_residual / with_residual.sum(-1, /*keepdim=*/true);
    rollout = at::matmul(with_residual, rollout);
  }
  return rollout.select(1, 0).narrow(1, 1, T - 1).to(at::kFloat);
}

}  // namespace medattn::explain
