#include "model/net.h"

#include <cstring>
#include <limits>
#include <filesystem>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/sha256.h"
#include "core/text.h"
#include "core/fs.h"
#include "core/bounded_io.h"

namespace medattn::model {
namespace nn = torch::nn;

// Batch invariance. In eval mode every sample is computed by the same kernels, in the same
// order, whatever else shares its batch, so that an image's logits and maps are bit for bit
// those it gets alone (resume, shards and merge rely on it; see README "Batches"). LibTorch
// does not promise this by itself: a Linear folds [B,T,in] into one [B*T,in] matrix product
// whose blocking changes with B, and a convolution switches between oneDNN and its own
// kernel on the batch size (at::native::ConvParams::use_mkldnn). Training keeps the fast
// batched paths.

torch::Tensor conv2d_each(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          at::IntArrayRef padding, at::IntArrayRef stride, at::IntArrayRef dilation, int64_t groups) {
  // Without oneDNN the fallback is LibTorch's own kernel, which works one sample at a time.
  if (!at::hasMKLDNN()) return at::conv2d(x, weight, bias, stride, padding, dilation, groups);
  return at::mkldnn_convolution(x.contiguous(), weight.contiguous(), bias, padding, stride, dilation, groups);
}

namespace {

// x: [B,T,in] -> [B,T,out], or [B,in] -> [B,out]: one matrix product per sample in eval mode.
torch::Tensor linear_each(nn::Linear& l, const torch::Tensor& x) {
  if (l->is_training()) return l(x);
  const bool flat = x.dim() == 2;
  auto x3 = flat ? x.unsqueeze(1) : x;
  auto y = torch::bmm(x3, l->weight.t().unsqueeze(0).expand({x3.size(0), -1, -1})) + l->bias;
  return flat ? y.squeeze(1) : y;
}

// x: [B,C,H,W]; one kernel for every batch size in eval mode.
torch::Tensor conv_each(nn::Conv2dImpl& c, const torch::Tensor& x) {
  if (c.is_training()) return c.forward(x);
  const auto& o = c.options;
  const auto& pad = c10::get<torch::ExpandingArray<2>>(o.padding());
  return conv2d_each(x, c.weight, c.bias, *pad, *o.stride(), *o.dilation(), o.groups());
}

}  // namespace

SelfAttentionImpl::SelfAttentionImpl(int dim, int heads)
    : heads_(heads), scale_(1.0 / std::sqrt(static_cast<double>(dim / heads))) {
  qkv = register_module("qkv", nn::Linear(dim, 3 * dim));
  proj = register_module("proj", nn::Linear(dim, dim));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* weights) {
  const auto B = x.size(0), T = x.size(1), D = x.size(2);
  // [B,T,3D] -> [3,B,H,T,D/H]
  auto qkv_heads = linear_each(qkv, x).reshape({B, T, 3, heads_, D / heads_}).permute({2, 0, 3, 1, 4}).contiguous();
  auto q = qkv_heads[0], k = qkv_heads[1], v = qkv_heads[2];
  auto attn = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) * scale_, /*dim=*/-1);  // [B,H,T,T]
  if (weights != nullptr) *weights = attn;
  auto out = torch::matmul(attn, v).transpose(1, 2).reshape({B, T, D});
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
  auto kvh = linear_each(kv, context).reshape({B, F, 2, heads_, D / heads_}).permute({2, 0, 3, 1, 4}).contiguous();  // [2,B,H,F,D/H]
  auto attn = torch::softmax(torch::matmul(qh, kvh[0].transpose(-2, -1)) * scale_, -1);    // [B,H,N,F]
  if (weights != nullptr) *weights = attn;
  return linear_each(proj, torch::matmul(attn, kvh[1]).transpose(1, 2).reshape({B, N, D}));
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

std::vector<int> tta_views(const std::vector<std::string>& tta) {
  int bits = 0;
  for (const auto& f : tta) bits |= f == "hflip" ? 1 : f == "vflip" ? 2 : 0;
  return views_of(bits);
}

std::vector<int> views_of(int bits) {
  std::vector<int> views;
  for (int v = 0; v <= bits; ++v) {
    if ((v & bits) == v) views.push_back(v);
  }
  return views;
}

torch::Tensor flip_view(const torch::Tensor& x, int view) {
  std::vector<int64_t> dims;
  if (view & 2) dims.push_back(x.dim() - 2);
  if (view & 1) dims.push_back(x.dim() - 1);
  return dims.empty() ? x : torch::flip(x, dims);
}

torch::Tensor view_logits(AttnNet& net, const torch::Tensor& x, const torch::Tensor& clinical,
                          const std::vector<int>& views, const torch::Tensor& identity_logits) {
  torch::NoGradGuard no_grad;
  net->eval();
  auto pass = [&](int v) {
    return v == 0 && identity_logits.defined() ? identity_logits : net->forward(flip_view(x, v), false, clinical).logits;
  };
  if (views.size() <= 1) return pass(views.empty() ? 0 : views[0]);
  torch::Tensor sum;
  for (int v : views) {
    auto logits = pass(v);
    sum = sum.defined() ? sum + logits : logits;
  }
  return sum / static_cast<double>(views.size());
}

torch::Tensor view_logits(const std::vector<AttnNet>& nets, const torch::Tensor& x, const torch::Tensor& clinical,
                          const std::vector<int>& views) {
  TORCH_CHECK(!nets.empty(), "view_logits: no network");
  torch::Tensor sum;
  for (auto net : nets) {
    auto logits = view_logits(net, x, clinical, views);
    sum = sum.defined() ? sum + logits : logits;
  }
  return nets.size() == 1 ? sum : sum / static_cast<double>(nets.size());
}

AttnNet build_net(const ModelCard& card) {
  return AttnNet(card.arch, card.preprocess.image_size, static_cast<int>(card.classes.size()),
                 card.preprocess.channels, card.clinical, card.clinical_fusion == "cross");
}

namespace {

constexpr char kMagic[8] = {'M', 'D', 'A', 'T', 'T', 'N', 'W', '1'};
constexpr uint32_t kWeightsVersion = 1;

std::map<std::string, torch::Tensor> state_of(torch::nn::Module& net) {
  std::map<std::string, torch::Tensor> state;
  for (const auto& p : net.named_parameters(/*recurse=*/true)) state[p.key()] = p.value();
  for (const auto& b : net.named_buffers(/*recurse=*/true)) {
    if (b.key().find("num_batches_tracked") == std::string::npos) state[b.key()] = b.value();
  }
  return state;
}

template <typename T>
void put(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// Bounds-checked reader over the file's bytes.
class Reader {
 public:
  Reader(const std::string& bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  void read(void* dst, size_t n) {
    if (n > bytes_.size() - pos_) {
      throw file_error(ErrorKind::kModel, "cannot load weights", path_,
                       "file is truncated at byte " + std::to_string(bytes_.size()));
    }
    std::memcpy(dst, bytes_.data() + pos_, n);
    pos_ += n;
  }
  template <typename T>
  T get() {
    T v;
    read(&v, sizeof(T));
    return v;
  }
  size_t remaining() const { return bytes_.size() - pos_; }

 private:
  const std::string& bytes_;
  const std::string& path_;
  size_t pos_ = 0;
};

}  // namespace

void save_weights(torch::nn::Module& net, const std::string& path) {
  const auto state = state_of(net);
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(&out, kWeightsVersion);
  put<uint32_t>(&out, static_cast<uint32_t>(state.size()));
  for (const auto& [name, tensor] : state) {
    put<uint32_t>(&out, static_cast<uint32_t>(name.size()));
    out.append(name);
    put<uint32_t>(&out, static_cast<uint32_t>(tensor.dim()));
    for (int64_t d : tensor.sizes()) put<int64_t>(&out, d);
    auto data = tensor.detach().to(torch::kFloat32).contiguous();
    out.append(reinterpret_cast<const char*>(data.data_ptr<float>()), data.numel() * sizeof(float));
  }
  write_file_atomic(path, out);
}

void load_weights(torch::nn::Module& net, const std::string& path) { load_encoder_weights(net, path, {}); }

int load_encoder_weights(torch::nn::Module& net, const std::string& path, const std::vector<std::string>& fresh) {
  auto is_fresh = [&](const std::string& name) {
    for (const auto& prefix : fresh) {
      if (name.compare(0, prefix.size(), prefix) == 0) return true;
    }
    return false;
  };
  const std::string bytes = read_file_bounded(path, ErrorKind::kModel, "cannot load weights", kMaxWeightsBytes);
  auto fail = [&](const std::string& why) {
    return file_error(ErrorKind::kModel, "cannot load weights", path, why);
  };
  Reader in(bytes, path);
  char magic[8];
  in.read(magic, sizeof(magic));
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) throw fail("not a medattn weights file (bad magic)");
  const auto version = in.get<uint32_t>();
  if (version != kWeightsVersion) {
    throw fail("weights version " + std::to_string(version) + " is not supported (expected " +
               std::to_string(kWeightsVersion) + ")");
  }
  auto expected = state_of(net);
  const auto count = in.get<uint32_t>();
  std::map<std::string, torch::Tensor> loaded;
  for (uint32_t i = 0; i < count; ++i) {
    const auto name_len = in.get<uint32_t>();
    if (name_len == 0 || name_len > 1024) throw fail("corrupt tensor name length " + std::to_string(name_len));
    std::string name(name_len, '\0');
    in.read(name.data(), name_len);
    const auto ndim = in.get<uint32_t>();
    if (ndim > 8) throw fail("corrupt rank " + std::to_string(ndim) + " for '" + name + "'");
    std::vector<int64_t> shape(ndim);
    uint64_t numel = 1;
    for (auto& d : shape) {
      d = in.get<int64_t>();
      if (d < 0 || d > (int64_t{1} << 31)) throw fail("corrupt dimension for '" + name + "'");
      numel *= static_cast<uint64_t>(d);
      if (numel > in.remaining() / sizeof(float) + 1) throw fail("file is truncated in tensor '" + name + "'");
    }
    if (is_fresh(name)) {  // read past it
      if (numel * sizeof(float) > in.remaining()) throw fail("file is truncated in tensor '" + name + "'");
      std::vector<float> skipped(numel);
      in.read(skipped.data(), numel * sizeof(float));
      continue;
    }
    auto it = expected.find(name);
    if (it == expected.end()) throw fail("unexpected tensor '" + name + "' (not in this architecture)");
    const auto want = it->second.sizes().vec();
    if (want != shape) {
      throw fail("shape mismatch for '" + name + "' (got " + shape_string(shape) + ", expected " +
                 shape_string(want) + ")");
    }
    auto t = torch::empty(shape, torch::kFloat32);
    in.read(t.data_ptr<float>(), numel * sizeof(float));
    if (!loaded.emplace(name, t).second) throw fail("duplicate tensor '" + name + "'");
  }
  for (const auto& [name, tensor] : expected) {
    if (!loaded.count(name) && !is_fresh(name)) throw fail("missing tensor '" + name + "'");
  }
  if (in.remaining() != 0) throw fail(std::to_string(in.remaining()) + " trailing bytes after the last tensor");
  torch::NoGradGuard no_grad;
  int copied = 0;
  for (auto& [name, tensor] : expected) {
    if (is_fresh(name)) continue;
    tensor.copy_(loaded[name]);
    ++copied;
  }
  return copied;
}

void copy_weights(torch::nn::Module& dst, torch::nn::Module& src) {
  torch::NoGradGuard no_grad;
  auto d = dst.parameters(), s = src.parameters();
  TORCH_CHECK(d.size() == s.size(), "copy_weights: different architectures");
  for (size_t i = 0; i < d.size(); ++i) d[i].copy_(s[i]);
  auto db = dst.buffers(), sb = src.buffers();
  TORCH_CHECK(db.size() == sb.size(), "copy_weights: different architectures");
  for (size_t i = 0; i < db.size(); ++i) db[i].copy_(sb[i]);
}

LoadedModel load_model(const std::string& dir) {
  LoadedModel m;
  m.card = read_card(dir);
  const auto weights = (std::filesystem::path(dir) / kWeightsFile).string();
  std::error_code ec;
  if (!std::filesystem::exists(weights, ec)) {
    throw file_error(ErrorKind::kModel, "cannot load model", dir, std::string("missing ") + kWeightsFile);
  }
  require_regular_file(weights, ErrorKind::kModel, "cannot load model", kMaxWeightsBytes);
  m.weights_sha256 = sha256_file(weights);
  if (!m.card.weights_sha256.empty() && m.card.weights_sha256 != m.weights_sha256) {
    throw file_error(ErrorKind::kModel, "cannot load model", dir,
                     std::string(kWeightsFile) + " does not match the card's SHA-256 (got " + m.weights_sha256.substr(0, 16) +
                         "..., expected " + m.card.weights_sha256.substr(0, 16) + "...): corrupt or replaced");
  }
  m.net = build_net(m.card);
  load_weights(*m.net, weights);
  m.net->eval();
  m.nets.push_back(m.net);
  for (const auto& member : m.card.members) {
    const auto path = (std::filesystem::path(dir) / member.file).string();
    if (!std::filesystem::exists(path, ec)) {
      throw file_error(ErrorKind::kModel, "cannot load model", dir, "missing ensemble member " + member.file);
    }
    require_regular_file(path, ErrorKind::kModel, "cannot load model", kMaxWeightsBytes);
    const auto sha = sha256_file(path);
    if (sha != member.sha256) {
      throw file_error(ErrorKind::kModel, "cannot load model", dir,
                       member.file + " does not match the card's SHA-256 (got " + sha.substr(0, 16) + "..., expected " +
                           member.sha256.substr(0, 16) + "...): corrupt or replaced");
    }
    AttnNet net = build_net(m.card);
    load_weights(*net, path);
    net->eval();
    m.nets.push_back(net);
  }
  return m;
}

void save_model(const std::string& dir, const ModelCard& card, const std::vector<AttnNet>& nets) {
  TORCH_CHECK(!nets.empty(), "save_model: no network");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw file_error(ErrorKind::kIOError, "cannot create model directory", dir, ec.message());
  const auto weights = (std::filesystem::path(dir) / kWeightsFile).string();
  AttnNet first = nets[0];
  save_weights(*first, weights);
  ModelCard recorded = card;
  recorded.weights_sha256 = sha256_file(weights);
  recorded.members.clear();
  for (size_t k = 1; k < nets.size(); ++k) {
    const std::string file = "member-" + std::to_string(k + 1) + ".bin";
    const auto path = (std::filesystem::path(dir) / file).string();
    AttnNet member = nets[k];
    save_weights(*member, path);
    recorded.members.push_back({file, sha256_file(path)});
  }
  write_card(dir, recorded);
  // Members of an earlier, larger ensemble written to the same directory are not part of this model.
  for (size_t k = nets.size() + 1;; ++k) {
    const auto stale = std::filesystem::path(dir) / ("member-" + std::to_string(k) + ".bin");
    if (!std::filesystem::remove(stale, ec)) break;
  }
}

void save_model(const std::string& dir, const ModelCard& card, AttnNet& net) { save_model(dir, card, std::vector<AttnNet>{net}); }

}  // namespace medattn::model
