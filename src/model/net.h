// The CNN+Transformer classifier and its weights file. Includes LibTorch: only the few
// sources that build, train or load the model include this header; code that only runs it
// (the heatmap methods) includes model/net_api.h, which this header includes too.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/card.h"
#include "model/net_api.h"

namespace medattn::model {

// Multi-head scaled dot-product self-attention that also returns its weights, which
// LibTorch's own TransformerEncoderLayer discards.
struct SelfAttentionImpl : torch::nn::Module {
  SelfAttentionImpl(int dim, int heads);
  // x: [B,T,D] -> [B,T,D]; *weights (when not null): [B,H,T,T], rows sum to 1.
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights = nullptr);

  int heads_;
  double scale_;
  torch::nn::Linear qkv{nullptr};
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(SelfAttention);

// Pre-norm block: x + attn(LN(x)), then x + MLP(LN(x)).
struct BlockImpl : torch::nn::Module {
  BlockImpl(int dim, int heads, double mlp_ratio);
  // x: [B,T,D] -> [B,T,D]; *weights: [B,H,T,T] when not null.
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* weights = nullptr);

  torch::nn::LayerNorm norm1{nullptr};
  SelfAttention attn{nullptr};
  torch::nn::LayerNorm norm2{nullptr};
  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};
};
TORCH_MODULE(Block);

// Cross-attention of queries x to a context (the covariate tokens), returning its weights.
struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(int dim, int heads);
  // x: [B,N,D], context: [B,F,D] -> [B,N,D]; *weights (when not null): [B,H,N,F], rows sum to 1.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context, torch::Tensor* weights = nullptr);

  int heads_;
  double scale_;
  torch::nn::Linear q{nullptr};
  torch::nn::Linear kv{nullptr};
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(CrossAttention);

// x + tanh(gate) * CrossAttention(LN(x), LN(context)); the gate starts at 0, so a new layer
// leaves the image path as it is until training opens it (Alayrac et al. 2022).
struct CrossBlockImpl : torch::nn::Module {
  CrossBlockImpl(int dim, int heads);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context, torch::Tensor* weights = nullptr);

  torch::nn::LayerNorm norm{nullptr};
  torch::nn::LayerNorm norm_context{nullptr};
  CrossAttention attn{nullptr};
  torch::Tensor gate;  // [1]
};
TORCH_MODULE(CrossBlock);


// One token per clinical covariate (ModelCard::clinical): numeric values through a learned
// projection (w * v + b), categories through an embedding, a learned "missing" embedding where
// the value is NaN, plus a type embedding per covariate.
struct ClinicalTokensImpl : torch::nn::Module {
  ClinicalTokensImpl(const std::vector<ClinicalField>& fields, int dim);
  // values: [B,F] as encode_clinical() writes them (NaN = missing) -> [B,F,D].
  torch::Tensor forward(const torch::Tensor& values);

  std::vector<bool> numeric_;
  std::vector<int64_t> offset_;  // categorical field -> first row of `table`
  torch::Tensor num_weight, num_bias;  // [F,D] (rows of categorical fields unused)
  torch::Tensor missing, type;         // [F,D]
  torch::Tensor table;                 // [sum of vocabulary sizes (at least 1), D]
};
TORCH_MODULE(ClinicalTokens);

// CNN stem (conv-BN-GELU stages, each halving the resolution) -> 1x1 projection to `dim`
// -> tokens + CLS + learned positions [-> clinical tokens appended] -> `depth` pre-norm blocks
// over all tokens (joint self-attention) -> LN -> linear head on CLS.
struct AttnNetImpl : torch::nn::Module {
  AttnNetImpl(const ArchConfig& arch, int image_size, int num_classes, int channels = 1,
              const std::vector<ClinicalField>& clinical = {}, bool cross_fusion = false);
  // x: [B,C,S,S] normalised input. Attention weights are kept only when keep_attention.
  // clinical: [B,F] encoded covariates (NaN = missing); undefined = all missing. Ignored by an
  // image-only model.
  NetOutput forward(const torch::Tensor& x, bool keep_attention = false, const torch::Tensor& clinical = {});
  // Token layout: 0 = CLS, 1..grid*grid = image, then one per clinical covariate.
  int64_t image_tokens() const { return static_cast<int64_t>(grid_) * grid_; }
  int64_t clinical_count() const { return clinical_count_; }
  bool cross_fusion() const { return !cross.is_empty(); }

  int grid_;
  int64_t clinical_count_ = 0;
  ClinicalTokens clinical_tokens{nullptr};
  torch::nn::Sequential stem{nullptr};
  torch::nn::Conv2d proj{nullptr};
  torch::Tensor cls_token;  // [1,1,D]
  torch::Tensor pos_embed;  // [1,1+g*g,D]
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::ModuleList cross{nullptr};  // cross fusion: one CrossBlock after each block
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(AttnNet);

// Views (tta_views, flip_view, view_logits) and conv2d_each: model/net_api.h.

// Builds an untrained network for `card` (weights initialised from the current torch seed).
AttnNet build_net(const ModelCard& card);

// Weights file: magic "MDATTNW1", u32 version, u32 count, then per tensor: u32 name length,
// name, u32 ndim, i64 dims[ndim], float32 little-endian data. Holds every parameter and
// buffer of the module (BatchNorm's num_batches_tracked excepted).
void save_weights(torch::nn::Module& net, const std::string& path);

// Loads `path` into `net`, checking the magic, the version and every tensor's name and shape
// before copying anything. Throws medattn::Error(kModel) naming the file and the problem,
// e.g. "cannot load weights 'm/weights.bin': shape mismatch for 'head.weight' (got [3,64],
// expected [2,64])", "... missing tensor 'blocks.1.attn.qkv.weight'", "... truncated".
void load_weights(torch::nn::Module& net, const std::string& path);

// load_weights for initialising from another network's encoder (train --init): tensors whose
// names start with one of `fresh` (e.g. "head.") are left as they are in `net` and skipped in
// the file; every other tensor must be in both with the same shape, with load_weights' checks
// and messages. Returns how many tensors were copied.
int load_encoder_weights(torch::nn::Module& net, const std::string& path, const std::vector<std::string>& fresh);

// Copies every parameter and buffer of `src` into `dst`. REQUIRES: same architecture.
void copy_weights(torch::nn::Module& dst, torch::nn::Module& src);

struct LoadedModel {
  ModelCard card;
  AttnNet net{nullptr};        // the first (or only) network, in eval() mode
  std::vector<AttnNet> nets;   // every network of the model (an ensemble's members), nets[0] == net
  std::string weights_sha256;  // of weights.bin as loaded
  // "name@" + the first 12 hex digits of the weights' SHA-256 (weights_identity for an
  // ensemble): which model wrote a record.
  std::string id() const { return model_id(card.name, weights_identity(card, weights_sha256)); }
};

// Loads a model directory (model.json + weights.bin, and an ensemble's member files). Throws
// medattn::Error(kModel): missing files, an invalid card, weights whose SHA-256 differs from the
// card's, a truncated file, missing or misshapen tensors.
LoadedModel load_model(const std::string& dir);

// Writes DIR/weights.bin (nets[0]) and, for an ensemble, DIR/member-K.bin for nets[K-1], then
// DIR/model.json atomically, creating DIR; the card records every file's SHA-256.
void save_model(const std::string& dir, const ModelCard& card, const std::vector<AttnNet>& nets);
void save_model(const std::string& dir, const ModelCard& card, AttnNet& net);

}  // namespace medattn::model
