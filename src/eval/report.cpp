#include "eval/report.h"

#include "eval/shift_card.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "core/error.h"
#include "eval/model_checks.h"
#include "explain/overlay.h"

namespace medattn::eval {
namespace {

double round4(double v) { return std::round(v * 1e4) / 1e4; }

// printf into a string.
void appendf(std::string& out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n > 0) {
    std::string buffer(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(buffer.data(), buffer.size(), format, args);
    out.append(buffer.data(), static_cast<size_t>(n));
  }
  va_end(args);
}

std::string decision_of(const EvaluateResult& r) {
  return r.threshold >= 0 ? "threshold " + std::to_string(r.threshold) + " on " + r.classes[1] : "argmax";
}

}  // namespace

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
  j["macro_f1"] = num(m.macro_f1);
  j["ece"] = num(m.ece);
  j["confusion"] = m.confusion;
  nlohmann::json per = nlohmann::json::object();
  for (size_t k = 0; k < classes.size() && k < m.recall.size(); ++k) {
    int n = 0;
    for (int v : m.confusion[k]) n += v;
    per[classes[k]] = {{"precision", num(m.precision[k])}, {"recall", num(m.recall[k])}, {"n", n}};
    if (k < m.auc_per_class.size()) per[classes[k]]["auc"] = num(m.auc_per_class[k]);
  }
  j["per_class"] = per;
  return j;
}

nlohmann::json calibrated_ece_to_json(const CalibratedEce& chance) {
  return {{"mean", round4(chance.mean)}, {"p95", round4(chance.p95)}};
}

Comparison compare_with(const EvaluateResult& r, const EvaluateResult& other, const std::string& other_model) {
  if (other.predictions.labels != r.predictions.labels) {
    throw Error(ErrorKind::kInvalidArgument,
                "--compare " + other_model + ": the two models did not read the same samples, so they cannot be paired");
  }
  Comparison c;
  c.other_model = other_model;
  c.paired = paired_bootstrap(r.predictions, other.predictions, 1000, /*seed=*/1, r.threshold, other.threshold);
  return c;
}

EvaluateReport make_report(EvaluateResult result, const EvaluateOptions& options, std::optional<Comparison> comparison) {
  EvaluateReport report;
  report.ci = bootstrap(result.predictions, 1000, /*seed=*/1, result.threshold);
  report.chance = ece_if_calibrated(result.predictions);
  report.result = std::move(result);
  report.comparison = std::move(comparison);
  report.class_map = options.class_map;
  report.masks = !options.masks.empty();
  return report;
}

nlohmann::json report_json(const EvaluateReport& report) {
  const auto& r = report.result;
  const auto& ci = report.ci;
  auto j = metrics_to_json(r.metrics, r.classes);
  j["auc_ci95"] = {round4(ci.auc.low), round4(ci.auc.high)};
  j["accuracy_ci95"] = {round4(ci.accuracy.low), round4(ci.accuracy.high)};
  j["ece_if_calibrated"] = calibrated_ece_to_json(report.chance);
  j["decision"] = decision_of(r);
  j["tta"] = r.tta;
  if (r.classes.size() == 2) j["positive_class"] = r.classes[1];
  if (!report.class_map.empty()) j["model_classes"] = r.model_classes;
  j["warnings"] = r.warnings;
  if (r.skipped > 0) j["skipped"] = r.skipped;
  if (!r.clinical_attention.empty()) {
    nlohmann::json att = nlohmann::json::object(), ablation = nlohmann::json::object();
    for (const auto& [name, share] : r.clinical_attention) att[name] = round4(share);
    for (const auto& [name, mm] : r.clinical_ablation) {
      ablation[name] = {{"balanced_accuracy", round4(mm.balanced_accuracy)}, {"macro_f1", round4(mm.macro_f1)},
                        {"auc", round4(mm.auc)}, {"accuracy", round4(mm.accuracy)}};
    }
    j["clinical_attention"] = att;
    j["clinical_hidden"] = ablation;
  }
  if (report.comparison) {
    const auto& cmp = report.comparison->paired;
    auto entry = [&](const PairedDifference& d) {
      return nlohmann::json{{"this", round4(d.a)}, {"other", round4(d.b)}, {"difference", round4(d.difference)},
                            {"difference_ci95", {round4(d.ci.low), round4(d.ci.high)}}};
    };
    j["comparison"] = {{"other_model", report.comparison->other_model}, {"resamples", cmp.resamples},
                       {"balanced_accuracy", entry(cmp.balanced_accuracy)}, {"macro_f1", entry(cmp.macro_f1)},
                       {"auc", entry(cmp.auc)}, {"accuracy", entry(cmp.accuracy)}};
  }
  if (r.gate.enabled) {
    const auto& g = r.gate;
    j["abstained_scope"] = g.scope_abstained;
    j["abstained_ood"] = g.gate_abstained;
    j["coverage"] = round4(g.coverage);
    j["selective_accuracy"] = round4(g.selective_accuracy);
    j["selective_auc"] = round4(g.selective_auc);
    j["aurc"] = round4(g.aurc);
    if (!g.ood.empty()) {
      auto set = [&](const OodSetMetrics& s) {
        return nlohmann::json{{"data", s.data}, {"n", s.n}, {"ood_auroc", round4(s.auroc)}, {"ood_fpr95", round4(s.fpr95)},
                              {"ood_auroc_energy", round4(s.auroc_energy)}, {"ood_fpr95_energy", round4(s.fpr95_energy)},
                              {"abstention", round4(s.abstention)}};
      };
      j["ood_auroc"] = round4(g.pooled.auroc);
      j["ood_fpr95"] = round4(g.pooled.fpr95);
      j["ood_auroc_energy"] = round4(g.pooled.auroc_energy);
      j["ood_fpr95_energy"] = round4(g.pooled.fpr95_energy);
      j["ood_abstention"] = round4(g.pooled.abstention);
      j["ood_sets"] = nlohmann::json::array();
      for (const auto& s : g.ood) j["ood_sets"].push_back(set(s));
    }
  }
  if (r.has_shift) j["shift"] = shift_to_json(r.shift);
  const auto& hm = r.heatmaps;
  if (!hm.method.empty()) {
    j["method"] = hm.method;
    if (hm.scale_reference) j["heatmap_scale_reference"] = *hm.scale_reference;
    j["heatmap_images"] = hm.images;
    auto opt = [&](const std::optional<double>& v) { return v ? nlohmann::json(round4(*v)) : nlohmann::json(nullptr); };
    j["deletion_auc"] = opt(hm.deletion_auc);
    j["insertion_auc"] = opt(hm.insertion_auc);
    if (report.masks || hm.masked > 0) {
      j["masked_images"] = hm.masked;
      j["pointing_game"] = opt(hm.pointing_game);
      j["heatmap_iou"] = opt(hm.heatmap_iou);
    }
    if (!hm.randomization.empty()) {
      j["randomization"] = nlohmann::json::array();
      for (const auto& step : hm.randomization) j["randomization"].push_back({{"layer", step.layer}, {"spearman", round4(step.spearman)}});
      j["randomization_floor"] = opt(hm.randomization_floor);
    }
  }
  return j;
}

std::string report_table(const EvaluateReport& report) {
  const auto& r = report.result;
  const auto& m = r.metrics;
  const auto& ci = report.ci;
  const auto& chance = report.chance;
  const auto& hm = r.heatmaps;
  std::string out;
  appendf(out, "model decision: %s\n", decision_of(r).c_str());
  if (!r.tta.empty()) {
    std::string flips;
    for (const auto& f : r.tta) flips += (flips.empty() ? "" : ", ") + f;
    appendf(out, "test-time    mean logits over %d views (%s)\n", 1 << static_cast<int>(r.tta.size()), flips.c_str());
  }
  if (r.classes.size() == 2) appendf(out, "positive     %s (auc, sensitivity and f1 are for it)\n", r.classes[1].c_str());
  if (!report.class_map.empty()) appendf(out, "class map    %s\n", report.class_map.c_str());
  appendf(out, "n            %d\n", m.n);
  appendf(out, "accuracy     %.4f  (95%% CI %.4f-%.4f)\n", m.accuracy, ci.accuracy.low, ci.accuracy.high);
  appendf(out, "auc          %.4f  (95%% CI %.4f-%.4f)\n", m.auc, ci.auc.low, ci.auc.high);
  appendf(out, "balanced acc %.4f\nsensitivity  %.4f\nspecificity  %.4f\nf1           %.4f\nmacro f1     %.4f\n",
          m.balanced_accuracy, m.sensitivity, m.specificity, m.f1, m.macro_f1);
  appendf(out, "ece          %.4f  (a perfectly calibrated model would show %.4f on these %d images, up to %.4f in 95%% of draws)\n",
          m.ece, chance.mean, m.n, chance.p95);
  if (!r.clinical_attention.empty()) {
    appendf(out, "\n%-16s %9s   %s\n", "covariate", "attention", "balanced acc / macro f1 / auc when it is hidden");
    for (size_t f = 0; f < r.clinical_ablation.size(); ++f) {
      const auto& [name, mm] = r.clinical_ablation[f];
      if (f < r.clinical_attention.size()) {
        appendf(out, "%-16s %9.4f", name.c_str(), r.clinical_attention[f].second);
      } else {
        appendf(out, "%-16s %9s", "(all hidden)", "");
      }
      appendf(out, "   %.4f / %.4f / %.4f\n", mm.balanced_accuracy, mm.macro_f1, mm.auc);
    }
  }
  if (r.gate.enabled) {
    const auto& g = r.gate;
    appendf(out, "\nabstention   coverage %.4f (%d out of scope, %d above the OOD threshold, of %d)\n", g.coverage,
            g.scope_abstained, g.gate_abstained, g.n);
    appendf(out, "selective    accuracy %.4f, auc %.4f on the covered images; aurc %.4f\n", g.selective_accuracy,
            g.selective_auc, g.aurc);
    if (!g.ood.empty()) {
      appendf(out, "%-40s %6s %10s %10s %12s %12s %10s\n", "ood set", "n", "auroc", "fpr95", "auroc(energy)",
              "fpr95(energy)", "abstained");
      auto row = [&out](const OodSetMetrics& s) {
        appendf(out, "%-40.40s %6d %10.4f %10.4f %12.4f %12.4f %10.4f\n", s.data.c_str(), s.n, s.auroc, s.fpr95, s.auroc_energy,
                s.fpr95_energy, s.abstention);
      };
      for (const auto& s : g.ood) row(s);
      row(g.pooled);
    }
  }
  if (report.comparison) {
    const auto& cmp = report.comparison->paired;
    appendf(out, "\ncompared with %s (paired bootstrap, %d resamples)\n%-18s %8s %8s %10s %20s\n",
            report.comparison->other_model.c_str(), cmp.resamples, "metric", "this", "other", "difference", "95% CI");
    const std::pair<const char*, const PairedDifference*> rows[] = {
        {"balanced accuracy", &cmp.balanced_accuracy}, {"macro f1", &cmp.macro_f1}, {"auc", &cmp.auc}, {"accuracy", &cmp.accuracy}};
    for (const auto& [name, d] : rows) {
      appendf(out, "%-18s %8.4f %8.4f %+10.4f   %+8.4f to %+8.4f\n", name, d->a, d->b, d->difference, d->ci.low, d->ci.high);
    }
  }
  // Per class with its n: an AUC of 0.999 on 3 images says little.
  int name_w = 16;
  for (const auto& c : r.classes) name_w = std::max(name_w, static_cast<int>(c.size()));
  const auto counts = class_counts(m);
  appendf(out, "\n%-*s %6s %9s %9s %9s\n", name_w, "class", "n", "precision", "recall", "auc");
  for (size_t k = 0; k < r.classes.size(); ++k) {
    appendf(out, "%-*s %6d %9.4f %9.4f %9.4f\n", name_w, r.classes[k].c_str(), counts[k], m.precision[k], m.recall[k],
            k < m.auc_per_class.size() ? m.auc_per_class[k] : 0.0);
  }
  // Columns as wide as the longest class name, so no name is cut.
  int col_w = 6;
  for (const auto& c : r.classes) col_w = std::max(col_w, static_cast<int>(c.size()));
  appendf(out, "\nconfusion (rows: true, columns: predicted)\n%-*s", name_w, "");
  for (const auto& c : r.classes) appendf(out, " %*s", col_w, c.c_str());
  appendf(out, "\n");
  for (size_t t = 0; t < r.classes.size(); ++t) {
    appendf(out, "%-*s", name_w, r.classes[t].c_str());
    for (int v : m.confusion[t]) appendf(out, " %*d", col_w, v);
    appendf(out, "\n");
  }
  if (r.has_shift) out += shift_table(r.shift);
  for (const auto& w : r.warnings) appendf(out, "\nwarning: %s\n", w.c_str());
  if (!hm.method.empty()) {
    appendf(out, "\nheatmaps (%s, %d images)\n", hm.method.c_str(), hm.images);
    if (hm.deletion_auc && hm.insertion_auc) {
      appendf(out, "deletion auc   %.4f (lower is better)\ninsertion auc  %.4f (higher is better)\n", *hm.deletion_auc, *hm.insertion_auc);
    }
    if (hm.pointing_game && hm.heatmap_iou) {
      appendf(out, "pointing game  %.4f (%d images with lesions)\nheatmap iou    %.4f\n", *hm.pointing_game, hm.masked, *hm.heatmap_iou);
    }
    for (const auto& step : hm.randomization) appendf(out, "randomised down to %-10s spearman %.4f\n", step.layer.c_str(), step.spearman);
    if (!hm.randomization.empty() && hm.randomization_floor) appendf(out, "two random networks      spearman %.4f (the floor)\n", *hm.randomization_floor);
  }
  return out;
}

std::vector<report::RocSeries> roc_series(const EvaluateResult& r) {
  const auto& m = r.metrics;
  std::vector<report::RocSeries> series;
  const int K = static_cast<int>(r.classes.size());
  for (int k = (K == 2 ? 1 : 0); k < K; ++k) {
    report::RocSeries s;
    s.points = roc_curve(r.predictions, k);
    std::vector<double> scores;
    std::vector<bool> pos;
    for (size_t i = 0; i < r.predictions.labels.size(); ++i) {
      scores.push_back(r.predictions.probabilities[i][k]);
      pos.push_back(r.predictions.labels[i] == k);
    }
    char label[128];
    std::snprintf(label, sizeof(label), "%s (AUC %.3f)", r.classes[k].c_str(), binary_auc(scores, pos));
    s.label = label;
    // The operating point: the decision rule's sensitivity and 1 - specificity for class k.
    s.op_tpr = m.recall[k];
    int neg = 0, fp = 0;
    for (int t = 0; t < K; ++t) {
      if (t == k) continue;
      for (int p = 0; p < K; ++p) neg += m.confusion[t][p];
      fp += m.confusion[t][k];
    }
    s.op_fpr = neg > 0 ? static_cast<double>(fp) / neg : 0.0;
    series.push_back(std::move(s));
  }
  return series;
}

EvaluateOutput run_evaluate_command(const EvaluateCommand& command, const NoticeCallback& on_notice) {
  if (command.format != "table" && command.format != "json") {
    throw Error(ErrorKind::kInvalidArgument, "--format '" + command.format + "' is not one of table, json");
  }
  auto result = run_evaluate(command.evaluate, on_notice);
  if (command.shift_to_card && result.has_shift) {
    const auto& e = command.evaluate;
    record_shift_in_card(e.model_dir, result.shift,
                         e.data + (e.split.empty() ? "" : " --split " + e.split) +
                             (e.val_fraction > 0 ? " (the validation split train carved)" : ""));
    if (on_notice) on_notice("recorded the shift summary in " + e.model_dir + "'s card");
  }
  std::optional<Comparison> comparison;
  if (!command.compare_model.empty()) {
    // The other model on the same samples, then a paired bootstrap of the differences.
    EvaluateOptions other = command.evaluate;
    other.model_dir = command.compare_model;
    other.method.clear();
    other.randomization_check = false;
    comparison = compare_with(result, run_evaluate(other, on_notice), command.compare_model);
  }
  const auto report = make_report(std::move(result), command.evaluate, std::move(comparison));
  if (!command.roc_path.empty()) explain::write_png(command.roc_path, report::plot_roc(roc_series(report.result)));
  EvaluateOutput out;
  out.skipped = report.result.skipped;
  out.text = command.format == "json" ? report_json(report).dump() + "\n" : report_table(report);
  return out;
}

}  // namespace medattn::eval
