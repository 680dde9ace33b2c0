// evaluate's abstention figures: coverage and selective metrics on DATA, and the separation of
// DATA from out-of-distribution sets by the gate's score and by the energy of the logits.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "core/text.h"
#include "io/image.h"
#include "io/inputs.h"
#include "model/ood.h"
#include "model/ood_features.h"
#include "pipeline/scope.h"
#include "eval/evaluate_parts.h"

namespace fs = std::filesystem;

namespace medattn::eval {

using train::Tensors;
using train::encode_tensors;
using train::logits_of;
using train::prepare_samples;
using train::unlabelled_dataset;
namespace {

// What diagnose's scope checks say about a dataset sample ("" = in scope).
std::string sample_scope(const io::Sample& s, const model::ModelCard& card) {
  try {
    if (!s.pixels.empty()) {
      io::Image image;
      s.pixels.convertTo(image.pixels, CV_32F);
      image.format = io::FileFormat::kPng;
      image.window = io::window_from_range(0, 255);
      return pipeline::scope_check(image, io::to_display(image), card);
    }
    const io::Image image = io::read_image(s.path);
    return pipeline::scope_check(image, io::to_display(image), card);
  } catch (const std::exception&) {
    return "";  // prepare_samples already left unreadable samples out
  }
}

struct Scored {
  std::vector<double> mahalanobis, energy;
  std::vector<bool> out_of_scope;
};

Scored score(const model::LoadedModel& model, const model::GaussianStats& stats, const Tensors& t,
             const std::vector<bool>& out_of_scope) {
  Scored s;
  s.out_of_scope = out_of_scope;
  const auto views = model::tta_views(model.card.tta);
  for (const auto& f : model::gate_feature_rows(model.nets, t.x, t.c, model.card.ood.feature, 128)) s.mahalanobis.push_back(model::mahalanobis_score(stats, f));
  for (const auto& l : logits_of(model.nets, t.x, 128, t.c, views)) s.energy.push_back(model::energy_score(l));
  return s;
}

OodSetMetrics separation(const Scored& in, const Scored& out, double threshold, const std::string& name) {
  OodSetMetrics m;
  m.data = name;
  m.n = static_cast<int>(out.mahalanobis.size());
  m.auroc = model::ood_auroc(in.mahalanobis, out.mahalanobis);
  m.fpr95 = model::ood_fpr_at_95_tpr(in.mahalanobis, out.mahalanobis);
  m.auroc_energy = model::ood_auroc(in.energy, out.energy);
  m.fpr95_energy = model::ood_fpr_at_95_tpr(in.energy, out.energy);
  int refused = 0;
  for (int i = 0; i < m.n; ++i) refused += out.out_of_scope[i] || out.mahalanobis[i] > threshold ? 1 : 0;
  m.abstention = m.n > 0 ? static_cast<double>(refused) / m.n : 0.0;
  return m;
}

// An OOD set as a dataset: npz or CSV through load_dataset, anything else as image files.
io::Dataset ood_dataset(const std::string& spec, int limit, const NoticeCallback& on_notice) {
  io::Dataset data = unlabelled_dataset(spec, "", limit, "cannot read --ood", "--ood " + spec, on_notice);
  data.classes = {"ood"};
  return data;
}

}  // namespace

GateMetrics evaluate_gate(const model::LoadedModel& model, const Tensors& t, const io::Dataset& data,
                          const eval::Predictions& predictions, const EvaluateOptions& options,
                          const NoticeCallback& on_notice) {
  const auto& card = model.card;
  const auto stats = model::load_gate(options.model_dir, card, model::gate_feature_dim(card, card.ood.feature));
  GateMetrics g;
  g.enabled = true;
  g.n = static_cast<int>(t.size());
  std::vector<bool> scope(g.n);
  for (int i = 0; i < g.n; ++i) scope[i] = !sample_scope(data.samples[t.index[i]], card).empty();
  const Scored in = score(model, stats, t, scope);
  eval::Predictions covered;
  std::vector<std::pair<double, bool>> ranked;  // (score, correct)
  for (int i = 0; i < g.n; ++i) {
    const bool correct = eval::decide(predictions.probabilities[i], card.threshold) == predictions.labels[i];
    ranked.emplace_back(scope[i] ? std::numeric_limits<double>::infinity() : in.mahalanobis[i], correct);
    if (scope[i]) {
      ++g.scope_abstained;
    } else if (in.mahalanobis[i] > card.ood.threshold) {
      ++g.gate_abstained;
    } else {
      covered.probabilities.push_back(predictions.probabilities[i]);
      covered.labels.push_back(predictions.labels[i]);
    }
  }
  g.coverage = static_cast<double>(covered.labels.size()) / std::max(1, g.n);
  if (!covered.labels.empty()) {
    const auto m = eval::compute_metrics(covered, card.threshold);
    g.selective_accuracy = m.accuracy;
    g.selective_auc = m.auc;
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double errors = 0, area = 0;
  for (size_t k = 0; k < ranked.size(); ++k) {
    errors += ranked[k].second ? 0 : 1;
    area += errors / static_cast<double>(k + 1);
  }
  g.aurc = ranked.empty() ? 0 : area / static_cast<double>(ranked.size());

  Scored all_out;
  for (const auto& spec : options.ood_data) {
    const io::Dataset ood = ood_dataset(spec, options.ood_limit, on_notice);
    Tensors o = prepare_samples(ood, card.preprocess, on_notice);
    if (o.size() == 0) throw file_error(ErrorKind::kInvalidArgument, "cannot read --ood", spec, "no readable images");
    if (!card.clinical.empty()) encode_tensors(o, ood, card.clinical);  // no covariates: all missing
    std::vector<bool> out_scope(o.size());
    for (int64_t i = 0; i < o.size(); ++i) out_scope[i] = !sample_scope(ood.samples[o.index[i]], card).empty();
    const Scored out = score(model, stats, o, out_scope);
    g.ood.push_back(separation(in, out, card.ood.threshold, spec));
    all_out.mahalanobis.insert(all_out.mahalanobis.end(), out.mahalanobis.begin(), out.mahalanobis.end());
    all_out.energy.insert(all_out.energy.end(), out.energy.begin(), out.energy.end());
    all_out.out_of_scope.insert(all_out.out_of_scope.end(), out.out_of_scope.begin(), out.out_of_scope.end());
  }
  if (!options.ood_data.empty()) g.pooled = separation(in, all_out, card.ood.threshold, "all");
  return g;
}

}  // namespace medattn::eval
