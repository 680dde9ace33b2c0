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

// Two blocks of pneumonia-cxr's shapes (64 px grey, stem 16,32,64, width 96, 4 heads: products
// of 65x24, 65x96 and 65x192), in eval mode, weights drawn from `seed`.
model::AttnNet cxr_shaped_net(uint64_t seed) {
  model::ModelCard card;
  card.classes = {"a", "b"};
  card.preprocess.image_size = 64;
  card.preprocess.channels = 1;
  card.arch.stem_channels = {16, 32, 64};
  card.arch.dim = 96;
  card.arch.depth = 2;
  card.arch.heads = 4;
  torch::manual_seed(seed);
  auto net = model::build_net(card);
  net->eval();
  return net;
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

TEST_CASE("the forward without a gradient is bit for bit the forward autograd records", "[model][batch]") {
  // Without a gradient the attention reads its heads in place and adds biases inside the
  // products (model/net.cpp); with one (saliency, gradcam) it takes the recorded path. Both must
  // give the same logits and attention, or a heatmap's probabilities would differ from the
  // record's. Checked on the tiny network and on pneumonia-cxr's shapes (64 px, width 96,
  // 4 heads: products of 65x24, 65x96 and 65x192).
  auto big_net = cxr_shaped_net(12);
  struct Case {
    const char* name;
    model::AttnNet net;
    int64_t size;
  };
  for (Case c : {Case{"tiny", tiny_net(1), 32}, Case{"pneumonia-cxr's shapes", big_net, 64}}) {
    INFO(c.name);
    torch::manual_seed(5);
    const auto x = torch::rand({5, 1, c.size, c.size});
    model::NetOutput plain;
    {
      torch::NoGradGuard no_grad;
      plain = c.net->forward(x, true);
    }
    const auto xg = x.clone().requires_grad_(true);
    const auto traced = c.net->forward(xg, true);
    REQUIRE(traced.logits.requires_grad());
    CHECK(torch::equal(plain.logits, traced.logits.detach()));
    REQUIRE(plain.attentions.size() == traced.attentions.size());
    for (size_t l = 0; l < plain.attentions.size(); ++l) CHECK(torch::equal(plain.attentions[l], traced.attentions[l].detach()));
    CHECK(torch::equal(plain.tokens, traced.tokens.detach()));
  }
}

TEST_CASE("the attention's one-piece gradient is bit for bit the chain of operations' gradient", "[model][batch]") {
  // With a gradient and without attention weights (training, saliency, gradcam) the attention
  // is one autograd node (model/net.cpp AttentionCore); asked for its weights (attn-grad) it is
  // the chain of LibTorch operations. The input's and every parameter's gradient must not
  // depend on which: in eval mode (heatmaps) and in training mode.
  auto net = cxr_shaped_net(13);
  torch::manual_seed(6);
  const auto x = torch::rand({4, 1, 64, 64});
  for (const bool training : {false, true}) {
    INFO((training ? "training" : "eval"));
    net->train(training);
    struct Grads {
      torch::Tensor logits, input;
      std::vector<torch::Tensor> params;
    };
    auto grads = [&](bool keep_attention) {
      for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
      const auto xi = x.clone().requires_grad_(true);
      const auto out = net->forward(xi, keep_attention);
      REQUIRE(out.attentions.size() == (keep_attention ? 2u : 0u));
      (out.logits * torch::tensor({{1.0f, -2.0f}})).sum().backward();
      Grads g{out.logits.detach(), xi.grad()};
      for (auto& p : net->parameters()) g.params.push_back(p.grad().clone());
      return g;
    };
    const auto chain = grads(true), piece = grads(false);
    CHECK(torch::equal(chain.logits, piece.logits));
    CHECK(torch::equal(chain.input, piece.input));
    REQUIRE(chain.params.size() == piece.params.size());
    int differing = 0;
    for (size_t i = 0; i < chain.params.size(); ++i) differing += !torch::equal(chain.params[i], piece.params[i]);
    CHECK(differing == 0);
  }
}
