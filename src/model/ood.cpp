#include "model/ood.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <opencv2/core.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/bounded_io.h"
#include "core/sha256.h"

namespace medattn::model {
namespace {

constexpr char kMagic[8] = {'M', 'D', 'A', 'T', 'T', 'N', 'O', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxDim = 16384, kMaxClasses = 10000;

Error bad_input(const std::string& why) { return Error(ErrorKind::kInvalidArgument, "cannot fit the OOD gate: " + why); }

template <typename T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace

GaussianStats fit_gaussians(const std::vector<std::vector<double>>& features, const std::vector<int>& labels, int classes,
                            double shrinkage) {
  if (features.empty()) throw bad_input("no features");
  if (features.size() != labels.size()) throw bad_input("features and labels differ in number");
  if (classes < 1) throw bad_input("no classes");
  if (!(shrinkage >= 0 && shrinkage < 1)) throw bad_input("shrinkage must be in [0, 1)");
  const int D = static_cast<int>(features[0].size());
  if (D < 1) throw bad_input("empty features");
  GaussianStats s;
  s.classes = classes;
  s.dim = D;
  s.shrinkage = shrinkage;
  s.means.assign(static_cast<size_t>(classes) * D, 0.0);
  std::vector<int> count(classes, 0);
  for (size_t i = 0; i < features.size(); ++i) {
    if (static_cast<int>(features[i].size()) != D) throw bad_input("features of different lengths");
    if (labels[i] < 0 || labels[i] >= classes) throw bad_input("label " + std::to_string(labels[i]) + " out of range");
    ++count[labels[i]];
    for (int d = 0; d < D; ++d) s.means[static_cast<size_t>(labels[i]) * D + d] += features[i][d];
  }
  for (int k = 0; k < classes; ++k) {
    if (count[k] == 0) throw bad_input("class " + std::to_string(k) + " has no sample");
    for (int d = 0; d < D; ++d) s.means[static_cast<size_t>(k) * D + d] /= count[k];
  }
  cv::Mat cov = cv::Mat::zeros(D, D, CV_64F);
  cv::Mat centred(1, D, CV_64F);
  for (size_t i = 0; i < features.size(); ++i) {
    double* c = centred.ptr<double>();
    for (int d = 0; d < D; ++d) c[d] = features[i][d] - s.means[static_cast<size_t>(labels[i]) * D + d];
    cov += centred.t() * centred;
  }
  cov /= static_cast<double>(features.size());
  // Towards the diagonal, so that the score stays invariant to each dimension's scale (the
  // layers of a "layers" feature differ in scale by orders of magnitude).
  cov = (1.0 - shrinkage) * cov + shrinkage * cv::Mat::diag(cov.diag());
  cv::Mat precision;
  const double ok = cv::invert(cov, precision, cv::DECOMP_CHOLESKY);
  if (ok == 0) throw bad_input("the covariance is singular (use a positive shrinkage)");
  s.precision.assign(precision.ptr<double>(), precision.ptr<double>() + static_cast<size_t>(D) * D);
  return s;
}

double mahalanobis_score(const GaussianStats& s, const std::vector<double>& f) {
  const int D = s.dim;
  double best = std::numeric_limits<double>::infinity();
  std::vector<double> c(D);
  for (int k = 0; k < s.classes; ++k) {
    for (int d = 0; d < D; ++d) c[d] = f[d] - s.means[static_cast<size_t>(k) * D + d];
    // c' P c, row by row. Four rows at a time: each row's sum still runs over d in order (so
    // the bits are those of one row at a time), but four independent sums keep the core busy.
    double q = 0;
    int r = 0;
    for (; r + 4 <= D; r += 4) {
      const double* r0 = &s.precision[static_cast<size_t>(r) * D];
      const double *r1 = r0 + D, *r2 = r1 + D, *r3 = r2 + D;
      double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (int d = 0; d < D; ++d) {
        a0 += r0[d] * c[d];
        a1 += r1[d] * c[d];
        a2 += r2[d] * c[d];
        a3 += r3[d] * c[d];
      }
      q += c[r] * a0;
      q += c[r + 1] * a1;
      q += c[r + 2] * a2;
      q += c[r + 3] * a3;
    }
    for (; r < D; ++r) {
      const double* row = &s.precision[static_cast<size_t>(r) * D];
      double acc = 0;
      for (int d = 0; d < D; ++d) acc += row[d] * c[d];
      q += c[r] * acc;
    }
    best = std::min(best, q);
  }
  return std::sqrt(std::max(0.0, best));
}

double energy_score(const std::vector<double>& logits, double temperature) {
  double hi = -std::numeric_limits<double>::infinity();
  for (double l : logits) hi = std::max(hi, l / temperature);
  double sum = 0;
  for (double l : logits) sum += std::exp(l / temperature - hi);
  return -temperature * (hi + std::log(sum));
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

double ood_auroc(const std::vector<double>& in, const std::vector<double>& out) {
  if (in.empty() || out.empty()) return std::nan("");
  std::vector<double> sorted_in = in;
  std::sort(sorted_in.begin(), sorted_in.end());
  double wins = 0;
  for (double o : out) {
    const auto lo = std::lower_bound(sorted_in.begin(), sorted_in.end(), o);
    const auto hi = std::upper_bound(sorted_in.begin(), sorted_in.end(), o);
    wins += static_cast<double>(lo - sorted_in.begin()) + 0.5 * static_cast<double>(hi - lo);
  }
  return wins / (static_cast<double>(in.size()) * static_cast<double>(out.size()));
}

double ood_fpr_at_95_tpr(const std::vector<double>& in, const std::vector<double>& out) {
  if (in.empty() || out.empty()) return std::nan("");
  std::vector<double> o = out;
  std::sort(o.begin(), o.end());
  // The highest threshold t with at least 95% of the OOD scores >= t.
  const size_t keep = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(o.size())));
  const double t = o[o.size() - keep];
  size_t above = 0;
  for (double s : in) above += s >= t ? 1 : 0;
  return static_cast<double>(above) / static_cast<double>(in.size());
}

void save_gaussians(const std::string& path, const GaussianStats& s) {
  std::string out(kMagic, sizeof(kMagic));
  put(out, kVersion);
  put(out, static_cast<uint32_t>(s.classes));
  put(out, static_cast<uint32_t>(s.dim));
  put(out, s.shrinkage);
  out.append(reinterpret_cast<const char*>(s.means.data()), s.means.size() * sizeof(double));
  out.append(reinterpret_cast<const char*>(s.precision.data()), s.precision.size() * sizeof(double));
  write_file_atomic(path, out);
}

GaussianStats load_gaussians(const std::string& path) {
  auto fail = [&](const std::string& why) { return file_error(ErrorKind::kModel, "cannot load OOD statistics", path, why); };
  std::string bytes;
  try {
    bytes = read_file_bounded(path, ErrorKind::kModel, "cannot load OOD statistics", kMaxOodBytes);
  } catch (const Error& e) {
    if (std::filesystem::exists(path)) throw;
    throw fail("cannot read the file");
  }
  const size_t header = sizeof(kMagic) + 3 * sizeof(uint32_t) + sizeof(double);
  if (bytes.size() < header) throw fail("truncated (" + std::to_string(bytes.size()) + " bytes)");
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) throw fail("not a medattn OOD file (bad magic)");
  uint32_t version, classes, dim;
  double shrinkage;
  size_t at = sizeof(kMagic);
  std::memcpy(&version, bytes.data() + at, 4), at += 4;
  std::memcpy(&classes, bytes.data() + at, 4), at += 4;
  std::memcpy(&dim, bytes.data() + at, 4), at += 4;
  std::memcpy(&shrinkage, bytes.data() + at, 8), at += 8;
  if (version != kVersion) throw fail("version " + std::to_string(version) + " is not supported (expected 1)");
  if (classes < 1 || classes > kMaxClasses || dim < 1 || dim > kMaxDim) {
    throw fail("sizes out of bounds (" + std::to_string(classes) + " classes, dimension " + std::to_string(dim) + ")");
  }
  const size_t need = (static_cast<size_t>(classes) * dim + static_cast<size_t>(dim) * dim) * sizeof(double);
  if (bytes.size() - at < need) throw fail("truncated");
  if (bytes.size() - at > need) throw fail(std::to_string(bytes.size() - at - need) + " trailing bytes");
  GaussianStats s;
  s.classes = static_cast<int>(classes);
  s.dim = static_cast<int>(dim);
  s.shrinkage = shrinkage;
  s.means.resize(static_cast<size_t>(classes) * dim);
  s.precision.resize(static_cast<size_t>(dim) * dim);
  std::memcpy(s.means.data(), bytes.data() + at, s.means.size() * sizeof(double));
  at += s.means.size() * sizeof(double);
  std::memcpy(s.precision.data(), bytes.data() + at, s.precision.size() * sizeof(double));
  for (double v : s.means) if (!std::isfinite(v)) throw fail("non-finite mean");
  for (double v : s.precision) if (!std::isfinite(v)) throw fail("non-finite precision");
  return s;
}

GaussianStats load_gate(const std::string& dir, const ModelCard& card, int feature_dim) {
  auto fail = [&](const std::string& why) { return file_error(ErrorKind::kModel, "cannot load model", dir, why); };
  const std::string path = (std::filesystem::path(dir) / card.ood.file).string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw fail("missing " + card.ood.file + " (the card's ood.file)");
  require_regular_file(path, ErrorKind::kModel, "cannot load model", kMaxOodBytes);
  const std::string sha = sha256_file(path);
  if (sha != card.ood.sha256) {
    throw fail(card.ood.file + " does not match the card's SHA-256 (got " + sha.substr(0, 16) + "..., expected " +
               card.ood.sha256.substr(0, 16) + "...): corrupt or replaced");
  }
  GaussianStats s = load_gaussians(path);
  if (s.classes != static_cast<int>(card.classes.size()) || s.dim != feature_dim) {
    throw fail(card.ood.file + " has " + std::to_string(s.classes) + " classes of dimension " + std::to_string(s.dim) +
               " (expected " + std::to_string(card.classes.size()) + " of " + std::to_string(feature_dim) + ")");
  }
  return s;
}

std::string gate_reason(const OodGate& gate, double score) {
  char buf[200];
  std::snprintf(buf, sizeof(buf), "out of distribution: Mahalanobis score %.2f above the threshold %.2f (%gth percentile of validation)",
                score, gate.threshold, gate.percentile);
  return buf;
}

}  // namespace medattn::model
