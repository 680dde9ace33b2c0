#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "core/error.h"

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

int decide(const std::vector<double>& probabilities, double threshold) {
  if (probabilities.size() == 2 && threshold >= 0.0 && threshold <= 1.0) {
    return probabilities[1] >= threshold ? 1 : 0;
  }
  return argmax(probabilities);
}

namespace {

// The q-quantile of sorted, non-empty `v`, interpolating linearly between neighbours.
double percentile_of_sorted(const std::vector<double>& v, double q) {
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// ECE of top-class confidences and whether each top class was right, in `bins` equal-width bins.
double ece_of(const std::vector<double>& confidence, const std::vector<bool>& right, int bins) {
  std::vector<double> conf_sum(bins, 0.0), correct(bins, 0.0), count(bins, 0.0);
  for (size_t i = 0; i < confidence.size(); ++i) {
    // Bin b holds confidences in (b/bins, (b+1)/bins]; 0 goes to the first bin.
    const int b = std::clamp(static_cast<int>(std::ceil(confidence[i] * bins)) - 1, 0, bins - 1);
    conf_sum[b] += confidence[i];
    correct[b] += right[i] ? 1.0 : 0.0;
    count[b] += 1.0;
  }
  const double n = static_cast<double>(confidence.size());
  double ece = 0;
  for (int b = 0; b < bins; ++b) {
    if (count[b] > 0) ece += count[b] / n * std::abs(correct[b] / count[b] - conf_sum[b] / count[b]);
  }
  return ece;
}

}  // namespace

double expected_calibration_error(const Predictions& p, int bins) {
  std::vector<double> confidence(p.labels.size());
  std::vector<bool> right(p.labels.size());
  for (size_t i = 0; i < p.labels.size(); ++i) {
    const int k = argmax(p.probabilities[i]);
    confidence[i] = p.probabilities[i][k];
    right[i] = k == p.labels[i];
  }
  return ece_of(confidence, right, bins);
}

CalibratedEce ece_if_calibrated(const Predictions& p, int draws, uint64_t seed, int bins) {
  CalibratedEce out;
  const size_t n = p.labels.size();
  if (n == 0 || draws < 1) return out;
  out.draws = draws;
  std::vector<double> confidence(n);
  for (size_t i = 0; i < n; ++i) confidence[i] = *std::max_element(p.probabilities[i].begin(), p.probabilities[i].end());
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> eces(static_cast<size_t>(draws));
  std::vector<bool> right(n);
  for (auto& e : eces) {
    // A calibrated model's top class is right with exactly its confidence.
    for (size_t i = 0; i < n; ++i) right[i] = unit(rng) < confidence[i];
    e = ece_of(confidence, right, bins);
  }
  out.mean = std::accumulate(eces.begin(), eces.end(), 0.0) / draws;
  std::sort(eces.begin(), eces.end());
  out.p95 = percentile_of_sorted(eces, 0.95);
  return out;
}

Metrics compute_metrics(const Predictions& p, double threshold) {
  Metrics m;
  const int K = p.num_classes();
  m.n = static_cast<int>(p.labels.size());
  m.confusion.assign(K, std::vector<int>(K, 0));
  for (size_t i = 0; i < p.labels.size(); ++i) m.confusion[p.labels[i]][decide(p.probabilities[i], threshold)]++;
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
  m.macro_f1 = mean(f1);
  m.auc_per_class = auc;
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

namespace {

// The 2.5th and 97.5th percentiles (linear interpolation) of `v`; NaN when empty.
Interval percentile_interval(std::vector<double> v) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (v.empty()) return {nan, nan};
  std::sort(v.begin(), v.end());
  return {percentile_of_sorted(v, 0.025), percentile_of_sorted(v, 0.975)};
}

}  // namespace

PairedBootstrapResult paired_bootstrap(const Predictions& a, const Predictions& b, int resamples, uint64_t seed,
                                       double threshold_a, double threshold_b) {
  PairedBootstrapResult out;
  out.resamples = resamples;
  const size_t n = a.labels.size();
  if (n == 0 || resamples < 1 || b.labels != a.labels) return out;
  const Metrics ma = compute_metrics(a, threshold_a), mb = compute_metrics(b, threshold_b);
  auto fill = [](PairedDifference& d, double va, double vb) {
    d.a = va;
    d.b = vb;
    d.difference = va - vb;
  };
  fill(out.balanced_accuracy, ma.balanced_accuracy, mb.balanced_accuracy);
  fill(out.macro_f1, ma.macro_f1, mb.macro_f1);
  fill(out.auc, ma.auc, mb.auc);
  fill(out.accuracy, ma.accuracy, mb.accuracy);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> bal, f1, auc, acc;
  Predictions ra, rb;
  for (int r = 0; r < resamples; ++r) {
    ra.labels.clear();
    ra.probabilities.clear();
    rb.probabilities.clear();
    for (size_t j = 0; j < n; ++j) {
      const size_t i = pick(rng);
      ra.labels.push_back(a.labels[i]);
      ra.probabilities.push_back(a.probabilities[i]);
      rb.probabilities.push_back(b.probabilities[i]);
    }
    rb.labels = ra.labels;
    const Metrics x = compute_metrics(ra, threshold_a), y = compute_metrics(rb, threshold_b);
    bal.push_back(x.balanced_accuracy - y.balanced_accuracy);
    f1.push_back(x.macro_f1 - y.macro_f1);
    acc.push_back(x.accuracy - y.accuracy);
    if (!std::isnan(x.auc) && !std::isnan(y.auc)) auc.push_back(x.auc - y.auc);
  }
  out.balanced_accuracy.ci = percentile_interval(bal);
  out.macro_f1.ci = percentile_interval(f1);
  out.auc.ci = percentile_interval(auc);
  out.accuracy.ci = percentile_interval(acc);
  return out;
}

BootstrapResult bootstrap(const Predictions& p, int resamples, uint64_t seed, double threshold) {
  BootstrapResult out;
  out.resamples = resamples;
  const size_t n = p.labels.size();
  if (n == 0 || resamples < 1) return out;
  const int K = p.num_classes();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> aucs, accs;
  std::vector<int> predicted(n);
  for (size_t i = 0; i < n; ++i) predicted[i] = decide(p.probabilities[i], threshold);
  for (int r = 0; r < resamples; ++r) {
    std::vector<size_t> idx(n);
    for (auto& i : idx) i = pick(rng);
    double correct = 0;
    for (size_t i : idx) correct += predicted[i] == p.labels[i];
    accs.push_back(correct / static_cast<double>(n));
    double auc_sum = 0;
    int auc_count = 0;
    for (int k = (K == 2 ? 1 : 0); k < K; ++k) {
      std::vector<double> scores(n);
      std::vector<bool> pos(n);
      for (size_t j = 0; j < n; ++j) {
        scores[j] = p.probabilities[idx[j]][k];
        pos[j] = p.labels[idx[j]] == k;
      }
      const double a = binary_auc(scores, pos);
      if (!std::isnan(a)) {
        auc_sum += a;
        ++auc_count;
      }
    }
    if (auc_count > 0) aucs.push_back(auc_sum / auc_count);
  }
  out.auc = percentile_interval(aucs);
  out.accuracy = percentile_interval(accs);
  return out;
}

std::vector<RocPoint> roc_curve(const Predictions& p, int positive) {
  const size_t n = p.labels.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return p.probabilities[a][positive] > p.probabilities[b][positive];
  });
  double n_pos = 0;
  for (int l : p.labels) n_pos += (l == positive);
  const double n_neg = static_cast<double>(n) - n_pos;
  std::vector<RocPoint> roc{{0.0, 0.0, std::numeric_limits<double>::infinity()}};
  double tp = 0, fp = 0;
  for (size_t i = 0; i < n;) {
    const double score = p.probabilities[order[i]][positive];
    for (; i < n && p.probabilities[order[i]][positive] == score; ++i) {
      (p.labels[order[i]] == positive ? tp : fp) += 1;
    }
    roc.push_back({n_neg > 0 ? fp / n_neg : 0.0, n_pos > 0 ? tp / n_pos : 0.0, score});
  }
  return roc;
}

double choose_threshold(const Predictions& p, const std::string& rule) {
  if (p.num_classes() != 2) {
    throw Error(ErrorKind::kInvalidArgument, "--operating-point needs a model with two classes");
  }
  const auto roc = roc_curve(p, 1);
  if (rule == "balanced") {
    double best = -1, threshold = 0.5;
    for (const auto& pt : roc) {
      if (std::isinf(pt.threshold)) continue;
      const double j = pt.tpr - pt.fpr;
      if (j > best) {
        best = j;
        threshold = pt.threshold;
      }
    }
    return threshold;
  }
  const std::string prefix = "sensitivity=";
  if (rule.rfind(prefix, 0) == 0) {
    char* end = nullptr;
    const double target = std::strtod(rule.c_str() + prefix.size(), &end);
    if (end == nullptr || *end != '\0' || !(target > 0.0 && target <= 1.0)) {
      throw Error(ErrorKind::kInvalidArgument, "--operating-point sensitivity=X needs X in (0,1] (got '" + rule + "')");
    }
    // Points go from high to low thresholds with non-decreasing sensitivity: the first
    // one that reaches the target has the highest threshold.
    for (const auto& pt : roc) {
      if (!std::isinf(pt.threshold) && pt.tpr >= target) return pt.threshold;
    }
    return 0.0;
  }
  throw Error(ErrorKind::kInvalidArgument,
              "unknown operating point '" + rule + "' (expected balanced or sensitivity=X)");
}

Predictions apply_temperature(const std::vector<std::vector<double>>& logits, const std::vector<int>& labels,
                              double temperature) {
  Predictions p;
  p.labels = labels;
  for (const auto& row : logits) {
    const double mx = *std::max_element(row.begin(), row.end());
    std::vector<double> e(row.size());
    double sum = 0;
    for (size_t k = 0; k < row.size(); ++k) sum += (e[k] = std::exp((row[k] - mx) / temperature));
    for (auto& v : e) v /= sum;
    p.probabilities.push_back(std::move(e));
  }
  return p;
}

double fit_temperature(const std::vector<std::vector<double>>& logits, const std::vector<int>& labels) {
  auto nll = [&](double log_t) {
    const double t = std::exp(log_t);
    double total = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      const auto& row = logits[i];
      const double mx = *std::max_element(row.begin(), row.end());
      double sum = 0;
      for (double v : row) sum += std::exp((v - mx) / t);
      total -= (row[labels[i]] - mx) / t - std::log(sum);
    }
    return total;
  };
  double a = std::log(0.05), b = std::log(20.0);
  const double g = (std::sqrt(5.0) - 1) / 2;
  double c = b - g * (b - a), d = a + g * (b - a);
  double fc = nll(c), fd = nll(d);
  for (int it = 0; it < 100 && b - a > 1e-6; ++it) {
    if (fc < fd) {
      b = d; d = c; fd = fc;
      c = b - g * (b - a); fc = nll(c);
    } else {
      a = c; c = d; fc = fd;
      d = a + g * (b - a); fd = nll(d);
    }
  }
  return std::exp((a + b) / 2);
}

}  // namespace medattn::eval
