#include "explain/faithfulness.h"

#include <algorithm>
#include <numeric>

#include "model/net.h"

namespace medattn::explain {
namespace {

std::vector<double> average_ranks(const std::vector<float>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double r = (static_cast<double>(i) + static_cast<double>(j)) / 2.0;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}

// Pixel indices of a [S,S] map from most to least relevant (ties: row-major order).
std::vector<int64_t> relevance_order(const torch::Tensor& map) {
  auto flat = map.contiguous().view({-1});
  const float* p = flat.data_ptr<float>();
  std::vector<int64_t> order(flat.numel());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
  return order;
}

// Re-initialises every Linear, Conv2d, LayerNorm and BatchNorm2d inside `m`.
void reinitialise(torch::nn::Module& m) {
  for (auto& child : m.modules(/*include_self=*/true)) {
    if (auto* l = child->as<torch::nn::LinearImpl>()) l->reset_parameters();
    if (auto* c = child->as<torch::nn::Conv2dImpl>()) c->reset_parameters();
    if (auto* n = child->as<torch::nn::LayerNormImpl>()) n->reset_parameters();
    if (auto* b = child->as<torch::nn::BatchNorm2dImpl>()) b->reset_parameters(), b->reset_running_stats();
  }
}

// Mean over the batch of the per-image Spearman correlation of two [B,S,S] map stacks.
double mean_spearman(const torch::Tensor& p, const torch::Tensor& q) {
  double sum = 0;
  for (int64_t b = 0; b < p.size(0); ++b) {
    auto a = p[b].contiguous(), c = q[b].contiguous();
    sum += spearman(std::vector<float>(a.data_ptr<float>(), a.data_ptr<float>() + a.numel()),
                    std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel()));
  }
  return sum / static_cast<double>(std::max<int64_t>(1, p.size(0)));
}

}  // namespace

bool pointing_game_hit(const cv::Mat& map, const cv::Mat& mask) {
  CV_Assert(map.type() == CV_32FC1 && mask.type() == CV_8UC1 && map.size() == mask.size());
  int best_y = 0, best_x = 0;
  float best = -std::numeric_limits<float>::infinity();
  for (int y = 0; y < map.rows; ++y) {
    const float* row = map.ptr<float>(y);
    for (int x = 0; x < map.cols; ++x) {
      if (row[x] > best) {
        best = row[x];
        best_y = y;
        best_x = x;
      }
    }
  }
  return mask.at<uint8_t>(best_y, best_x) != 0;
}

double heatmap_iou(const cv::Mat& map, const cv::Mat& mask) {
  CV_Assert(map.type() == CV_32FC1 && mask.type() == CV_8UC1 && map.size() == mask.size());
  CV_Assert(map.isContinuous() && mask.isContinuous());
  const int n = map.rows * map.cols;
  const float* m = map.ptr<float>();
  const uint8_t* k = mask.ptr<uint8_t>();
  const int area = cv::countNonZero(mask);
  if (area == 0) return 0.0;
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return m[a] > m[b]; });
  int inter = 0;
  for (int i = 0; i < area; ++i) inter += k[order[i]] != 0;
  return static_cast<double>(inter) / static_cast<double>(2 * area - inter);
}

double trapezoid_auc(const std::vector<double>& ys) {
  if (ys.size() < 2) return ys.empty() ? 0.0 : ys[0];
  double sum = 0;
  for (size_t i = 1; i < ys.size(); ++i) sum += (ys[i - 1] + ys[i]) / 2.0;
  return sum / static_cast<double>(ys.size() - 1);
}

double spearman(const std::vector<float>& a, const std::vector<float>& b) {
  const auto ra = average_ranks(a), rb = average_ranks(b);
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n;
  const double mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return (saa > 0 && sbb > 0) ? sab / std::sqrt(saa * sbb) : 0.0;
}

std::vector<DeletionInsertion> deletion_insertion(model::AttnNet& net, const torch::Tensor& x,
                                                  const torch::Tensor& maps, const std::vector<int>& targets,
                                                  double temperature, int steps, const torch::Tensor& clinical) {
  return deletion_insertion(std::vector<model::AttnNet>{net}, x, maps, targets, temperature, steps, clinical);
}

std::vector<DeletionInsertion> deletion_insertion(const std::vector<model::AttnNet>& nets, const torch::Tensor& x,
                                                  const torch::Tensor& maps, const std::vector<int>& targets,
                                                  double temperature, int steps, const torch::Tensor& clinical) {
  torch::NoGradGuard no_grad;
  const auto B = x.size(0);
  const auto C = x.size(1);
  const auto S = x.size(2);
  const int64_t n = S * S;
  auto baseline = blurred_baseline(x);
  std::vector<DeletionInsertion> out(B);
  for (int64_t b = 0; b < B; ++b) {
    const auto order = relevance_order(maps[b]);
    auto original = x[b].reshape({C, n});
    auto blur = baseline[b].reshape({C, n});
    // Rows 0..steps: deletion after i/steps of the pixels (all channels of each); rows
    // steps+1..: insertion.
    auto batch = torch::empty({2 * (steps + 1), C, n});
    auto order_t = torch::tensor(order, torch::kInt64);
    for (int i = 0; i <= steps; ++i) {
      const int64_t k = n * i / steps;
      auto idx = order_t.narrow(0, 0, k);
      auto del = original.clone();
      auto ins = blur.clone();
      if (k > 0) {
        del.index_copy_(1, idx, blur.index_select(1, idx));
        ins.index_copy_(1, idx, original.index_select(1, idx));
      }
      batch[i] = del;
      batch[steps + 1 + i] = ins;
    }
    torch::Tensor cb;
    if (clinical.defined()) cb = clinical[b].unsqueeze(0).expand({batch.size(0), -1});
    auto probs = torch::softmax(model::view_logits(nets, batch.view({-1, C, S, S}), cb, {}).to(torch::kFloat64) / temperature, 1)
                     .select(1, targets[b]);
    std::vector<double> del(steps + 1), ins(steps + 1);
    for (int i = 0; i <= steps; ++i) {
      del[i] = probs[i].item<double>();
      ins[i] = probs[steps + 1 + i].item<double>();
    }
    out[b] = {trapezoid_auc(del), trapezoid_auc(ins)};
  }
  return out;
}

std::vector<RandomizationStep> randomization_check(const model::ModelCard& card, model::AttnNet& net,
                                                   const torch::Tensor& x, const ExplainOptions& options,
                                                   uint64_t seed, int draws, const torch::Tensor& clinical) {
  const auto original = explain(net, x, options, {}, clinical);
  std::vector<RandomizationStep> steps;
  for (int d = 0; d < draws; ++d) {
    auto copy = model::build_net(card);
    model::copy_weights(*copy, *net);
    torch::manual_seed(seed + static_cast<uint64_t>(d));
    // Top-down: the head first, the first CNN stage last.
    std::vector<std::pair<std::string, std::function<void()>>> layers;
    layers.emplace_back("head", [&] { reinitialise(*copy->head); });
    layers.emplace_back("norm", [&] { reinitialise(*copy->norm); });
    for (int64_t l = static_cast<int64_t>(copy->blocks->size()) - 1; l >= 0; --l) {
      // A block and, with cross fusion, the cross-attention layer after it.
      layers.emplace_back("blocks." + std::to_string(l), [&, l] {
        reinitialise(*copy->blocks[l]);
        if (copy->cross_fusion()) reinitialise(*copy->cross[l]);
      });
    }
    layers.emplace_back("proj", [&] {
      reinitialise(*copy->proj);
      torch::NoGradGuard no_grad;
      copy->pos_embed.normal_(0, 0.02);
      copy->cls_token.normal_(0, 0.02);
    });
    const int64_t stages = static_cast<int64_t>(card.arch.stem_channels.size());
    for (int64_t s = stages - 1; s >= 0; --s) {
      layers.emplace_back("stem." + std::to_string(s), [&, s] {
        for (int64_t i = s * 6; i < (s + 1) * 6; ++i) reinitialise(*copy->stem[i]);
      });
    }
    for (size_t i = 0; i < layers.size(); ++i) {
      layers[i].second();
      // Same targets as the original maps, so only the weights differ.
      const auto now = explain(copy, x, options, original.targets, clinical);
      const double r = mean_spearman(original.maps, now.maps) / draws;
      if (d == 0) {
        steps.push_back({layers[i].first, r});
      } else {
        steps[i].spearman += r;
      }
    }
  }
  return steps;
}

double randomization_floor(const model::ModelCard& card, model::AttnNet& net, const torch::Tensor& x,
                           const ExplainOptions& options, uint64_t seed, int draws, const torch::Tensor& clinical) {
  const auto targets = explain(net, x, options, {}, clinical).targets;
  double sum = 0;
  for (int d = 0; d < draws; ++d) {
    torch::manual_seed(seed + 1000 + static_cast<uint64_t>(d));
    auto a = model::build_net(card);
    torch::manual_seed(seed + 2000 + static_cast<uint64_t>(d));
    auto b = model::build_net(card);
    sum += mean_spearman(explain(a, x, options, targets, clinical).maps, explain(b, x, options, targets, clinical).maps);
  }
  return sum / draws;
}

}  // namespace medattn::explain
