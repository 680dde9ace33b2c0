// Batch invariance: an image's logits and heatmaps are bit for bit the same whichever images
// share its batch, so that --resume, --shard and merge reproduce an uninterrupted run exactly
// (README "Batches"). LibTorch alone does not give this: the same image scored alone and in a
// batch of 8 differed in the last bits of its logits before the network was made invariant.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "explain/methods.h"
#include "model/card.h"
#include "model/net.h"
#include "model/ood_features.h"
#include "support/tiny_model.h"

using namespace medattn;

namespace {

// A tiny network of two blocks, colour input, clinical covariates off.
model::AttnNet tiny_net(int channels) {
  model::ModelCard card;
  card.classes = {"a", "b", "c"};
  testing::make_tiny(card, channels);
  card.arch.depth = 2;
  torch::manual_seed(11);
  auto net = model::build_net(card);
  net->eval();
  return net;
}

// Splits [B,...] into the chunks of `sizes` (in order), runs `fn` on each and joins the results.
template <typename Fn>
torch::Tensor in_chunks(const torch::Tensor& x, const std::vector<int64_t>& sizes, Fn fn) {
  std::vector<torch::Tensor> parts;
  int64_t at = 0;
  for (const int64_t n : sizes) {
    parts.push_back(fn(x.slice(0, at, at + n)));
    at += n;
  }
  REQUIRE(at == x.size(0));
  return torch::cat(parts);
}

int rows_differing(const torch::Tensor& a, const torch::Tensor& b) {
  int n = 0;
  for (int64_t i = 0; i < a.size(0); ++i) n += !torch::equal(a[i], b[i]);
  return n;
}

}  // namespace

TEST_CASE("logits do not depend on which images share the batch", "[model][batch]") {
  for (const int channels : {1, 3}) {
    INFO("channels " << channels);
    auto net = tiny_net(channels);
    torch::manual_seed(3);
    const auto x = torch::rand({12, channels, 32, 32});
    torch::NoGradGuard no_grad;
    auto logits = [&](const torch::Tensor& xb) { return net->forward(xb, false).logits; };
    const auto whole = logits(x);
    CHECK(rows_differing(in_chunks(x, std::vector<int64_t>(12, 1), logits), whole) == 0);
    CHECK(rows_differing(in_chunks(x, {5, 7}, logits), whole) == 0);
    CHECK(rows_differing(in_chunks(x, {8, 3, 1}, logits), whole) == 0);
    // The image order inside the batch does not matter either.
    const auto reversed = torch::flip(x, {0});
    CHECK(rows_differing(torch::flip(logits(reversed), {0}), whole) == 0);
  }
}

TEST_CASE("heatmaps do not depend on which images share the batch, a lone image included", "[model][batch][explain]") {
  auto net = tiny_net(1);
  torch::manual_seed(4);
  const auto x = torch::rand({6, 1, 32, 32});
  for (const char* method : {"saliency", "gradcam", "attn-grad", "rollout", "occlusion"}) {
    INFO(method);
    explain::ExplainOptions opt;
    opt.method = explain::parse_method(method);
    auto maps = [&](const torch::Tensor& xb) { return explain::explain(net, xb, opt).maps; };
    const auto whole = maps(x);
    CHECK(rows_differing(in_chunks(x, std::vector<int64_t>(6, 1), maps), whole) == 0);
    CHECK(rows_differing(in_chunks(x, {2, 4}, maps), whole) == 0);
  }
}

TEST_CASE("the OOD gate's features and the logits of its pass do not depend on the batch", "[model][batch][ood]") {
  auto net = tiny_net(1);
  torch::manual_seed(5);
  const auto x = torch::rand({7, 1, 32, 32});
  const std::vector<model::AttnNet> nets{net};
  for (const char* kind : {"cls", "layers"}) {
    INFO(kind);
    torch::Tensor logits;
    const auto whole = model::gate_features(nets, x, {}, kind, &logits);
    CHECK(rows_differing(in_chunks(x, std::vector<int64_t>(7, 1), [&](const torch::Tensor& xb) {
            return model::gate_features(nets, xb, {}, kind);
          }), whole) == 0);
    torch::NoGradGuard no_grad;
    CHECK(rows_differing(logits, net->forward(x, false).logits) == 0);
    CHECK(rows_differing(in_chunks(x, {3, 4}, [&](const torch::Tensor& xb) {
            torch::Tensor l;
            model::gate_features(nets, xb, {}, kind, &l);
            return l;
          }), logits) == 0);
  }
}
