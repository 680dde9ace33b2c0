#include "train/augment.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace medattn::train {

namespace F = torch::nn::functional;

namespace {

// Multi-resolution training: the smallest share of the input size an image is seen at.
constexpr double kMultiresLow = 0.35;

std::string fmt_share(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", p);
  return buf;
}

// One rectangle per chosen image replaced by uniform random values. img: [B,C,S,S] in [0,1].
torch::Tensor erase(const torch::Tensor& img, double p) {
  const auto B = img.size(0), S = img.size(2);
  auto chosen = torch::rand({B}) < p;
  auto area = (torch::rand({B}) * 0.23 + 0.02) * static_cast<double>(S * S);
  auto aspect = torch::exp(torch::rand({B}) * (2 * std::log(3.3)) - std::log(3.3));
  auto h = torch::sqrt(area * aspect).clamp_max(static_cast<double>(S)).floor().clamp_min(1);
  auto w = torch::sqrt(area / aspect).clamp_max(static_cast<double>(S)).floor().clamp_min(1);
  auto y0 = (torch::rand({B}) * (S - h + 1)).floor();
  auto x0 = (torch::rand({B}) * (S - w + 1)).floor();
  auto pos = torch::arange(S, torch::kFloat32);
  auto rows = (pos.view({1, S}) >= y0.view({B, 1})) & (pos.view({1, S}) < (y0 + h).view({B, 1}));  // [B,S]
  auto cols = (pos.view({1, S}) >= x0.view({B, 1})) & (pos.view({1, S}) < (x0 + w).view({B, 1}));
  auto mask = (rows.view({B, 1, S, 1}) & cols.view({B, 1, 1, S})) & chosen.view({B, 1, 1, 1});
  return torch::where(mask, torch::rand_like(img), img);
}

}  // namespace

std::string describe_augment(const AugmentOptions& a) {
  return std::string("rotation +-7 deg, scale 0.9-1.1, shift +-6%, contrast 0.8-1.2, brightness +-0.08, "
                     "gamma 0.78-1.28, ") + (a.colour ? "per-channel gain 0.9-1.1, " : "") +
         "blur (p=0.25), resolution jitter 0.5-1 (p=0.25), Gaussian noise sd 0-0.03" +
         (a.hflip ? ", horizontal flips" : "") + (a.vflip ? ", vertical flips" : "") +
         // No corruption family's word ("noise", "blur", ...) may appear here: eval/shift.cpp
         // reads the families a model has seen from this sentence.
         (a.erase > 0 ? ", random erasing (p=" + fmt_share(a.erase) + ", 2-25% of the area, uniform random fill)" : "") +
         (a.multires > 0 ? ", multi-resolution training (p=" + fmt_share(a.multires) + ", seen at " +
                               fmt_share(kMultiresLow) + "-1 of the input size, area-averaged)"
                         : "");
}

torch::Tensor augment(const torch::Tensor& x, const preprocess::PreprocessConfig& config, const AugmentOptions& options) {
  torch::NoGradGuard no_grad;
  const auto B = x.size(0);
  const auto C = x.size(1);
  const auto S = x.size(2);
  auto u = [&](double lo, double hi) { return torch::rand({B}) * (hi - lo) + lo; };
  auto img = x * config.std + config.mean;
  const auto angle = u(-7, 7) * (M_PI / 180.0);
  const auto scale = u(0.9, 1.1);
  auto flip = options.hflip ? torch::where(torch::rand({B}) < 0.5, -torch::ones({B}), torch::ones({B})) : torch::ones({B});
  auto vflip = options.vflip ? torch::where(torch::rand({B}) < 0.5, -torch::ones({B}), torch::ones({B})) : torch::ones({B});
  auto cos = torch::cos(angle) / scale, sin = torch::sin(angle) / scale;
  auto theta = torch::stack({torch::stack({cos * flip, -sin * vflip, u(-0.06, 0.06)}, 1),
                             torch::stack({sin * flip, cos * vflip, u(-0.06, 0.06)}, 1)}, 1);  // [B,2,3]
  auto grid = F::affine_grid(theta, img.sizes().vec(), /*align_corners=*/false);
  img = F::grid_sample(img, grid, F::GridSampleFuncOptions().padding_mode(torch::kZeros).align_corners(false));
  auto contrast = u(0.8, 1.2).view({B, 1, 1, 1});
  auto brightness = u(-0.08, 0.08).view({B, 1, 1, 1});
  auto gamma = torch::exp(u(-0.25, 0.25)).view({B, 1, 1, 1});
  img = (img.clamp(0, 1).pow(gamma) - 0.5) * contrast + 0.5 + brightness;
  if (C > 1) img = img * (torch::rand({B, C, 1, 1}) * 0.2 + 0.9);  // colour balance of the camera
  // A quarter of the images blurred (3x3 binomial), another quarter at a lower resolution.
  const auto choice = torch::rand({B}).view({B, 1, 1, 1});
  auto kernel = torch::tensor({1.f, 2.f, 1.f});
  kernel = (kernel.view({3, 1}) * kernel.view({1, 3})).div(16).view({1, 1, 3, 3});
  auto blurred = F::conv2d(F::pad(img.reshape({B * C, 1, S, S}), F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate)), kernel)
                     .reshape({B, C, S, S});
  const auto low = std::max<int64_t>(8, static_cast<int64_t>(S * (0.5 + 0.5 * torch::rand({1}).item<double>())));
  auto lowres = F::interpolate(F::interpolate(img, F::InterpolateFuncOptions().size(std::vector<int64_t>{low, low}).mode(torch::kBilinear).align_corners(false)),
                               F::InterpolateFuncOptions().size(std::vector<int64_t>{S, S}).mode(torch::kBilinear).align_corners(false));
  img = torch::where(choice < 0.25, blurred, torch::where(choice < 0.5, lowres, img));
  img = img + torch::randn_like(img) * u(0.0, 0.03).view({B, 1, 1, 1});
  if (options.erase > 0) img = erase(img.clamp(0, 1), options.erase);
  if (options.multires > 0) {
    // Drawn last, so the images it does not choose are the ones the same seed gives without it.
    const auto chosen = (torch::rand({B}) < options.multires).view({B, 1, 1, 1});
    const auto low = std::max<int64_t>(8, std::lround(static_cast<double>(S) *
                                                      (kMultiresLow + (1.0 - kMultiresLow) * torch::rand({1}).item<double>())));
    if (low < S) {
      auto down = F::interpolate(img.clamp(0, 1), F::InterpolateFuncOptions().size(std::vector<int64_t>{low, low})
                                                     .mode(torch::kBilinear).align_corners(false).antialias(true));
      auto up = F::interpolate(down, F::InterpolateFuncOptions().size(std::vector<int64_t>{S, S})
                                         .mode(torch::kBilinear).align_corners(false));
      img = torch::where(chosen, up, img);
    }
  }
  return (img.clamp(0, 1) - config.mean) / config.std;
}

}  // namespace medattn::train
