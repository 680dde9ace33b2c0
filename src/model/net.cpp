// The network's modules and its forward pass (model/net.h); views in views.cpp, the weights
// file in weights.cpp, model directories in model_dir.cpp.
#include "model/net.h"

#include "model/item_gemm.h"

#include <cmath>
#include <limits>

namespace medattn::model {
namespace nn = torch::nn;

// Batch invariance. In eval mode every sample is computed by the same kernels, in the same
// order, whatever else shares its batch, so that an image's logits and maps are bit for bit
// those it gets alone (resume, shards and merge rely on it; see README "Batches"). LibTorch
// does not promise this by itself: a Linear folds [B,T,in] into one [B*T,in] matrix product
// whose blocking changes with B, and a convolution switches between oneDNN and its own
// kernel on the batch size (at::native::ConvParams::use_mkldnn). The per-sample products also
// run on one thread each whatever the batch and --threads (bmm_items), so that none depends on
// how OpenBLAS would split it between threads. Training keeps the fast batched paths.

torch::Tensor conv2d_each(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          at::IntArrayRef padding, at::IntArrayRef stride, at::IntArrayRef dilation, int64_t groups) {
  // Without oneDNN the fallback is LibTorch's own kernel, which works one sample at a time.
  if (!at::hasMKLDNN()) return at::conv2d(x, weight, bias, stride, padding, dilation, groups);
  return at::mkldnn_convolution(x.contiguous(), weight.contiguous(), bias, padding, stride, dilation, groups);
}

namespace {

// Whether autograd records a product of these: then the products keep their autograd Function.
bool recorded(const torch::Tensor& a, const torch::Tensor& b) {
  return at::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad());
}

// bmm_items with a gradient: bmm's own formulas (grad b^T, a^T grad), computed the same way.
struct BmmItems : torch::autograd::Function<BmmItems> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    return bmm_items(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& g = grads[0];
    torch::Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = bmm_items(g, saved[1].transpose(1, 2));
    if (ctx->needs_input_grad(1)) gb = bmm_items(saved[0].transpose(1, 2), g);
    return {ga, gb};
  }
};

// Products under 400 multiply-adds take bmm's own loop, as bmm itself would.
torch::Tensor bmm_each(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.size(1) * a.size(2) * b.size(2) < 400) return torch::bmm(a, b);
  return recorded(a, b) ? BmmItems::apply(a, b) : bmm_items(a, b);
}

// [..., m, k] x [..., k, n] for attention: the leading dimensions folded into one, as matmul does.
torch::Tensor matmul_each(const torch::Tensor& a, const torch::Tensor& b) {
  auto shape = a.sizes().vec();
  shape.back() = b.size(-1);
  return bmm_each(a.reshape({-1, a.size(-2), a.size(-1)}), b.reshape({-1, b.size(-2), b.size(-1)})).view(shape);
}

// x: [B,T,in] -> [B,T,out], or [B,in] -> [B,out]: one matrix product per sample in eval mode.
torch::Tensor linear_each(nn::Linear& l, const torch::Tensor& x) {
  if (l->is_training()) return l(x);
  const bool flat = x.dim() == 2;
  auto x3 = flat ? x.unsqueeze(1) : x;
  const auto wt = l->weight.t();
  if (!recorded(x3, l->weight) && l->bias.defined() && l->bias.is_contiguous() &&
      x3.size(1) * x3.size(2) * wt.size(1) >= 400) {
    // Without a gradient, the bias is added inside each sample's product (the same bits as the
    // product plus the bias below, without a pass of its own over the result).
    auto y = at::empty({x3.size(0), x3.size(1), wt.size(1)}, x3.options());
    if (gemm_items_into(x3.unsqueeze(1), wt.expand({x3.size(0), 1, -1, -1}), y.unsqueeze(1), {l->bias.data_ptr<float>()})) {
      return flat ? y.squeeze(1) : y;
    }
  }
  auto y = bmm_each(x3, wt.unsqueeze(0).expand({x3.size(0), -1, -1})) + l->bias;
  return flat ? y.squeeze(1) : y;
}

// x: [B,C,H,W]; one kernel for every batch size in eval mode.
torch::Tensor conv_each(nn::Conv2dImpl& c, const torch::Tensor& x) {
  if (c.is_training()) return c.forward(x);
  const auto& o = c.options;
  const auto& pad = c10::get<torch::ExpandingArray<2>>(o.padding());
  return conv2d_each(x, c.weight, c.bias, *pad, *o.stride(), *o.dilation(), o.groups());
}

// The heads of a projection [B,T,3D] in place: q and v [B,H,T,D/H], k transposed [B,H,D/H,T].
struct Heads {
  torch::Tensor q, kt, v;
};
Heads heads_of(const torch::Tensor& projected, int64_t heads) {
  const auto B = projected.size(0), T = projected.size(1), D = projected.size(2) / 3;
  const auto parts = projected.view({B, T, 3, heads, D / heads});
  return {parts.select(2, 0).permute({0, 2, 1, 3}), parts.select(2, 1).permute({0, 2, 3, 1}),
          parts.select(2, 2).permute({0, 2, 1, 3})};
}

// [B,T,D] seen as its heads [B,H,T,D/H].
torch::Tensor as_heads(const torch::Tensor& t, int64_t heads) {
  const auto B = t.size(0), T = t.size(1), D = t.size(2);
  return t.view({B, T, heads, D / heads}).permute({0, 2, 1, 3});
}

// attention's products always have a BLAS layout (SelfAttentionImpl::forward chooses when).
void require_planned(bool done) { TORCH_CHECK(done, "attention: a product's layout was declined"); }

// The attention's core, softmax(q k^T * scale) v for every sample and head, from the
// projection [B,T,3D] (contiguous): attn [B,H,T,T] and out [B,T,D]. Each head's products read
// q, k and v where the projection wrote them and write where the output projection reads, the
// scale applied inside the first product: bit for bit the chain of permute, contiguous, unbind,
// matmul_each, scale, softmax, matmul_each, transpose and reshape in SelfAttentionImpl::forward
// (the same BLAS calls on other leading dimensions), without its passes over the batch to copy.
void attention_core(const torch::Tensor& projected, int64_t heads, double scale, torch::Tensor& attn, torch::Tensor& out) {
  const auto B = projected.size(0), T = projected.size(1), D = projected.size(2) / 3;
  const Heads h = heads_of(projected, heads);
  auto scores = at::empty({B, heads, T, T}, projected.options());
  require_planned(gemm_items_into(h.q, h.kt, scores, {nullptr, static_cast<float>(scale)}));
  attn = torch::softmax(scores, /*dim=*/-1);
  out = at::empty({B, T, D}, projected.options());
  require_planned(gemm_items_into(attn, h.v, as_heads(out, heads)));
}

// attention_core with a gradient: the chain's own gradient formulas (softmax's, the scale's,
// and bmm's for each product), each product the same BLAS call as the chain makes, writing
// the gradients of q, k and v straight into one [B,T,3D] tensor (the chain stacks, permutes
// and copies them). Bit for bit the chain's gradient.
struct AttentionCore : torch::autograd::Function<AttentionCore> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& projected, int64_t heads,
                               double scale) {
    torch::Tensor attn, out;
    attention_core(projected, heads, scale, attn, out);
    ctx->save_for_backward({projected, attn});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["scale"] = scale;
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &projected = saved[0], &attn = saved[1];
    const int64_t heads = ctx->saved_data["heads"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto B = projected.size(0), T = projected.size(1), D = projected.size(2) / 3, Dh = D / heads;
    const Heads h = heads_of(projected, heads);
    const auto g = as_heads(grads[0].contiguous(), heads);  // [B,H,T,Dh]
    auto grad = at::empty_like(projected);
    const Heads gh = heads_of(grad, heads);
    // out = attn v: d attn = g v^T, d v = attn^T g.
    auto d_attn = at::empty({B, heads, T, T}, projected.options());
    require_planned(gemm_items_into(g, h.v.transpose(2, 3), d_attn));
    require_planned(gemm_items_into(attn.transpose(2, 3), g, gh.v));
    // attn = softmax(s * scale): d s = softmax'(d attn) * scale.
    auto d_scores = at::_softmax_backward_data(d_attn, attn, -1, at::kFloat).mul_(scale);
    // s = q k^T: d q = d s k; d k^T = q^T d s, made as bmm's gradient makes it ([Dh,T]) and then
    // moved into place.
    require_planned(gemm_items_into(d_scores, h.kt.transpose(2, 3), gh.q));
    auto dkt = at::empty({B, heads, Dh, T}, projected.options());
    require_planned(gemm_items_into(h.q.transpose(2, 3), d_scores, dkt));
    gh.kt.copy_(dkt);
    return {grad, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

SelfAttentionImpl::SelfAttentionImpl(int dim, int heads)
    : heads_(heads), scale_(1.0 / std::sqrt(static_cast<double>(dim / heads))) {
  qkv = register_module("qkv", nn::Linear(dim, 3 * dim));
  proj = register_module("proj", nn::Linear(dim, dim));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  const auto B = x.size(0), T = x.size(1), D = x.size(2);
  const auto projected = linear_each(qkv, x);  // [B,T,3D]
  // Attention weights with a gradient (attn-grad) need them as a node of the graph: the chain
  // below. Everything else takes the attention's core in one piece (attention_core).
  const bool graph = at::GradMode::is_enabled() && projected.requires_grad();
  // (At least 2 tokens and 2 channels a head: no degenerate matrix, so every product has a
  // BLAS layout and attention_core cannot be declined.)
  if (T >= 2 && D / heads_ >= 2 && T * T * (D / heads_) >= 400 && projected.is_contiguous() &&
      projected.scalar_type() == at::kFloat &&
      !(graph && weights != nullptr)) {
    if (graph) return linear_each(proj, AttentionCore::apply(projected, heads_, scale_));
    torch::Tensor attn, out;
    attention_core(projected, heads_, scale_, attn, out);
    if (weights != nullptr) *weights = attn;
    return linear_each(proj, out);
  }
  // [B,T,3D] -> [3,B,H,T,D/H]
  // unbind, not three selects: its gradient is one stack, where each select's is a zeroed
  // copy of the whole [3,B,H,T,D/H] tensor, summed with the other two.
  const auto qkv_heads = projected.reshape({B, T, 3, heads_, D / heads_}).permute({2, 0, 3, 1, 4}).contiguous().unbind(0);
  const auto &q = qkv_heads[0], &k = qkv_heads[1], &v = qkv_heads[2];
  auto attn = torch::softmax(matmul_each(q, k.transpose(-2, -1)) * scale_, /*dim=*/-1);  // [B,H,T,T]
  if (weights != nullptr) *weights = attn;
  auto out = matmul_each(attn, v).transpose(1, 2).reshape({B, T, D});
  return linear_each(proj, out);
}

BlockImpl::BlockImpl(int dim, int heads, double mlp_ratio) {
  const int hidden = static_cast<int>(dim * mlp_ratio);
  norm1 = register_module("norm1", nn::LayerNorm(nn::LayerNormOptions({dim})));
  attn = register_module("attn", SelfAttention(dim, heads));
  norm2 = register_module("norm2", nn::LayerNorm(nn::LayerNormOptions({dim})));
  fc1 = register_module("fc1", nn::Linear(dim, hidden));
  fc2 = register_module("fc2", nn::Linear(hidden, dim));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  auto h = x + attn->forward(norm1(x), weights);
  return h + linear_each(fc2, torch::gelu(linear_each(fc1, norm2(h))));
}

CrossAttentionImpl::CrossAttentionImpl(int dim, int heads)
    : heads_(heads), scale_(1.0 / std::sqrt(static_cast<double>(dim / heads))) {
  q = register_module("q", nn::Linear(dim, dim));
  kv = register_module("kv", nn::Linear(dim, 2 * dim));
  proj = register_module("proj", nn::Linear(dim, dim));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context, torch::Tensor* weights) {
  const auto B = x.size(0), N = x.size(1), D = x.size(2), F = context.size(1);
  auto qh = linear_each(q, x).reshape({B, N, heads_, D / heads_}).transpose(1, 2).contiguous();                      // [B,H,N,D/H]
  // [2,B,H,F,D/H], unbound as in SelfAttention
  const auto kvh = linear_each(kv, context).reshape({B, F, 2, heads_, D / heads_}).permute({2, 0, 3, 1, 4}).contiguous().unbind(0);
  auto attn = torch::softmax(matmul_each(qh, kvh[0].transpose(-2, -1)) * scale_, -1);    // [B,H,N,F]
  if (weights != nullptr) *weights = attn;
  return linear_each(proj, matmul_each(attn, kvh[1]).transpose(1, 2).reshape({B, N, D}));
}

CrossBlockImpl::CrossBlockImpl(int dim, int heads) {
  norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({dim})));
  norm_context = register_module("norm_context", nn::LayerNorm(nn::LayerNormOptions({dim})));
  attn = register_module("attn", CrossAttention(dim, heads));
  gate = register_parameter("gate", torch::zeros({1}));
}

torch::Tensor CrossBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context, torch::Tensor* weights) {
  return x + torch::tanh(gate) * attn->forward(norm(x), norm_context(context), weights);
}

ClinicalTokensImpl::ClinicalTokensImpl(const std::vector<ClinicalField>& fields, int dim) {
  const auto F = static_cast<int64_t>(fields.size());
  int64_t rows = 0;
  for (const auto& f : fields) {
    numeric_.push_back(f.type == ClinicalField::Type::kNumeric);
    offset_.push_back(rows);
    if (f.type == ClinicalField::Type::kCategorical) rows += static_cast<int64_t>(f.vocabulary.size());
  }
  num_weight = register_parameter("num_weight", torch::randn({F, dim}) * 0.02);
  num_bias = register_parameter("num_bias", torch::zeros({F, dim}));
  missing = register_parameter("missing", torch::randn({F, dim}) * 0.02);
  type = register_parameter("type", torch::randn({F, dim}) * 0.02);
  table = register_parameter("table", torch::randn({std::max<int64_t>(1, rows), dim}) * 0.02);
}

torch::Tensor ClinicalTokensImpl::forward(const torch::Tensor& values) {
  const auto B = values.size(0);
  std::vector<torch::Tensor> tokens;
  for (size_t f = 0; f < numeric_.size(); ++f) {
    const auto i = static_cast<int64_t>(f);
    auto v = values.select(1, i);                       // [B]
    auto absent = torch::isnan(v).unsqueeze(1);         // [B,1]
    auto v0 = torch::where(torch::isnan(v), torch::zeros_like(v), v);
    torch::Tensor token;
    if (numeric_[f]) {
      token = v0.unsqueeze(1) * num_weight[i] + num_bias[i];
    } else {
      const auto vocab = (f + 1 < offset_.size() ? offset_[f + 1] : table.size(0)) - offset_[f];
      auto index = v0.to(torch::kInt64).clamp(0, std::max<int64_t>(0, vocab - 1)) + offset_[f];
      token = table.index_select(0, index);
    }
    token = torch::where(absent, missing[i].expand({B, -1}), token) + type[i];
    tokens.push_back(token);
  }
  return torch::stack(tokens, 1);
}

AttnNetImpl::AttnNetImpl(const ArchConfig& arch, int image_size, int num_classes, int channels,
                         const std::vector<ClinicalField>& clinical, bool cross_fusion)
    : grid_(arch.grid_size(image_size)), clinical_count_(static_cast<int64_t>(clinical.size())) {
  stem = nn::Sequential();
  int in = channels;
  for (int out : arch.stem_channels) {
    stem->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(2).padding(1).bias(false)));
    stem->push_back(nn::BatchNorm2d(out));
    stem->push_back(nn::Functional([](torch::Tensor t) { return torch::gelu(t); }));
    stem->push_back(nn::Conv2d(nn::Conv2dOptions(out, out, 3).stride(1).padding(1).bias(false)));
    stem->push_back(nn::BatchNorm2d(out));
    stem->push_back(nn::Functional([](torch::Tensor t) { return torch::gelu(t); }));
    in = out;
  }
  register_module("stem", stem);
  proj = register_module("proj", nn::Conv2d(nn::Conv2dOptions(in, arch.dim, 1)));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, arch.dim}));
  pos_embed = register_parameter("pos_embed", torch::randn({1, 1 + grid_ * grid_, arch.dim}) * 0.02);
  blocks = nn::ModuleList();
  for (int i = 0; i < arch.depth; ++i) blocks->push_back(Block(arch.dim, arch.heads, arch.mlp_ratio));
  register_module("blocks", blocks);
  norm = register_module("norm", nn::LayerNorm(nn::LayerNormOptions({arch.dim})));
  head = register_module("head", nn::Linear(arch.dim, num_classes));
  if (!clinical.empty()) clinical_tokens = register_module("clinical", ClinicalTokens(clinical, arch.dim));
  if (!clinical.empty() && cross_fusion) {
    cross = nn::ModuleList();
    for (int i = 0; i < arch.depth; ++i) cross->push_back(CrossBlock(arch.dim, arch.heads));
    register_module("cross", cross);
  }
}

NetOutput AttnNetImpl::forward(const torch::Tensor& x, bool keep_attention, const torch::Tensor& clinical) {
  NetOutput out;
  auto f = x;
  int index = 0;
  for (auto& m : *stem) {
    auto* conv = m.ptr()->as<nn::Conv2dImpl>();
    f = conv ? conv_each(*conv, f) : m.forward(f);
    // Six modules per stage: conv, BN, GELU, conv, BN, GELU (the constructor).
    if (++index % 6 == 0 && !is_training()) out.stage_means.push_back(f.mean({2, 3}));
  }
  out.feature_map = f;                                                    // [B,C,g,g]
  auto tokens = conv_each(*proj, out.feature_map).flatten(2).transpose(1, 2);  // [B,g*g,D]
  auto h = torch::cat({cls_token.expand({x.size(0), -1, -1}), tokens}, 1) + pos_embed;
  torch::Tensor context;  // the covariate tokens [B,F,D]
  if (clinical_count_ > 0) {
    auto values = clinical.defined() ? clinical.to(torch::kFloat32)
                                     : torch::full({x.size(0), clinical_count_}, std::numeric_limits<float>::quiet_NaN());
    TORCH_CHECK(values.dim() == 2 && values.size(0) == x.size(0) && values.size(1) == clinical_count_,
                "clinical values must be [B,F]");
    context = clinical_tokens->forward(values);
    if (!cross_fusion()) h = torch::cat({h, context}, 1);
  }
  for (size_t l = 0; l < blocks->size(); ++l) {
    torch::Tensor w;
    h = blocks[l]->as<BlockImpl>()->forward(h, keep_attention ? &w : nullptr);
    if (keep_attention) out.attentions.push_back(w);
    if (cross_fusion()) {
      torch::Tensor cw;
      h = cross[l]->as<CrossBlockImpl>()->forward(h, context, keep_attention ? &cw : nullptr);
      if (keep_attention) out.cross_attentions.push_back(cw);
    }
  }
  out.tokens = norm(h);
  out.logits = linear_each(head, out.tokens.select(1, 0));
  return out;
}

// ---- model/net_api.h: the network for code compiled without LibTorch's module headers. The
// handle is const, the network it shares is not (ptr()).

NetOutput forward(const AttnNet& net, const at::Tensor& x, bool keep_attention, const at::Tensor& clinical) {
  return net.ptr()->forward(x, keep_attention, clinical);
}

void set_eval(const AttnNet& net) { net.ptr()->eval(); }

int grid_size(const AttnNet& net) { return net->grid_; }

int64_t image_tokens(const AttnNet& net) { return net->image_tokens(); }

int64_t clinical_count(const AttnNet& net) { return net->clinical_count(); }

bool cross_fusion(const AttnNet& net) { return net->cross_fusion(); }

std::vector<const AttnNet*> members(const std::vector<AttnNet>& nets) {
  std::vector<const AttnNet*> out;
  for (const auto& net : nets) out.push_back(&net);
  return out;
}

AttnNet build_net(const ModelCard& card) {
  return AttnNet(card.arch, card.preprocess.image_size, static_cast<int>(card.classes.size()),
                 card.preprocess.channels, card.clinical, card.clinical_fusion == "cross");
}

}  // namespace medattn::model
