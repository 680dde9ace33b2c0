// Test-time views: flips of the input, and the model's logits averaged over them (model/net.h).
#include "model/net.h"

namespace medattn::model {

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

}  // namespace medattn::model
