// Training augmentation's random erasing (train --erase): what it changes and how often.
// torch before Catch: a torch header defines its own CHECK, which Catch's must replace.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "eval/shift.h"
#include "preprocess/preprocess.h"
#include "train/augment.h"

using namespace medattn;

namespace {

// A batch of smooth normalised images: a horizontal ramp per image.
torch::Tensor ramps(int64_t B, int64_t S) {
  auto ramp = torch::linspace(0.1, 0.9, S).view({1, 1, 1, S}).expand({B, 1, S, S});
  preprocess::PreprocessConfig config;
  return ((ramp - config.mean) / config.std).contiguous();
}

torch::Tensor augmented(const torch::Tensor& x, double erase, uint64_t seed) {
  torch::manual_seed(seed);
  train::AugmentOptions options;
  options.erase = erase;
  return train::augment(x, preprocess::PreprocessConfig{}, options);
}

}  // namespace

TEST_CASE("random erasing replaces one rectangle of 2-25% of the image and leaves the rest as it was", "[train][augment]") {
  const int64_t B = 64, S = 32;
  const auto x = ramps(B, S);
  // Erasing draws after everything else, so with the same seed the images agree outside it.
  const auto plain = augmented(x, 0.0, 7);
  const auto erased = augmented(x, 1.0, 7);
  const auto changed = (plain != erased).squeeze(1);  // [B,S,S]
  for (int64_t b = 0; b < B; ++b) {
    const auto rows = changed[b].any(1).nonzero().squeeze(1);
    const auto cols = changed[b].any(0).nonzero().squeeze(1);
    REQUIRE(rows.numel() > 0);
    const auto r0 = rows.min().item<int64_t>(), r1 = rows.max().item<int64_t>();
    const auto c0 = cols.min().item<int64_t>(), c1 = cols.max().item<int64_t>();
    // Random values may equal the old ones in a few pixels, never in most of the box.
    const auto box = changed[b].slice(0, r0, r1 + 1).slice(1, c0, c1 + 1);
    CHECK(box.to(torch::kFloat32).mean().item<double>() > 0.9);
    CHECK(changed[b].sum().item<int64_t>() == box.sum().item<int64_t>());  // nothing outside the box
    const double share = static_cast<double>((r1 - r0 + 1) * (c1 - c0 + 1)) / (S * S);
    // 2-25% of the area before the sides are rounded down to whole pixels (at least 1% at 32 px).
    CHECK(share >= 0.01);
    CHECK(share <= 0.25 + 1e-9);
  }
}

TEST_CASE("random erasing touches about the share of images it is given", "[train][augment]") {
  const int64_t B = 400, S = 16;
  const auto x = ramps(B, S);
  const auto changed = (augmented(x, 0.0, 3) != augmented(x, 0.5, 3)).flatten(1).any(1);
  const auto count = changed.sum().item<int64_t>();
  // Binomial(400, 0.5): standard deviation 10; four of them either side.
  CHECK(count >= 160);
  CHECK(count <= 240);
}

TEST_CASE("the card's augmentation sentence names erasing and multi-resolution training without marking a new benchmark corruption as seen",
          "[train][augment][shift]") {
  const auto without = train::describe_augment(train::AugmentOptions{});
  train::AugmentOptions erasing;
  erasing.erase = 0.25;
  train::AugmentOptions multires;
  multires.multires = 0.5;
  // The resolution family is seen already through the resolution jitter every model has.
  for (const auto& [options, added] :
       {std::make_pair(erasing, ", random erasing (p=0.25, 2-25% of the area, uniform random fill)"),
        std::make_pair(multires, ", multi-resolution training (p=0.5, seen at 0.35-1 of the input size, area-averaged)")}) {
    const auto with = train::describe_augment(options);
    CHECK(with == without + added);
    CHECK(eval::seen_families(with) == eval::seen_families(without));
  }
}

namespace {

torch::Tensor multires(const torch::Tensor& x, double p, uint64_t seed) {
  torch::manual_seed(seed);
  train::AugmentOptions options;
  options.multires = p;
  return train::augment(x, preprocess::PreprocessConfig{}, options);
}

// Mean absolute difference between horizontal neighbours, per image: [B].
torch::Tensor fine_detail(const torch::Tensor& x) {
  return (x.slice(3, 1) - x.slice(3, 0, -1)).abs().flatten(1).mean(1);
}

}  // namespace

TEST_CASE("multi-resolution training removes fine detail from the images it chooses and leaves the others as they were",
          "[train][augment]") {
  const int64_t B = 48, S = 32;
  preprocess::PreprocessConfig config;
  // Vertical stripes two pixels wide: detail that a lower resolution cannot keep.
  auto stripes = (torch::arange(S) / 2 % 2).to(torch::kFloat32).mul(0.6).add(0.2).view({1, 1, 1, S}).expand({B, 1, S, S});
  const auto x = ((stripes - config.mean) / config.std).contiguous();
  for (const uint64_t seed : {1u, 2u, 3u}) {
    const auto plain = multires(x, 0.0, seed);
    const auto low = multires(x, 1.0, seed);
    const auto before = fine_detail(plain), after = fine_detail(low);
    for (int64_t b = 0; b < B; ++b) CHECK(after[b].item<double>() < 0.9 * before[b].item<double>());
    // Off means off: the same seed, the same draws as before the option existed.
    train::AugmentOptions none;
    torch::manual_seed(seed);
    CHECK(torch::equal(plain, train::augment(x, config, none)));
  }
  // About the share it is given, and exactly the unchosen images untouched.
  const auto changed = (multires(x, 0.0, 5) != multires(x, 0.5, 5)).flatten(1).any(1);
  const auto count = changed.sum().item<int64_t>();
  CHECK(count >= 12);  // Binomial(48, 0.5): mean 24, sd 3.5
  CHECK(count <= 36);
}
