// The signed map (--method contrast) on the hand-made two-class model of methods_test.cpp,
// whose "present" logit grows with the brightness of one quadrant and whose "absent" logit is
// zero: the evidence for "present" is known to be positive on a bright blob in that quadrant,
// and the map for "absent" must be its exact negative.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "explain/methods.h"
#include "explain/registry.h"
#include "support/quadrant_model.h"
#include "support/tiny_model.h"

using namespace medattn;

using testing::image_with_blobs;
using testing::quadrant_card;
using testing::quadrant_net;

TEST_CASE("contrast gives signed evidence with the known sign on a hand-made binary model", "[explain][contrast]") {
  auto net = quadrant_net(0, 0);
  // A bright blob inside the quadrant (rows and columns 2..5) and one outside it.
  const auto x = torch::cat({image_with_blobs({{2, 2}, {10, 10}}), image_with_blobs({{2, 2}, {10, 10}})});
  explain::ExplainOptions opt;
  opt.method = "contrast";
  const auto present = explain::explain(net, x, opt, {1, 1});
  const auto absent = explain::explain(net, x, opt, {0, 0});
  REQUIRE(present.signed_maps.defined());
  REQUIRE(present.signed_maps.sizes() == torch::IntArrayRef({2, 16, 16}));
  const auto s = present.signed_maps[0];
  // Evidence for "present" on the blob in the quadrant, and it is the strongest there.
  CHECK(s[3][3].item<float>() > 0.5f);
  // Its dark pixels (below the normalised mean) are evidence against it.
  CHECK(s[6][6].item<float>() < 0.0f);
  CHECK(s[0][6].item<float>() < 0.0f);
  CHECK(s.abs().max().item<float>() == Approx(1.0f));
  // Outside the quadrant the logit does not depend on the pixels: no evidence either way.
  CHECK(std::abs(s[12][12].item<float>()) < 1e-6f);
  CHECK(std::abs(s[15][15].item<float>()) < 1e-6f);
  // Two classes: the map for the other class is exactly the negative.
  CHECK(torch::allclose(absent.signed_maps, -present.signed_maps, /*rtol=*/0, /*atol=*/1e-6));
  // The unsigned map (metrics, raw PNG) is the positive part.
  CHECK(torch::equal(present.maps, torch::relu(present.signed_maps)));
  CHECK(absent.maps[0][3][3].item<float>() == 0.0f);
  // The same logits as a plain forward pass.
  torch::NoGradGuard no_grad;
  CHECK(torch::allclose(present.logits, net->forward(x).logits));
}

TEST_CASE("contrast maps do not depend on the batch", "[explain][contrast]") {
  auto net = quadrant_net(1, 0);
  const auto a = image_with_blobs({{10, 2}});
  const auto b = image_with_blobs({{2, 10}});
  explain::ExplainOptions opt;
  opt.method = "contrast";
  const auto alone = explain::explain(net, a, opt, {1});
  const auto together = explain::explain(net, torch::cat({a, b}), opt, {1, 1});
  CHECK(torch::equal(alone.signed_maps[0], together.signed_maps[0]));
}

TEST_CASE("contrast is parsed by name", "[explain][contrast]") {
  CHECK(explain::parse_method("contrast") == "contrast");
  CHECK(explain::find_method("contrast").whole != nullptr);
}
