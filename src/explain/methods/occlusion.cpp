// Heatmap method "occlusion" (model-agnostic): the drop in the class probability when a patch
// (options.occlusion_patch, moved by occlusion_stride) is replaced by a blurred copy of itself,
// averaged over the patches covering each pixel; the borders are covered too.
#include <algorithm>
#include <utility>

#include "core/error.h"
#include "explain/methods/common.h"

namespace medattn::explain {

Explanation explain_occlusion(model::AttnNet& net, const at::Tensor& x, const ExplainOptions& options,
                              const std::vector<int>& targets, const at::Tensor& clinical) {
  at::NoGradGuard no_grad;
  const int S = static_cast<int>(x.size(2));
  const auto B = x.size(0);
  const int p = options.occlusion_patch, stride = options.occlusion_stride;
  if (p < 1 || stride < 1 || p > S) {
    throw Error(ErrorKind::kInvalidArgument, "occlusion patch and stride must be in [1, input size]");
  }
  Explanation out;
  out.logits = model::forward(net, x, false, clinical).logits;
  out.targets = detail::resolve_targets(out.logits, targets);
  auto base_prob = at::softmax(out.logits, 1);
  auto baseline = blurred_baseline(x);
  std::vector<std::pair<int, int>> origins;
  for (int y = 0; y <= S - p; y += stride) {
    for (int xx = 0; xx <= S - p; xx += stride) origins.emplace_back(y, xx);
  }
  // Cover the right and bottom borders too.
  if ((S - p) % stride != 0) {
    const int last = S - p;
    std::vector<std::pair<int, int>> extra;
    for (const auto& [y, xx] : origins) {
      if (xx + stride > last) extra.emplace_back(y, last);
      if (y + stride > last) extra.emplace_back(last, xx);
    }
    extra.emplace_back(last, last);
    origins.insert(origins.end(), extra.begin(), extra.end());
  }
  auto heat = at::zeros({B, S, S});
  auto count = at::zeros({S, S});
  for (const auto& [y, xx] : origins) count.narrow(0, y, p).narrow(1, xx, p).add_(1);
  for (int64_t b = 0; b < B; ++b) {
    const double p0 = base_prob[b][out.targets[b]].item<double>();
    for (size_t start = 0; start < origins.size(); start += options.occlusion_batch) {
      const size_t end = std::min(origins.size(), start + static_cast<size_t>(options.occlusion_batch));
      auto batch = x[b].unsqueeze(0).repeat({static_cast<int64_t>(end - start), 1, 1, 1});
      for (size_t i = start; i < end; ++i) {
        const auto [y, xx] = origins[i];
        batch[static_cast<int64_t>(i - start)].narrow(1, y, p).narrow(2, xx, p)
            .copy_(baseline[b].narrow(1, y, p).narrow(2, xx, p));
      }
      at::Tensor cb;
      if (clinical.defined()) cb = clinical[b].unsqueeze(0).expand({batch.size(0), -1});
      auto probs = at::softmax(model::forward(net, batch, false, cb).logits, 1).select(1, out.targets[b]);
      for (size_t i = start; i < end; ++i) {
        const auto [y, xx] = origins[i];
        const double drop = p0 - probs[static_cast<int64_t>(i - start)].item<double>();
        heat[b].narrow(0, y, p).narrow(1, xx, p).add_(drop);
      }
    }
  }
  out.maps = detail::scaled(at::relu(heat / count.clamp_min(1)), options);
  return out;
}

}  // namespace medattn::explain
