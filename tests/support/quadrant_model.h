// The hand-made two-class "quadrant" model shared by the heatmap-method tests: its "present"
// logit depends only on one quadrant of a 16x16 input and grows with its brightness, so every
// method's map has a known answer. Includes LibTorch (include it before Catch).
#pragma once

#include <utility>
#include <vector>

#include "model/net.h"

namespace medattn::testing {

// A 16x16 input, one stem stage (8x8 tokens), one block with one head, width 4.
inline model::ModelCard quadrant_card() {
  model::ModelCard card;
  card.classes = {"absent", "present"};
  card.preprocess.image_size = 16;
  card.arch.stem_channels = {4};
  card.arch.dim = 4;
  card.arch.depth = 1;
  card.arch.heads = 1;
  card.arch.mlp_ratio = 1.0;
  return card;
}

// Weights set by hand so that the "present" logit depends only on the pixels (2i, 2j) of the
// tokens (i, j) in one quadrant of the 8x8 token grid, and grows with their brightness:
// - the stem passes the centre pixel of each token through (centre taps, BN = identity);
// - a token is [f, s, -f, -s] (f: its feature, s = 1 inside the quadrant), so LayerNorm
//   divides it by its spread and keeps s's sign;
// - CLS queries the key s with weight 200: attention outside the quadrant is exp(-141), which
//   is exactly 0 in float (kept small so that the attention hardly depends on f);
// - the value is f, the MLP is zero, and the head reads the attention output, offset so that
//   the probabilities stay near 0.5 (a saturated softmax would hide occlusion's signal).
inline model::AttnNet quadrant_net(int qy, int qx) {
  auto net = model::build_net(quadrant_card());
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.zero_();
  for (auto& b : net->named_buffers()) {
    if (b.key().find("running_var") != std::string::npos) b.value().fill_(1.0);
  }
  auto params = net->named_parameters();
  auto set = [&](const std::string& name, std::vector<int64_t> index, float value) {
    auto t = params[name];
    for (auto i : index) t = t[i];
    t.fill_(value);
  };
  set("stem.0.weight", {0, 0, 1, 1}, 0.1f);
  set("stem.3.weight", {0, 0, 1, 1}, 1.0f);
  for (int c = 0; c < 4; ++c) {
    set("stem.1.weight", {c}, 1.0f);
    set("stem.4.weight", {c}, 1.0f);
  }
  set("proj.weight", {0, 0, 0, 0}, 1.0f);
  set("proj.weight", {2, 0, 0, 0}, -1.0f);
  const float cls[4] = {1, -1, 1, -1};
  for (int d = 0; d < 4; ++d) set("cls_token", {0, 0, d}, cls[d]);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      const int64_t token = 1 + (qy * 4 + i) * 8 + (qx * 4 + j);
      set("pos_embed", {0, token, 1}, 1.0f);
      set("pos_embed", {0, token, 3}, -1.0f);
    }
  }
  for (const char* ln : {"blocks.0.norm1.weight", "blocks.0.norm2.weight", "norm.weight"}) {
    for (int d = 0; d < 4; ++d) set(ln, {d}, 1.0f);
  }
  set("blocks.0.attn.qkv.weight", {0, 0}, 200.0f);   // q0 = 200 * LN(x)[0]
  set("blocks.0.attn.qkv.weight", {4, 1}, 1.0f);     // k0 = LN(x)[1]
  set("blocks.0.attn.qkv.weight", {8, 0}, 1.0f);     // v0 = LN(x)[0]
  set("blocks.0.attn.proj.weight", {0, 0}, 1.0f);
  set("head.weight", {1, 0}, 20.0f);
  set("head.bias", {1}, -20.0f);
  net->eval();
  return net;
}

// Dark (0.3) image, normalised as the card says ((v - 0.5) / 0.25), with bright (1.0) 4x4
// blobs at the given top-left pixel corners.
inline torch::Tensor image_with_blobs(const std::vector<std::pair<int, int>>& corners) {
  auto img = torch::full({1, 1, 16, 16}, 0.3f);
  for (auto [y, x] : corners) img.narrow(2, y, 4).narrow(3, x, 4).fill_(1.0f);
  return (img - 0.5) / 0.25;
}

}  // namespace medattn::testing
