// `medattn evaluate`: measures a model on labelled data and prints the table or JSON
// (bootstrap intervals, --compare, ROC plot, abstention, shift benchmark, heatmap metrics).
#include "cli.h"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "core/error.h"
#include "eval/metrics.h"
#include "eval/model_checks.h"
#include "eval/shift.h"
#include "eval/shift_card.h"
#include "explain/overlay.h"
#include "pipeline/diagnose.h"
#include "report/output_file.h"
#include "report/roc_plot.h"
#include "train/train.h"

namespace medattn::cli {
namespace {

struct EvaluateArgs {
  train::EvaluateOptions options;
  std::string format = "table", roc, compare;
  int threads = 0;
  bool shift_to_card = false;
};

int run_evaluate_command(const train::EvaluateOptions& options, const std::string& format,
                         const std::string& roc_path, const std::string& compare_model, bool shift_to_card) {
  const auto r = train::run_evaluate(options, [](const std::string& n) { spdlog::warn("{}", n); });
  if (shift_to_card && r.has_shift) {
    eval::record_shift_in_card(options.model_dir, r.shift, options.data + (options.split.empty() ? "" : " --split " + options.split) +
                                                               (options.val_fraction > 0 ? " (the validation split train carved)" : ""));
    spdlog::info("recorded the shift summary in {}'s card", options.model_dir);
  }
  const auto& m = r.metrics;
  const auto ci = eval::bootstrap(r.predictions, 1000, /*seed=*/1, r.threshold);
  auto j = eval::metrics_to_json(m, r.classes);
  auto round4 = [](double v) { return std::round(v * 1e4) / 1e4; };
  j["auc_ci95"] = {round4(ci.auc.low), round4(ci.auc.high)};
  j["accuracy_ci95"] = {round4(ci.accuracy.low), round4(ci.accuracy.high)};
  const auto chance = eval::ece_if_calibrated(r.predictions);
  j["ece_if_calibrated"] = {{"mean", round4(chance.mean)}, {"p95", round4(chance.p95)}};
  j["decision"] = r.threshold >= 0 ? "threshold " + std::to_string(r.threshold) + " on " + r.classes[1] : "argmax";
  j["tta"] = r.tta;
  if (r.classes.size() == 2) j["positive_class"] = r.classes[1];
  if (!options.class_map.empty()) j["model_classes"] = r.model_classes;
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
  eval::PairedBootstrapResult cmp;
  if (!compare_model.empty()) {
    // The other model on the same samples, then a paired bootstrap of the differences.
    train::EvaluateOptions other = options;
    other.model_dir = compare_model;
    other.method.clear();
    other.randomization_check = false;
    const auto o = train::run_evaluate(other, [](const std::string& n) { spdlog::warn("{}", n); });
    if (o.predictions.labels != r.predictions.labels) {
      throw Error(ErrorKind::kInvalidArgument, "--compare " + compare_model +
                                                   ": the two models did not read the same samples, so they cannot be paired");
    }
    cmp = eval::paired_bootstrap(r.predictions, o.predictions, 1000, /*seed=*/1, r.threshold, o.threshold);
    auto entry = [&](const eval::PairedDifference& d) {
      return nlohmann::json{{"this", round4(d.a)}, {"other", round4(d.b)}, {"difference", round4(d.difference)},
                            {"difference_ci95", {round4(d.ci.low), round4(d.ci.high)}}};
    };
    j["comparison"] = {{"other_model", compare_model}, {"resamples", cmp.resamples},
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
      auto set = [&](const train::OodSetMetrics& s) {
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
  if (r.has_shift) j["shift"] = eval::shift_to_json(r.shift);
  const auto& hm = r.heatmaps;
  if (!hm.method.empty()) {
    j["method"] = hm.method;
    if (hm.scale_reference > 0) j["heatmap_scale_reference"] = hm.scale_reference;
    j["heatmap_images"] = hm.images;
    auto opt = [&](double v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(round4(v)); };
    j["deletion_auc"] = opt(hm.deletion_auc);
    j["insertion_auc"] = opt(hm.insertion_auc);
    if (!options.masks.empty() || hm.masked > 0) {
      j["masked_images"] = hm.masked;
      j["pointing_game"] = opt(hm.pointing_game);
      j["heatmap_iou"] = opt(hm.heatmap_iou);
    }
    if (!hm.randomization.empty()) {
      j["randomization"] = nlohmann::json::array();
      for (const auto& step : hm.randomization) j["randomization"].push_back({{"layer", step.layer}, {"spearman", round4(step.spearman)}});
      j["randomization_floor"] = round4(hm.randomization_floor);
    }
  }
  if (!roc_path.empty()) {
    std::vector<report::RocSeries> series;
    const int K = static_cast<int>(r.classes.size());
    for (int k = (K == 2 ? 1 : 0); k < K; ++k) {
      report::RocSeries s;
      s.points = eval::roc_curve(r.predictions, k);
      std::vector<double> scores;
      std::vector<bool> pos;
      for (size_t i = 0; i < r.predictions.labels.size(); ++i) {
        scores.push_back(r.predictions.probabilities[i][k]);
        pos.push_back(r.predictions.labels[i] == k);
      }
      char label[128];
      std::snprintf(label, sizeof(label), "%s (AUC %.3f)", r.classes[k].c_str(), eval::binary_auc(scores, pos));
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
    explain::write_png(roc_path, report::plot_roc(series));
    spdlog::info("wrote ROC curve to {}", roc_path);
  }
  if (format == "json") {
    std::cout << j.dump() << "\n";
  } else {
    std::printf("model decision: %s\n", j["decision"].get<std::string>().c_str());
    if (!r.tta.empty()) {
      std::string flips;
      for (const auto& f : r.tta) flips += (flips.empty() ? "" : ", ") + f;
      std::printf("test-time    mean logits over %d views (%s)\n", 1 << static_cast<int>(r.tta.size()), flips.c_str());
    }
    if (r.classes.size() == 2) std::printf("positive     %s (auc, sensitivity and f1 are for it)\n", r.classes[1].c_str());
    if (!options.class_map.empty()) std::printf("class map    %s\n", options.class_map.c_str());
    std::printf("n            %d\n", m.n);
    std::printf("accuracy     %.4f  (95%% CI %.4f-%.4f)\n", m.accuracy, ci.accuracy.low, ci.accuracy.high);
    std::printf("auc          %.4f  (95%% CI %.4f-%.4f)\n", m.auc, ci.auc.low, ci.auc.high);
    std::printf("balanced acc %.4f\nsensitivity  %.4f\nspecificity  %.4f\nf1           %.4f\nmacro f1     %.4f\n",
                m.balanced_accuracy, m.sensitivity, m.specificity, m.f1, m.macro_f1);
    std::printf("ece          %.4f  (a perfectly calibrated model would show %.4f on these %d images, up to %.4f in 95%% of draws)\n",
                m.ece, chance.mean, m.n, chance.p95);
    if (!r.clinical_attention.empty()) {
      std::printf("\n%-16s %9s   %s\n", "covariate", "attention", "balanced acc / macro f1 / auc when it is hidden");
      for (size_t f = 0; f < r.clinical_ablation.size(); ++f) {
        const auto& [name, mm] = r.clinical_ablation[f];
        if (f < r.clinical_attention.size()) {
          std::printf("%-16s %9.4f", name.c_str(), r.clinical_attention[f].second);
        } else {
          std::printf("%-16s %9s", "(all hidden)", "");
        }
        std::printf("   %.4f / %.4f / %.4f\n", mm.balanced_accuracy, mm.macro_f1, mm.auc);
      }
    }
    if (r.gate.enabled) {
      const auto& g = r.gate;
      std::printf("\nabstention   coverage %.4f (%d out of scope, %d above the OOD threshold, of %d)\n", g.coverage,
                  g.scope_abstained, g.gate_abstained, g.n);
      std::printf("selective    accuracy %.4f, auc %.4f on the covered images; aurc %.4f\n", g.selective_accuracy,
                  g.selective_auc, g.aurc);
      if (!g.ood.empty()) {
        std::printf("%-40s %6s %10s %10s %12s %12s %10s\n", "ood set", "n", "auroc", "fpr95", "auroc(energy)",
                    "fpr95(energy)", "abstained");
        auto row = [](const train::OodSetMetrics& s) {
          std::printf("%-40.40s %6d %10.4f %10.4f %12.4f %12.4f %10.4f\n", s.data.c_str(), s.n, s.auroc, s.fpr95, s.auroc_energy,
                      s.fpr95_energy, s.abstention);
        };
        for (const auto& s : g.ood) row(s);
        row(g.pooled);
      }
    }
    if (!compare_model.empty()) {
      std::printf("\ncompared with %s (paired bootstrap, %d resamples)\n%-18s %8s %8s %10s %20s\n", compare_model.c_str(),
                  cmp.resamples, "metric", "this", "other", "difference", "95% CI");
      const std::pair<const char*, const eval::PairedDifference*> rows[] = {
          {"balanced accuracy", &cmp.balanced_accuracy}, {"macro f1", &cmp.macro_f1}, {"auc", &cmp.auc}, {"accuracy", &cmp.accuracy}};
      for (const auto& [name, d] : rows) {
        std::printf("%-18s %8.4f %8.4f %+10.4f   %+8.4f to %+8.4f\n", name, d->a, d->b, d->difference, d->ci.low, d->ci.high);
      }
    }
    // Per class with its n: an AUC of 0.999 on 3 images says little.
    int name_w = 16;
    for (const auto& c : r.classes) name_w = std::max(name_w, static_cast<int>(c.size()));
    const auto counts = eval::class_counts(m);
    std::printf("\n%-*s %6s %9s %9s %9s\n", name_w, "class", "n", "precision", "recall", "auc");
    for (size_t k = 0; k < r.classes.size(); ++k) {
      std::printf("%-*s %6d %9.4f %9.4f %9.4f\n", name_w, r.classes[k].c_str(), counts[k], m.precision[k], m.recall[k],
                  k < m.auc_per_class.size() ? m.auc_per_class[k] : 0.0);
    }
    // Columns as wide as the longest class name, so no name is cut.
    int col_w = 6;
    for (const auto& c : r.classes) col_w = std::max(col_w, static_cast<int>(c.size()));
    std::printf("\nconfusion (rows: true, columns: predicted)\n%-*s", name_w, "");
    for (const auto& c : r.classes) std::printf(" %*s", col_w, c.c_str());
    std::printf("\n");
    for (size_t t = 0; t < r.classes.size(); ++t) {
      std::printf("%-*s", name_w, r.classes[t].c_str());
      for (int v : m.confusion[t]) std::printf(" %*d", col_w, v);
      std::printf("\n");
    }
    if (r.has_shift) std::printf("%s", eval::shift_table(r.shift).c_str());
    for (const auto& w : r.warnings) std::printf("\nwarning: %s\n", w.c_str());
    if (!hm.method.empty()) {
      std::printf("\nheatmaps (%s, %d images)\n", hm.method.c_str(), hm.images);
      if (hm.deletion_auc >= 0) std::printf("deletion auc   %.4f (lower is better)\ninsertion auc  %.4f (higher is better)\n", hm.deletion_auc, hm.insertion_auc);
      if (hm.masked > 0) std::printf("pointing game  %.4f (%d images with lesions)\nheatmap iou    %.4f\n", hm.pointing_game, hm.masked, hm.heatmap_iou);
      for (const auto& step : hm.randomization) std::printf("randomised down to %-10s spearman %.4f\n", step.layer.c_str(), step.spearman);
      if (!hm.randomization.empty()) std::printf("two random networks      spearman %.4f (the floor)\n", hm.randomization_floor);
    }
  }
  return r.skipped > 0 ? kExitSomeFailed : kExitOk;
}

}  // namespace

Command add_evaluate(CLI::App& app) {
  auto a = std::make_shared<EvaluateArgs>();
  auto* evaluate = app.add_subcommand("evaluate", "Measure a model on labelled data");
  evaluate->add_option("-m,--model", a->options.model_dir, "Model directory")->check(kNotEmpty)->required();
  evaluate->add_option("data", a->options.data, "DATA: class folders, a CSV or a .npz")->required();
  evaluate->add_option("--split", a->options.split, "npz arrays NAME_images/NAME_labels, or CSV rows with split == NAME");
  evaluate->add_option("--format", a->format, "table or json")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  evaluate->add_option("--roc", a->roc, "Write the ROC curve (operating point marked) to FILE.png");
  evaluate->add_option("--compare", a->compare,
                       "Also evaluate this other model on the same data and report the paired bootstrap difference "
                       "(this - other) of balanced accuracy, macro-F1, AUC and accuracy with 95% intervals");
  add_method_option(*evaluate, a->options.method, "; also measured: deletion_auc, insertion_auc (and with --masks pointing_game, heatmap_iou)");
  evaluate->add_option("--masks", a->options.masks, "Lesion masks at the same relative paths as DATA's images (a->options.g. phantoms/masks); "
                                           "without --method, the default method (saliency) is measured");
  evaluate->add_flag("--calibrate-heatmap-scale", a->options.calibrate_heatmap_scale,
                     "Write the model's heatmap scale for --method (default saliency) from DATA (use the validation split): "
                     "the median of each map's largest value, what diagnose --heatmap-scale model shows as 1");
  evaluate->add_option("--class-map", a->options.class_map,
                       "Score data whose classes merge the model's: DATA_CLASS=MODEL_CLASS[+MODEL_CLASS...],... "
                       "(a->options.g. no=notumor,yes=glioma+meningioma+pituitary); each data class gets the sum of its model classes' "
                       "probabilities");
  evaluate->add_flag("--randomization-check", a->options.randomization_check,
                     "Re-initialise the weights top-down and report the rank correlation with the original maps");
  evaluate->add_option("--tta", a->options.tta,
                       "Test-time flips whose logits are averaged: none, hflip, vflip or hflip,vflip (default: the model card's)")
      ->check(kFlips);
  evaluate->add_option("--heatmap-flips", a->options.heatmap_flips,
                       "Average each heatmap over these flips of the input: none, hflip, vflip or hflip,vflip "
                       "(default: the flips the model was trained with)")
      ->check(kFlips);
  evaluate->add_flag("--no-deletion", a->options.no_deletion, "Skip the deletion/insertion curves");
  evaluate->add_option("--ood", a->options.ood_data,
                       "Out-of-distribution sets (image files, folders, npz or CSV): report ood_auroc and ood_fpr95 of the gate's "
                       "score (and of the logits' energy) against DATA, and the share diagnose would abstain on")
      ->expected(1, -1);
  evaluate->add_option("--val-fraction", a->options.val_fraction,
                       "Evaluate only the validation split that train --val-fraction F carved from DATA (with --seed, --group-regex)")
      ->check(in_range(0.01, 0.9));
  evaluate->add_option("--seed", a->options.seed, "With --val-fraction: the seed of train's split")->capture_default_str();
  evaluate->add_option("--group-regex", a->options.group_regex, "With --val-fraction: train's --group-regex");
  evaluate->add_option("--ood-limit", a->options.ood_limit, "At most this many images per --ood set, spread evenly over it")
      ->check(in_range(1, 100000000))->capture_default_str();
  std::vector<std::string> shift_set_names;
  for (const auto& set : eval::shift_sets()) shift_set_names.push_back(set.name);
  evaluate->add_flag("--shift", a->options.shift,
                     "Also run the shift benchmark: DATA under realistic acquisition changes at 5 severities (accuracy, AUC, ECE, "
                     "coverage per corruption; means over the corruptions the model's training augmentation does not apply)");
  evaluate->add_option("--shift-set", a->options.shift_set, "Corruption set for --shift (default: from the card's modalities)")
      ->check(CLI::IsMember(shift_set_names));
  evaluate->add_option("--shift-limit", a->options.shift_limit, "--shift on at most this many images, spread evenly (0 = all)")
      ->check(in_range(0, 100000000))->capture_default_str();
  evaluate->add_flag("--shift-to-card", a->shift_to_card,
                     "With --shift: keep the summary in the model's card (validation.shift, and a sentence in its "
                     "limitations); run it on the validation split")
      ->needs("--shift");
  evaluate->add_option("--shift-seed", a->options.shift_seed, "Seed of the corruptions' random draws")->capture_default_str();
  add_method_flags(*evaluate, a->options.explain);
  evaluate->add_option("--threads", a->threads, "Threads (default: all cores; at most 256)")->check(in_range(0, kMaxThreads));
  evaluate->footer("Example:\n  medattn evaluate -m models/phantom phantoms/images --format json");
  return {evaluate, [a](const std::string&) {
            pipeline::set_threads(a->threads);
            // never over an input or the model
            if (!a->roc.empty()) report::check_outputs({{a->roc, "ROC plot"}}, {a->options.data}, a->options.model_dir);
            return run_evaluate_command(a->options, a->format, a->roc, a->compare, a->shift_to_card);
          }};
}

}  // namespace medattn::cli
