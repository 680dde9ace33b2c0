#include "model/ood_features.h"

#include "core/error.h"

namespace medattn::model {

namespace {

// One eval pass of the network itself (so the features share its batch invariance).
NetOutput eval_pass(AttnNet& net, const torch::Tensor& x, const torch::Tensor& clinical) {
  torch::NoGradGuard no_grad;
  net->eval();
  return net->forward(x, /*keep_attention=*/false, clinical);
}

// The gate's feature of one pass: [B,D] (cls) or [B,2D+sum(stem channels)] (layers).
torch::Tensor feature_of(AttnNet& net, const NetOutput& o, const std::string& kind) {
  if (kind == "cls") return o.tokens.select(1, 0);
  std::vector<torch::Tensor> parts{o.tokens.select(1, 0), o.tokens.slice(1, 1, 1 + net->image_tokens()).mean(1)};
  parts.insert(parts.end(), o.stage_means.begin(), o.stage_means.end());
  return torch::cat(parts, 1);
}

}  // namespace

torch::Tensor cls_features(AttnNet& net, const torch::Tensor& x, const torch::Tensor& clinical) {
  return feature_of(net, eval_pass(net, x, clinical), "cls");  // [B,D]
}

torch::Tensor layer_features(AttnNet& net, const torch::Tensor& x, const torch::Tensor& clinical) {
  return feature_of(net, eval_pass(net, x, clinical), "layers");
}

void check_feature_kind(const std::string& kind) {
  if (kind != "cls" && kind != "layers") {
    throw Error(ErrorKind::kModel, "unknown OOD feature '" + kind + "' (expected cls or layers)");
  }
}

torch::Tensor gate_features(const std::vector<AttnNet>& nets, const torch::Tensor& x, const torch::Tensor& clinical,
                            const std::string& kind, torch::Tensor* logits) {
  TORCH_CHECK(!nets.empty(), "gate_features: no network");
  check_feature_kind(kind);
  std::vector<torch::Tensor> parts;
  torch::Tensor sum;
  for (auto net : nets) {
    const auto o = eval_pass(net, x, clinical);
    parts.push_back(feature_of(net, o, kind));
    sum = sum.defined() ? sum + o.logits : o.logits;
  }
  if (logits != nullptr) *logits = nets.size() == 1 ? sum : sum / static_cast<double>(nets.size());
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
}

int gate_feature_dim(const ModelCard& card, const std::string& kind) {
  int per_net = card.arch.dim;
  if (kind == "layers") {
    per_net = 2 * card.arch.dim;
    for (int c : card.arch.stem_channels) per_net += c;
  }
  return per_net * card.network_count();
}

std::vector<std::vector<double>> gate_feature_rows(const std::vector<AttnNet>& nets, const torch::Tensor& x,
                                                   const torch::Tensor& clinical, const std::string& kind, int batch_size) {
  std::vector<std::vector<double>> rows;
  for (int64_t s = 0; s < x.size(0); s += batch_size) {
    const int64_t e = std::min<int64_t>(x.size(0), s + batch_size);
    auto f = gate_features(nets, x.slice(0, s, e), clinical.defined() ? clinical.slice(0, s, e) : clinical, kind)
                 .to(torch::kFloat64).contiguous();
    for (int64_t i = 0; i < e - s; ++i) {
      const double* p = f[i].data_ptr<double>();
      rows.emplace_back(p, p + f.size(1));
    }
  }
  return rows;
}

std::vector<double> gate_scores(const GaussianStats& stats, const torch::Tensor& features) {
  auto f = features.to(torch::kFloat64).contiguous();
  std::vector<double> out;
  for (int64_t i = 0; i < f.size(0); ++i) {
    const double* p = f[i].data_ptr<double>();
    out.push_back(mahalanobis_score(stats, std::vector<double>(p, p + f.size(1))));
  }
  return out;
}

}  // namespace medattn::model
