// explain(): dispatch through the method table (explain/registry.h), averaging over views and
// networks, and the helpers the methods share (explain/methods/common.h). Each method itself
// lives in explain/methods/<name>.cpp.
#include "explain/methods.h"

#include <cmath>

#include "core/error.h"
#include "explain/methods/common.h"
#include "explain/registry.h"
#include "model/net.h"  // the dispatch copies and indexes std::vector<AttnNet>

namespace medattn::explain {

namespace F = torch::nn::functional;

namespace detail {

torch::Tensor normalise(const torch::Tensor& maps) {
  auto flat = maps.reshape({maps.size(0), -1});
  auto lo = std::get<0>(flat.min(1, true)), hi = std::get<0>(flat.max(1, true));
  auto range = hi - lo;
  auto out = torch::where(range > 1e-12, (flat - lo) / range.clamp_min(1e-12), torch::zeros_like(flat));
  return out.reshape(maps.sizes());
}

torch::Tensor scaled(const torch::Tensor& maps, const ExplainOptions& options) {
  return options.absolute ? maps : normalise(maps);
}

namespace {

torch::Tensor upsample_raw(const torch::Tensor& maps, int size) {
  auto up = maps.unsqueeze(1).to(torch::kFloat32);
  if (maps.size(1) != size || maps.size(2) != size) {
    up = F::interpolate(up, F::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{size, size})
                                .mode(torch::kBilinear)
                                .align_corners(false));
  }
  return up.squeeze(1);
}

}  // namespace

torch::Tensor upsample_scaled(const torch::Tensor& maps, int size, const ExplainOptions& options) {
  return scaled(upsample_raw(maps, size), options);
}

std::vector<int> resolve_targets(const torch::Tensor& logits, const std::vector<int>& targets) {
  const auto B = logits.size(0);
  const auto K = logits.size(1);
  auto pred = logits.argmax(1);
  std::vector<int> out(B);
  for (int64_t b = 0; b < B; ++b) {
    const int t = b < static_cast<int64_t>(targets.size()) ? targets[b] : -1;
    TORCH_CHECK(t < K, "target class out of range");
    out[b] = t >= 0 ? t : static_cast<int>(pred[b].item<int64_t>());
  }
  return out;
}

torch::Tensor target_score(const torch::Tensor& logits, const std::vector<int>& targets) {
  auto idx = torch::tensor(std::vector<int64_t>(targets.begin(), targets.end()), torch::kInt64).view({-1, 1});
  return logits.gather(1, idx).sum();
}

torch::Tensor gaussian_blur(const torch::Tensor& x_any, double sigma) {
  const auto shape = x_any.sizes().vec();
  const auto x = x_any.reshape({-1, 1, shape[2], shape[3]});
  const int64_t radius = static_cast<int64_t>(std::ceil(3 * sigma));
  auto r = torch::arange(-radius, radius + 1, torch::kFloat32);
  auto k = torch::exp(-(r * r) / (2 * sigma * sigma));
  k = k / k.sum();
  auto padded = F::pad(x, F::PadFuncOptions({radius, radius, radius, radius}).mode(torch::kReplicate));
  // conv2d_each: the blur of an image is the same whatever else shares its batch.
  auto h = model::conv2d_each(padded, k.view({1, 1, 1, -1}), {}, {0, 0});
  return model::conv2d_each(h, k.view({1, 1, -1, 1}), {}, {0, 0}).reshape(shape);
}

double saliency_sigma(const ExplainOptions& options, int S) {
  return options.saliency_sigma < 0 ? std::max(1.0, S / 24.0) : options.saliency_sigma;
}

int map_view_bits(const ExplainOptions& options, const std::vector<int>& views) {
  int bits = 0;
  for (int v : views) bits |= v;
  for (int v : model::tta_views(options.flips)) bits |= v;
  return bits;
}

}  // namespace detail

torch::Tensor upsample_maps(const torch::Tensor& maps, int size) { return detail::normalise(detail::upsample_raw(maps, size)); }

// A blurred copy of x as the "removed information" baseline (for occlusion and the
// deletion/insertion metrics): Gaussian blur with sigma = S/16.
torch::Tensor blurred_baseline(const torch::Tensor& x) { return detail::gaussian_blur(x, std::max(1.0, x.size(2) / 16.0)); }

torch::Tensor clinical_attention(model::AttnNet& net, const torch::Tensor& x, const torch::Tensor& clinical) {
  if (net->clinical_count() == 0) return {};
  torch::NoGradGuard no_grad;
  net->eval();
  return clinical_attention(net, net->forward(x, /*keep_attention=*/true, clinical));
}

torch::Tensor clinical_attention(const std::vector<model::AttnNet>& nets, const torch::Tensor& x, const torch::Tensor& clinical) {
  torch::Tensor sum;
  for (auto net : nets) {
    auto shares = clinical_attention(net, x, clinical);
    if (!shares.defined()) return {};
    sum = sum.defined() ? sum + shares : shares;
  }
  return nets.size() == 1 ? sum : sum / static_cast<double>(nets.size());
}

torch::Tensor clinical_attention(model::AttnNet& net, const model::NetOutput& out) {
  if (net->clinical_count() == 0) return {};
  if (net->cross_fusion()) {
    torch::Tensor sum;
    for (const auto& w : out.cross_attentions) {
      auto cls = w.select(2, 0).mean(1);  // [B,F]
      sum = sum.defined() ? sum + cls : cls;
    }
    return sum / static_cast<double>(out.cross_attentions.size());
  }
  auto rel = attention_rollout(out.attentions, RolloutOptions{});  // [B,T-1]: tokens after CLS
  return rel.narrow(1, net->image_tokens(), net->clinical_count());
}

namespace {

// One view: the method itself.
Explanation explain_one(const MethodInfo& method, model::AttnNet& net, const torch::Tensor& x, const ExplainOptions& options,
                        const std::vector<int>& targets, const torch::Tensor& clinical) {
  TORCH_CHECK(method.one_view != nullptr, "explain_one: method ", method.name, " explains whole ensembles only");
  net->eval();
  return method.one_view(net, x, options, targets, clinical);
}

// One network's maps for `targets`: each view's map taken back to the image's orientation, and
// the maps averaged (one view: the method's map as it is).
torch::Tensor view_maps(const MethodInfo& method, model::AttnNet& net, const torch::Tensor& x, const ExplainOptions& options,
                        const std::vector<int>& targets, const torch::Tensor& clinical, int bits) {
  if (bits == 0) return explain_one(method, net, x, options, targets, clinical).maps;
  torch::Tensor sum;
  const auto views = model::views_of(bits);
  for (int v : views) {
    auto maps = model::flip_view(explain_one(method, net, model::flip_view(x, v), options, targets, clinical).maps, v);
    sum = sum.defined() ? sum + maps : maps;
  }
  return options.absolute ? sum / static_cast<double>(views.size()) : detail::normalise(sum);
}

Explanation explain_batch(const MethodInfo& method, const std::vector<model::AttnNet>& nets, const torch::Tensor& x,
                          const ExplainOptions& options, const std::vector<int>& targets, const torch::Tensor& clinical,
                          const std::vector<int>& views) {
  if (method.whole != nullptr) return method.whole(nets, x, options, targets, clinical, views);
  auto first = nets[0];
  const int bits = detail::map_view_bits(options, views);
  const bool plain_prediction = views.empty() || (views.size() == 1 && views[0] == 0);
  if (nets.size() == 1 && bits == 0 && plain_prediction) return explain_one(method, first, x, options, targets, clinical);
  // The class to explain comes from the prediction (the mean over the networks and views); each
  // network's map is averaged over the views, and the networks' maps are averaged.
  Explanation out;
  out.logits = model::view_logits(nets, x, clinical, views);
  out.targets = detail::resolve_targets(out.logits, targets);
  if (method.baseline) {
    out.maps = explain_one(method, first, x, options, out.targets, clinical).maps;  // baselines do not depend on the model
    return out;
  }
  if (nets.size() == 1) {
    out.maps = view_maps(method, first, x, options, out.targets, clinical, bits);
    return out;
  }
  torch::Tensor sum;
  for (auto net : nets) {
    auto maps = view_maps(method, net, x, options, out.targets, clinical, bits);
    sum = sum.defined() ? sum + maps : maps;
  }
  out.maps = options.absolute ? sum / static_cast<double>(nets.size()) : detail::normalise(sum);
  return out;
}

}  // namespace

Explanation explain(model::AttnNet& net, const torch::Tensor& x, const ExplainOptions& options,
                    const std::vector<int>& targets, const torch::Tensor& clinical, const std::vector<int>& views) {
  return explain(std::vector<model::AttnNet>{net}, x, options, targets, clinical, views);
}

Explanation explain(const std::vector<model::AttnNet>& nets, const torch::Tensor& x, const ExplainOptions& options,
                    const std::vector<int>& targets, const torch::Tensor& clinical, const std::vector<int>& views) {
  TORCH_CHECK(!nets.empty(), "explain: no network");
  const MethodInfo& method = find_method(options.method);
  if (x.size(0) != 1 || !method.gradient) return explain_batch(method, nets, x, options, targets, clinical, views);
  // Backward passes of a batch of one take other kernels than those of any larger batch (the
  // maps differ in their last bits; a forward pass does not). Explained beside a copy of
  // itself, a lone image gets the map it gets in every other batch.
  const std::vector<int> two_targets = targets.empty() ? targets : std::vector<int>{targets[0], targets[0]};
  auto two = explain_batch(method, nets, torch::cat({x, x}), options, two_targets,
                           clinical.defined() ? torch::cat({clinical, clinical}) : clinical, views);
  two.logits = two.logits.slice(0, 0, 1);
  two.maps = two.maps.slice(0, 0, 1);
  if (two.signed_maps.defined()) two.signed_maps = two.signed_maps.slice(0, 0, 1);
  two.targets.resize(1);
  return two;
}

}  // namespace medattn::explain
