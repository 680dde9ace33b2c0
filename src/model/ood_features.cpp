#include "model/ood_features.h"

#include <limits>

#include "core/error.h"

namespace medattn::model {

namespace {

// The final normalised token sequence [B,T,D]; *stages (when not null) gets the spatial mean of
// each stem stage's output.
torch::Tensor final_tokens(AttnNet& net, const torch::Tensor& x, const torch::Tensor& clinical,
                           std::vector<torch::Tensor>* stages) {
  torch::NoGradGuard no_grad;
  net->eval();
  auto& n = *net;
  torch::Tensor map = x;
  int index = 0;
  for (auto& m : *n.stem) {
    map = m.forward(map);
    // Six modules per stage: conv, BN, GELU, conv, BN, GELU (AttnNetImpl's constructor).
    if (++index % 6 == 0 && stages != nullptr) stages->push_back(map.mean({2, 3}));
  }
  auto tokens = n.proj(map).flatten(2).transpose(1, 2);  // [B,g*g,D]
  auto h = torch::cat({n.cls_token.expand({x.size(0), -1, -1}), tokens}, 1) + n.pos_embed;
  torch::Tensor context;
  if (n.clinical_count() > 0) {
    auto values = clinical.defined() ? clinical.to(torch::kFloat32)
                                     : torch::full({x.size(0), n.clinical_count()}, std::numeric_limits<float>::quiet_NaN());
    context = n.clinical_tokens->forward(values);
    if (!n.cross_fusion()) h = torch::cat({h, context}, 1);
  }
  for (size_t l = 0; l < n.blocks->size(); ++l) {
    h = n.blocks[l]->as<BlockImpl>()->forward(h);
    if (n.cross_fusion()) h = n.cross[l]->as<CrossBlockImpl>()->forward(h, context);
  }
  return n.norm(h);
}

}  // namespace

torch::Tensor cls_features(AttnNet& net, const torch::Tensor& x, const torch::Tensor& clinical) {
  return final_tokens(net, x, clinical, nullptr).select(1, 0);  // [B,D]
}

torch::Tensor layer_features(AttnNet& net, const torch::Tensor& x, const torch::Tensor& clinical) {
  std::vector<torch::Tensor> parts;
  const auto h = final_tokens(net, x, clinical, &parts);
  const auto image = h.slice(1, 1, 1 + net->image_tokens()).mean(1);  // [B,D]
  parts.insert(parts.begin(), {h.select(1, 0), image});
  return torch::cat(parts, 1);
}

void check_feature_kind(const std::string& kind) {
  if (kind != "cls" && kind != "layers") {
    throw Error(ErrorKind::kModel, "unknown OOD feature '" + kind + "' (expected cls or layers)");
  }
}

torch::Tensor gate_features(const std::vector<AttnNet>& nets, const torch::Tensor& x, const torch::Tensor& clinical,
                            const std::string& kind) {
  TORCH_CHECK(!nets.empty(), "gate_features: no network");
  check_feature_kind(kind);
  std::vector<torch::Tensor> parts;
  for (auto net : nets) parts.push_back(kind == "cls" ? cls_features(net, x, clinical) : layer_features(net, x, clinical));
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
