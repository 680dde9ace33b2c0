// Attention rollout against hand-computed examples.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "core/error.h"
#include "explain/rollout.h"

using medattn::explain::attention_rollout;
using medattn::explain::HeadFusion;
using medattn::explain::RolloutOptions;

namespace {

// [1,H,T,T] from nested rows.
torch::Tensor heads(std::vector<std::vector<std::vector<float>>> hs) {
  std::vector<torch::Tensor> out;
  for (auto& h : hs) {
    std::vector<torch::Tensor> rows;
    for (auto& r : h) rows.push_back(torch::tensor(r));
    out.push_back(torch::stack(rows));
  }
  return torch::stack(out).unsqueeze(0);
}

const auto kLayer1 = heads({{{0.2f, 0.4f, 0.4f}, {0.5f, 0.5f, 0.0f}, {0.0f, 0.5f, 0.5f}},
                            {{0.6f, 0.2f, 0.2f}, {0.5f, 0.5f, 0.0f}, {0.5f, 0.0f, 0.5f}}});
const auto kLayer2 = heads({{{0, 1, 0}, {0, 1, 0}, {0, 0, 1}}, {{0, 1, 0}, {0, 1, 0}, {0, 0, 1}}});

}  // namespace

TEST_CASE("rollout of two layers with mean fusion matches the hand computation", "[explain][rollout]") {
  // Layer 1 mean over heads: [[.4,.3,.3],[.5,.5,0],[.25,.25,.5]]; (A+I)/2 rows already sum to 1:
  // [[.7,.15,.15],[.25,.75,0],[.125,.125,.75]]. Layer 2: [[.5,.5,0],[0,1,0],[0,0,1]].
  // CLS row of A2*A1 = .5*[.7,.15,.15] + .5*[.25,.75,0] = [.475, .45, .075].
  auto r = attention_rollout({kLayer1, kLayer2});
  REQUIRE(r.sizes() == torch::IntArrayRef({1, 2}));
  CHECK(r[0][0].item<float>() == Approx(0.45f).margin(1e-6));
  CHECK(r[0][1].item<float>() == Approx(0.075f).margin(1e-6));
}

TEST_CASE("rollout with max fusion renormalises rows after adding the identity", "[explain][rollout]") {
  // Layer 1 max: [[.6,.4,.4],[.5,.5,0],[.5,.5,.5]]; (A+I)/2 = [[.8,.2,.2],[.25,.75,0],...],
  // row 0 sums to 1.2 -> [2/3,1/6,1/6]. CLS row: .5*[2/3,1/6,1/6] + .5*[.25,.75,0] -> tokens
  // [11/24, 1/12].
  RolloutOptions opt;
  opt.head_fusion = HeadFusion::kMax;
  auto r = attention_rollout({kLayer1, kLayer2}, opt);
  CHECK(r[0][0].item<float>() == Approx(11.0 / 24.0).margin(1e-6));
  CHECK(r[0][1].item<float>() == Approx(1.0 / 12.0).margin(1e-6));
}

TEST_CASE("rollout discards the weakest non-CLS weights per row", "[explain][rollout]") {
  // One layer, T=4, CLS row [.1,.5,.3,.1]; discard 1 of 3 token columns -> [.1,.5,.3,0];
  // + I, halve, renormalise by 1.9/2 -> tokens [.5/1.9, .3/1.9, 0].
  auto layer = heads({{{0.1f, 0.5f, 0.3f, 0.1f}, {0.25f, 0.25f, 0.25f, 0.25f}, {0, 0, 1, 0}, {0, 0, 0, 1}}});
  RolloutOptions opt;
  opt.discard_ratio = 0.34;
  auto r = attention_rollout({layer}, opt);
  CHECK(r[0][0].item<float>() == Approx(0.5 / 1.9).margin(1e-6));
  CHECK(r[0][1].item<float>() == Approx(0.3 / 1.9).margin(1e-6));
  CHECK(r[0][2].item<float>() == 0.0f);
  // Without discarding, the same layer keeps the weak token.
  auto full = attention_rollout({layer});
  CHECK(full[0][2].item<float>() == Approx(0.1 / 2.0).margin(1e-6));
}

TEST_CASE("an unknown head fusion is a usage error naming the choices", "[explain][rollout]") {
  try {
    medattn::explain::parse_head_fusion("median");
    FAIL("no error");
  } catch (const medattn::Error& e) {
    CHECK(e.kind() == medattn::ErrorKind::kInvalidArgument);
    CHECK(std::string(e.what()) == "unknown head fusion 'median' (expected mean, max or min)");
  }
}
