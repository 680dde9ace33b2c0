// The feature the OOD gate scores (model/ood.h): the CLS token after the final LayerNorm, the
// vector the linear head reads. Includes LibTorch (through model/net.h).
#pragma once

#include <string>
#include <vector>

#include "model/net.h"
#include "model/ood.h"

namespace medattn::model {

// The CLS feature of `net` for x: [B,C,S,S] normalised input, clinical: [B,F] or undefined ->
// [B,D]. The same computation as AttnNetImpl::forward up to the head, so that
// net->head(cls_features(net, x, c)) equals forward(x, false, c).logits. Runs without
// gradients in eval mode.
torch::Tensor cls_features(AttnNet& net, const torch::Tensor& x, const torch::Tensor& clinical = {});

// Several layers at once (after FRODO, Çallı et al. 2021): the CLS feature [B,D], then the mean
// of the image tokens after the final norm [B,D], then the spatial mean of each CNN stem stage's
// output [B,C_1 + ... + C_s]; concatenated in that order.
torch::Tensor layer_features(AttnNet& net, const torch::Tensor& x, const torch::Tensor& clinical = {});

// Feature kinds of the gate (OodGate::feature): "cls" (cls_features) or "layers" (layer_features).
// Throws medattn::Error(kModel) for another name.
void check_feature_kind(const std::string& kind);

// The gate's feature for a model: `kind`'s feature of every network, concatenated
// ([B, dim * nets]). The same passes give the model's plain logits (mean over the networks,
// [B,K]) into *logits when it is not null.
torch::Tensor gate_features(const std::vector<AttnNet>& nets, const torch::Tensor& x, const torch::Tensor& clinical,
                            const std::string& kind, torch::Tensor* logits = nullptr);

// The feature length gate_features gives for `card` and `kind`.
int gate_feature_dim(const ModelCard& card, const std::string& kind);

// gate_features of every row of x in batches, as vectors: [N][dim * nets].
std::vector<std::vector<double>> gate_feature_rows(const std::vector<AttnNet>& nets, const torch::Tensor& x,
                                                   const torch::Tensor& clinical, const std::string& kind, int batch_size);

// Mahalanobis scores of a [B,D] feature tensor.
std::vector<double> gate_scores(const GaussianStats& stats, const torch::Tensor& features);

}  // namespace medattn::model
