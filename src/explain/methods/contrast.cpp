// Heatmap method "contrast" (signed): input x gradient of the class's log-odds against the
// others, blurred like saliency. Evidence for the class is > 0, against it < 0; for two
// classes the map for one class is exactly the negative of the other's, which is what a reader
// of a binary model needs: where the image argues for the class and where against it.
#include <limits>

#include "explain/methods/common.h"

namespace medattn::explain {
namespace {

// One network and one orientation: input x gradient of the target's log-odds
// log(p_t / (1 - p_t)) = z_t - logsumexp(z_others) (two classes: z_t - z_other), summed over
// colour channels and blurred like saliency; [B,S,S], signed, unscaled.
at::Tensor contrast_raw(const model::AttnNet& net, const at::Tensor& x, const std::vector<int>& targets,
                        const at::Tensor& clinical, const ExplainOptions& options) {
  model::set_eval(net);
  c10::AutoGradMode grad(true);
  auto input = x.detach().clone().requires_grad_(true);
  auto logits = model::forward(net, input, false, clinical).logits;  // [B,K]
  auto idx = at::tensor(std::vector<int64_t>(targets.begin(), targets.end()), at::kLong).view({-1, 1});
  auto target_logit = logits.gather(1, idx).squeeze(1);
  auto is_target = at::zeros_like(logits, at::kBool).scatter(1, idx, true);
  auto others = logits.masked_fill(is_target, -std::numeric_limits<float>::infinity()).logsumexp(1);
  auto g = torch::autograd::grad({(target_logit - others).sum()}, {input})[0];
  auto evidence = (g.detach() * x.detach()).sum(1, /*keepdim=*/true);  // [B,1,S,S]
  const double sigma = detail::saliency_sigma(options, static_cast<int>(x.size(2)));
  return (sigma > 0 ? detail::gaussian_blur(evidence, sigma) : evidence).squeeze(1);
}

// Per image, divided by its largest magnitude: [-1,1], sign kept; an all-zero map stays zero.
at::Tensor normalise_signed(const at::Tensor& maps) {
  auto flat = maps.reshape({maps.size(0), -1});
  auto peak = std::get<0>(flat.abs().max(1, true));
  auto out = at::where(peak > 1e-12, flat / peak.clamp_min(1e-12), at::zeros_like(flat));
  return out.reshape(maps.sizes());
}

}  // namespace

// The logits as diagnose's plain pass gives them, the signed maps averaged over the networks
// and the views (each taken back to the image's orientation), then scaled.
Explanation explain_contrast(const std::vector<model::AttnNet>& nets, const at::Tensor& x, const ExplainOptions& options,
                             const std::vector<int>& targets, const at::Tensor& clinical, const std::vector<int>& views) {
  Explanation out;
  out.logits = model::view_logits(nets, x, clinical, views);
  out.targets = detail::resolve_targets(out.logits, targets);
  const int bits = detail::map_view_bits(options, views);
  const std::vector<int> orientations = bits == 0 ? std::vector<int>{0} : model::views_of(bits);
  at::Tensor sum;
  const auto networks = model::members(nets);
  for (const model::AttnNet* net : networks) {
    for (int v : orientations) {
      auto m = contrast_raw(*net, v == 0 ? x : model::flip_view(x, v), out.targets, clinical, options);
      if (v != 0) m = model::flip_view(m, v);
      sum = sum.defined() ? sum + m : m;
    }
  }
  const double count = static_cast<double>(networks.size() * orientations.size());
  out.signed_maps = options.absolute ? sum / count : normalise_signed(sum);
  out.maps = at::relu(out.signed_maps);
  return out;
}

}  // namespace medattn::explain
