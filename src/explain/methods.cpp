#include "explain/methods.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace medattn::explain {
namespace {

namespace F = torch::nn::functional;

// Per-image min-max to [0,1]; constant maps become zero. maps: [B,H,W].
torch::Tensor normalise(const torch::Tensor& maps) {
  auto flat = maps.reshape({maps.size(0), -1});
  auto lo = std::get<0>(flat.min(1, true)), hi = std::get<0>(flat.max(1, true));
  auto range = hi - lo;
  auto out = torch::where(range > 1e-12, (flat - lo) / range.clamp_min(1e-12), torch::zeros_like(flat));
  return out.reshape(maps.sizes());
}

// The method's maps as the options want them: each scaled to [0,1], or left in its own units.
torch::Tensor scaled(const torch::Tensor& maps, const ExplainOptions& options) {
  return options.absolute ? maps : normalise(maps);
}

// Token-grid maps [B,g,g] upsampled to [B,S,S], then scaled as the options say.
torch::Tensor upsample_scaled(const torch::Tensor& maps, int size, const ExplainOptions& options);

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

// Sum over the batch of each image's target logit: one backward pass explains all images,
// since images do not interact in eval mode.
torch::Tensor target_score(const torch::Tensor& logits, const std::vector<int>& targets) {
  auto idx = torch::tensor(std::vector<int64_t>(targets.begin(), targets.end()), torch::kInt64).view({-1, 1});
  return logits.gather(1, idx).sum();
}

// Separable Gaussian blur of [B,C,H,W] (each channel on its own) with replicate borders.
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

// A blurred copy of x as the "removed information" baseline (for occlusion and the
// deletion/insertion metrics): Gaussian blur with sigma = S/16.
torch::Tensor blurred(const torch::Tensor& x) { return gaussian_blur(x, std::max(1.0, x.size(2) / 16.0)); }

}  // namespace

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

torch::Tensor upsample_scaled(const torch::Tensor& maps, int size, const ExplainOptions& options) {
  return scaled(upsample_raw(maps, size), options);
}

}  // namespace

torch::Tensor upsample_maps(const torch::Tensor& maps, int size) { return normalise(upsample_raw(maps, size)); }

torch::Tensor blurred_baseline(const torch::Tensor& x) { return blurred(x); }

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
Explanation explain_one(model::AttnNet& net, const torch::Tensor& x, const ExplainOptions& options,
                        const std::vector<int>& targets, const torch::Tensor& clinical) {
  net->eval();
  const int S = static_cast<int>(x.size(2));
  const int grid = net->grid_;
  const auto B = x.size(0);
  Explanation out;
  switch (options.method) {
    case Method::kRollout: {
      torch::NoGradGuard no_grad;
      auto o = net->forward(x, /*keep_attention=*/true, clinical);
      out.logits = o.logits;
      out.targets = resolve_targets(o.logits, targets);
      auto rel = attention_rollout(o.attentions, options.rollout);
      out.maps = upsample_scaled(rel.narrow(1, 0, net->image_tokens()).reshape({B, grid, grid}), S, options);
      break;
    }
    case Method::kGradCam: {
      torch::AutoGradMode grad(true);
      auto o = net->forward(x.detach(), /*keep_attention=*/false, clinical);
      out.logits = o.logits.detach();
      out.targets = resolve_targets(out.logits, targets);
      auto g = torch::autograd::grad({target_score(o.logits, out.targets)}, {o.feature_map})[0];  // [B,C,g,g]
      auto weights = g.mean({2, 3}, /*keepdim=*/true);
      auto cam = torch::relu((weights * o.feature_map.detach()).sum(1));  // [B,g,g]
      out.maps = upsample_scaled(cam, S, options);
      break;
    }
    case Method::kSaliency: {
      // Gradient saliency (Simonyan et al. 2014), smoothed: |d score / d x| blurred with
      // sigma = S/24 by default (4 px at 96) so that the map marks regions rather than single
      // pixels.
      torch::AutoGradMode grad(true);
      auto input = x.detach().clone().requires_grad_(true);
      auto logits = net->forward(input, false, clinical).logits;
      out.logits = logits.detach();
      out.targets = resolve_targets(out.logits, targets);
      auto g = torch::autograd::grad({target_score(logits, out.targets)}, {input})[0];
      const double sigma = options.saliency_sigma < 0 ? std::max(1.0, S / 24.0) : options.saliency_sigma;
      auto magnitude = g.detach().abs().sum(1, /*keepdim=*/true);  // over colour channels
      out.maps = scaled((sigma > 0 ? gaussian_blur(magnitude, sigma) : magnitude).squeeze(1), options);
      break;
    }
    case Method::kAttnGrad: {
      // Chefer et al. 2021, eq. 5-6: per block, A_bar = mean_heads(relu(grad(A) * A)),
      // R <- R + A_bar R, starting from R = I; the CLS row of R over the image tokens.
      torch::AutoGradMode grad(true);
      auto o = net->forward(x.detach(), /*keep_attention=*/true, clinical);
      out.logits = o.logits.detach();
      out.targets = resolve_targets(out.logits, targets);
      auto grads = torch::autograd::grad({target_score(o.logits, out.targets)}, o.attentions);
      const auto T = o.attentions[0].size(2);
      auto R = torch::eye(T, torch::kFloat32).expand({B, T, T}).clone();
      for (size_t l = 0; l < o.attentions.size(); ++l) {
        auto cam = torch::relu(grads[l] * o.attentions[l].detach()).mean(1);  // [B,T,T]
        R = R + torch::matmul(cam, R);
      }
      auto rel = R.select(1, 0).narrow(1, 1, net->image_tokens());
      out.maps = upsample_scaled(rel.reshape({B, grid, grid}), S, options);
      break;
    }
    case Method::kOcclusion: {
      torch::NoGradGuard no_grad;
      const int p = options.occlusion_patch, stride = options.occlusion_stride;
      if (p < 1 || stride < 1 || p > S) {
        throw Error(ErrorKind::kInvalidArgument, "occlusion patch and stride must be in [1, input size]");
      }
      out.logits = net->forward(x, false, clinical).logits;
      out.targets = resolve_targets(out.logits, targets);
      auto base_prob = torch::softmax(out.logits, 1);
      auto baseline = blurred(x);
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
      auto heat = torch::zeros({B, S, S});
      auto count = torch::zeros({S, S});
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
          torch::Tensor cb;
          if (clinical.defined()) cb = clinical[b].unsqueeze(0).expand({batch.size(0), -1});
          auto probs = torch::softmax(net->forward(batch, false, cb).logits, 1).select(1, out.targets[b]);
          for (size_t i = start; i < end; ++i) {
            const auto [y, xx] = origins[i];
            const double drop = p0 - probs[static_cast<int64_t>(i - start)].item<double>();
            heat[b].narrow(0, y, p).narrow(1, xx, p).add_(drop);
          }
        }
      }
      out.maps = scaled(torch::relu(heat / count.clamp_min(1)), options);
      break;
    }
    case Method::kContrast:
      TORCH_CHECK(false, "explain_one: contrast maps come from explain_contrast");
      break;
    case Method::kRandom:
    case Method::kCentre: {
      torch::NoGradGuard no_grad;
      out.logits = net->forward(x, false, clinical).logits;
      out.targets = resolve_targets(out.logits, targets);
      if (options.method == Method::kRandom) {
        auto gen = at::detail::createCPUGenerator(options.seed);
        out.maps = upsample_maps(torch::rand({B, grid, grid}, gen), S);
      } else {
        auto r = (torch::arange(S, torch::kFloat32) + 0.5) / S - 0.5;
        auto d2 = r.view({S, 1}).pow(2) + r.view({1, S}).pow(2);
        out.maps = normalise(torch::exp(-d2 / (2 * 0.2 * 0.2)).unsqueeze(0).expand({B, S, S}).contiguous());
      }
      break;
    }
  }
  return out;
}

}  // namespace

namespace {

// Method::kContrast for one network and one orientation: input x gradient of the target's
// log-odds log(p_t / (1 - p_t)) = z_t - logsumexp(z_others) (two classes: z_t - z_other), summed
// over colour channels and blurred like saliency; [B,S,S], signed, unscaled. For two classes
// the map for one class is exactly the negative of the other's, which is what a reader of a
// binary model needs: where the image argues for the class and where against it.
torch::Tensor contrast_raw(model::AttnNet& net, const torch::Tensor& x, const std::vector<int>& targets,
                           const torch::Tensor& clinical, double sigma_option) {
  net->eval();
  torch::AutoGradMode grad(true);
  auto input = x.detach().clone().requires_grad_(true);
  auto logits = net->forward(input, false, clinical).logits;  // [B,K]
  auto idx = torch::tensor(std::vector<int64_t>(targets.begin(), targets.end()), torch::kInt64).view({-1, 1});
  auto target_logit = logits.gather(1, idx).squeeze(1);
  auto is_target = torch::zeros_like(logits, torch::kBool).scatter(1, idx, true);
  auto others = logits.masked_fill(is_target, -std::numeric_limits<float>::infinity()).logsumexp(1);
  auto g = torch::autograd::grad({(target_logit - others).sum()}, {input})[0];
  auto evidence = (g.detach() * x.detach()).sum(1, /*keepdim=*/true);  // [B,1,S,S]
  const int S = static_cast<int>(x.size(2));
  const double sigma = sigma_option < 0 ? std::max(1.0, S / 24.0) : sigma_option;
  return (sigma > 0 ? gaussian_blur(evidence, sigma) : evidence).squeeze(1);
}

// Per image, divided by its largest magnitude: [-1,1], sign kept; an all-zero map stays zero.
torch::Tensor normalise_signed(const torch::Tensor& maps) {
  auto flat = maps.reshape({maps.size(0), -1});
  auto peak = std::get<0>(flat.abs().max(1, true));
  auto out = torch::where(peak > 1e-12, flat / peak.clamp_min(1e-12), torch::zeros_like(flat));
  return out.reshape(maps.sizes());
}

}  // namespace

namespace {

// The views the maps are averaged over, as flip bits: the prediction's views and the requested
// flips, closed under composition (hflip and vflip give all four views).
int map_view_bits(const ExplainOptions& options, const std::vector<int>& views) {
  int bits = 0;
  for (int v : views) bits |= v;
  for (int v : model::tta_views(options.flips)) bits |= v;
  return bits;
}

// One network's maps for `targets`: each view's map taken back to the image's orientation, and
// the maps averaged (one view: the method's map as it is).
torch::Tensor view_maps(model::AttnNet& net, const torch::Tensor& x, const ExplainOptions& options,
                        const std::vector<int>& targets, const torch::Tensor& clinical, int bits) {
  if (bits == 0) return explain_one(net, x, options, targets, clinical).maps;
  torch::Tensor sum;
  const auto views = model::views_of(bits);
  for (int v : views) {
    auto maps = model::flip_view(explain_one(net, model::flip_view(x, v), options, targets, clinical).maps, v);
    sum = sum.defined() ? sum + maps : maps;
  }
  return options.absolute ? sum / static_cast<double>(views.size()) : normalise(sum);
}

}  // namespace

namespace {

// Method::kContrast: the logits as diagnose's plain pass gives them, the signed maps averaged
// over the networks and the views (each taken back to the image's orientation), then scaled.
Explanation explain_contrast(const std::vector<model::AttnNet>& nets, const torch::Tensor& x, const ExplainOptions& options,
                             const std::vector<int>& targets, const torch::Tensor& clinical, const std::vector<int>& views) {
  Explanation out;
  out.logits = model::view_logits(nets, x, clinical, views);
  out.targets = resolve_targets(out.logits, targets);
  const int bits = map_view_bits(options, views);
  const std::vector<int> orientations = bits == 0 ? std::vector<int>{0} : model::views_of(bits);
  torch::Tensor sum;
  for (auto net : nets) {
    for (int v : orientations) {
      auto m = contrast_raw(net, v == 0 ? x : model::flip_view(x, v), out.targets, clinical, options.saliency_sigma);
      if (v != 0) m = model::flip_view(m, v);
      sum = sum.defined() ? sum + m : m;
    }
  }
  const double count = static_cast<double>(nets.size() * orientations.size());
  out.signed_maps = options.absolute ? sum / count : normalise_signed(sum);
  out.maps = torch::relu(out.signed_maps);
  return out;
}

}  // namespace

Explanation explain(model::AttnNet& net, const torch::Tensor& x, const ExplainOptions& options,
                    const std::vector<int>& targets, const torch::Tensor& clinical, const std::vector<int>& views) {
  return explain(std::vector<model::AttnNet>{net}, x, options, targets, clinical, views);
}

namespace {

Explanation explain_batch(const std::vector<model::AttnNet>& nets, const torch::Tensor& x, const ExplainOptions& options,
                          const std::vector<int>& targets, const torch::Tensor& clinical, const std::vector<int>& views) {
  if (options.method == Method::kContrast) return explain_contrast(nets, x, options, targets, clinical, views);
  auto first = nets[0];
  const int bits = map_view_bits(options, views);
  const bool plain_prediction = views.empty() || (views.size() == 1 && views[0] == 0);
  if (nets.size() == 1 && bits == 0 && plain_prediction) return explain_one(first, x, options, targets, clinical);
  // The class to explain comes from the prediction (the mean over the networks and views); each
  // network's map is averaged over the views, and the networks' maps are averaged.
  Explanation out;
  out.logits = model::view_logits(nets, x, clinical, views);
  out.targets = resolve_targets(out.logits, targets);
  if (options.method == Method::kRandom || options.method == Method::kCentre) {
    out.maps = explain_one(first, x, options, out.targets, clinical).maps;  // baselines do not depend on the model
    return out;
  }
  if (nets.size() == 1) {
    out.maps = view_maps(first, x, options, out.targets, clinical, bits);
    return out;
  }
  torch::Tensor sum;
  for (auto net : nets) {
    auto maps = view_maps(net, x, options, out.targets, clinical, bits);
    sum = sum.defined() ? sum + maps : maps;
  }
  out.maps = options.absolute ? sum / static_cast<double>(nets.size()) : normalise(sum);
  return out;
}

}  // namespace

Explanation explain(const std::vector<model::AttnNet>& nets, const torch::Tensor& x, const ExplainOptions& options,
                    const std::vector<int>& targets, const torch::Tensor& clinical, const std::vector<int>& views) {
  TORCH_CHECK(!nets.empty(), "explain: no network");
  const bool gradient = options.method == Method::kSaliency || options.method == Method::kGradCam ||
                        options.method == Method::kAttnGrad || options.method == Method::kContrast;
  if (x.size(0) != 1 || !gradient) return explain_batch(nets, x, options, targets, clinical, views);
  // Backward passes of a batch of one take other kernels than those of any larger batch (the
  // maps differ in their last bits; a forward pass does not). Explained beside a copy of
  // itself, a lone image gets the map it gets in every other batch.
  const std::vector<int> two_targets = targets.empty() ? targets : std::vector<int>{targets[0], targets[0]};
  auto two = explain_batch(nets, torch::cat({x, x}), options, two_targets,
                           clinical.defined() ? torch::cat({clinical, clinical}) : clinical, views);
  two.logits = two.logits.slice(0, 0, 1);
  two.maps = two.maps.slice(0, 0, 1);
  if (two.signed_maps.defined()) two.signed_maps = two.signed_maps.slice(0, 0, 1);
  two.targets.resize(1);
  return two;
}

}  // namespace medattn::explain
