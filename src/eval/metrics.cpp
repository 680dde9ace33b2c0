#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace medattn::eval {

double binary_auc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mid-ranks for ties, then the Mann-Whitney U statistic.
  double rank_sum = 0;
  size_t n_pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && scores[order[j + 1]] == scores[order[i]]) ++j;
    const double mid_rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) {
      if (positive[order[k]]) {
        rank_sum += mid_rank;
        ++n_pos;
      }
    }
    i = j + 1;
  }
  const size_t n_neg = n - n_pos;
  if (n_pos == 0 || n_neg == 0) return std::numeric_limits<double>::quiet_NaN();
  const double u = rank_sum - static_cast<double>(n_pos) * (n_pos + 1) / 2.0;
  return u / (static_cast<double>(n_pos) * static_cast<double>(n_neg));
}

namespace {

int argmax(const std::vector<double>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

double expected_calibration_error(const Predictions& p, int bins) {
  std::vector<double> conf_sum(bins, 0.0), correct(bins, 0.0), count(bins, 0.0);
  for (size_t i = 0; i < p.labels.size(); ++i) {
    const int k = argmax(p.probabilities[i]);
    const double conf = p.probabilities[i][k];
    // Bin b holds confidences in (b/bins, (b+1)/bins]; 0 goes to the first bin.
    int b = static_cast<int>(std::ceil(conf * bins)) - 1;
    b = std::clamp(b, 0, bins - 1);
    conf_sum[b] += conf;
    correct[b] += (k == p.labels[i]) ? 1.0 : 0.0;
    count[b] += 1.0;
  }
  const double n = static_cast<double>(p.labels.size());
  double ece = 0;
  for (int b = 0; b < bins; ++b) {
    if (count[b] > 0) ece += count[b] / n * std::abs(correct[b] / count[b] - conf_sum[b] / count[b]);
  }
  return ece;
}

Metrics compute_metrics(const Predictions& p) {
  Metrics m;
  const int K = p.num_classes();
  m.n = static_cast<int>(p.labels.size());
  m.confusion.assign(K, std::vector<int>(K, 0));
  for (size_t i = 0; i < p.labels.size(); ++i) m.confusion[p.labels[i]][argmax(p.probabilities[i])]++;
  int correct = 0;
  for (int k = 0; k < K; ++k) correct += m.confusion[k][k];
  m.accuracy = m.n ? static_cast<double>(correct) / m.n : 0.0;

  std::vector<double> specificity(K), f1(K), auc(K);
  m.precision.assign(K, 0.0);
  m.recall.assign(K, 0.0);
  for (int k = 0; k < K; ++k) {
    double tp = m.confusion[k][k], fn = 0, fp = 0;
    for (int j = 0; j < K; ++j) {
      if (j == k) continue;
      fn += m.confusion[k][j];
      fp += m.confusion[j][k];
    }
    const double tn = m.n - tp - fn - fp;
    m.recall[k] = (tp + fn) > 0 ? tp / (tp + fn) : 0.0;
    m.precision[k] = (tp + fp) > 0 ? tp / (tp + fp) : 0.0;
    specificity[k] = (tn + fp) > 0 ? tn / (tn + fp) : 0.0;
    f1[k] = (m.precision[k] + m.recall[k]) > 0 ? 2 * m.precision[k] * m.recall[k] / (m.precision[k] + m.recall[k]) : 0.0;
    std::vector<double> scores(m.n);
    std::vector<bool> pos(m.n);
    for (int i = 0; i < m.n; ++i) {
      scores[i] = p.probabilities[i][k];
      pos[i] = p.labels[i] == k;
    }
    auc[k] = binary_auc(scores, pos);
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    int c = 0;
    for (double x : v) if (!std::isnan(x)) { s += x; ++c; }
    return c ? s / c : std::numeric_limits<double>::quiet_NaN();
  };
  m.balanced_accuracy = mean(m.recall);
  if (K == 2) {
    m.auc = auc[1];
    m.sensitivity = m.recall[1];
    m.specificity = m.recall[0];
    m.f1 = f1[1];
  } else {
    m.auc = mean(auc);
    m.sensitivity = mean(m.recall);
    m.specificity = mean(specificity);
    m.f1 = mean(f1);
  }
  m.ece = m.n ? expected_calibration_error(p) : 0.0;
  return m;
}

nlohmann::json metrics_to_json(const Metrics& m, const std::vector<std::string>& classes) {
  auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(std::round(v * 1e6) / 1e6); };
  nlohmann::json j;
  j["n"] = m.n;
  j["classes"] = classes;
  j["accuracy"] = num(m.accuracy);
  j["balanced_accuracy"] = num(m.balanced_accuracy);
  j["auc"] = num(m.auc);
  j["sensitivity"] = num(m.sensitivity);
  j["specificity"] = num(m.specificity);
  j["f1"] = num(m.f1);
  j["ece"] = num(m.ece);
  j["confusion"] = m.confusion;
  nlohmann::json per = nlohmann::json::object();
  for (size_t k = 0; k < classes.size() && k < m.recall.size(); ++k) {
    per[classes[k]] = {{"precision", num(m.precision[k])}, {"recall", num(m.recall[k])}};
  }
  j["per_class"] = per;
  return j;
}

}  // namespace medattn::eval
