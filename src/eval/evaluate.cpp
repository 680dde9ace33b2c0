#include "eval/evaluate.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>
#include <regex>

#include "core/error.h"
#include "eval/evaluate_parts.h"
#include "eval/model_checks.h"
#include "explain/methods.h"
#include "io/dataset.h"
#include "model/net.h"

namespace fs = std::filesystem;

namespace medattn::eval {

using train::Tensors;
using train::absent_columns;
using train::encode_tensors;
using train::labels_of;
using train::logits_of;
using train::prepare_samples;
using train::select_rows;
using train::split_indices;

EvaluateResult run_evaluate(const EvaluateOptions& options, const NoticeCallback& on_notice) {
  auto model = model::load_model(options.model_dir);
  const auto& card = model.card;
  std::optional<ClassMap> class_map;
  if (!options.class_map.empty()) class_map = parse_class_map(options.class_map, card.classes);
  io::DatasetOptions dopt;
  dopt.classes = class_map ? class_map->data_classes : card.classes;
  dopt.split = options.split;
  const auto flips = options.tta.empty() ? card.tta : model::parse_flips(options.tta);
  const auto views = model::tta_views(flips);
  io::Dataset data = io::load_dataset(options.data, dopt);
  for (const auto& n : data.notices) if (on_notice) on_notice(n);
  if (!options.group_regex.empty()) {
    const std::regex re(options.group_regex);
    for (auto& s : data.samples) {
      std::smatch m;
      const std::string name = fs::path(s.path).filename().string();
      if (std::regex_search(name, m, re)) s.group = m.size() > 1 ? m[1].str() : m[0].str();
    }
  }
  Tensors t = prepare_samples(data, card.preprocess, on_notice);
  const int64_t readable = t.size();
  if (options.val_fraction > 0) {
    // The validation split train carved from DATA with the same fraction, seed and groups.
    t = select_rows(t, split_indices(t, options.val_fraction, options.seed).second);
  }
  if (!card.clinical.empty()) {
    const auto absent = absent_columns(data, card.clinical);
    if (!absent.empty() && on_notice) {
      std::string names;
      for (const auto& a : absent) names += (names.empty() ? "" : ", ") + a;
      on_notice("the model takes clinical covariates; the data has no column " + names + ": treated as missing for every image");
    }
    const int unknown = encode_tensors(t, data, card.clinical);
    if (unknown > 0 && on_notice) {
      on_notice(std::to_string(unknown) + " covariate value(s) are categories unseen in training or not numbers: treated as missing");
    }
  }
  EvaluateResult result;
  result.classes = card.classes;
  result.skipped = static_cast<int>(static_cast<int64_t>(data.samples.size()) - readable);
  if (t.size() == 0) throw file_error(ErrorKind::kInvalidArgument, "cannot evaluate on", options.data, "no readable samples");
  // With a class map, model_level keeps the model's classes (for the heatmaps' targets) and the
  // predictions are merged into the data's; the card's threshold belongs to the model's classes.
  const auto model_level = apply_temperature(logits_of(model.nets, t.x, options.batch_size, t.c, views), labels_of(t.y),
                                                   card.temperature);
  result.model_classes = card.classes;
  result.predictions = class_map ? merge_classes(model_level, *class_map) : model_level;
  if (class_map) result.classes = class_map->data_classes;
  result.threshold = class_map ? -1.0 : card.threshold;
  result.tta = flips;
  result.metrics = compute_metrics(result.predictions, result.threshold);
  result.warnings = model_warnings(result.predictions, result.metrics, result.classes, -1.0, "the data");
  for (const auto& w : result.warnings) {
    if (on_notice) on_notice(w);
  }
  if (card.ood.enabled()) {
    result.gate = evaluate_gate(model, t, data, result.predictions, options, on_notice);
  } else if (!options.ood_data.empty()) {
    throw file_error(ErrorKind::kInvalidArgument, "cannot measure --ood with", options.model_dir,
                     "the model has no OOD gate (medattn fit-ood fits one)");
  }
  if (options.shift) {
    result.shift = run_shift(model, data, t, options, on_notice);
    result.has_shift = true;
  }
  if (t.c.defined()) {
    const auto F = t.c.size(1);
    std::vector<double> shares(F, 0.0);
    for (int64_t s = 0; s < t.size(); s += options.batch_size) {
      const int64_t e = std::min(t.size(), s + options.batch_size);
      const auto a = explain::clinical_attention(model.nets, t.x.slice(0, s, e), t.c.slice(0, s, e)).sum(0);
      for (int64_t f = 0; f < F; ++f) shares[f] += a[f].item<double>();
    }
    for (int64_t f = 0; f < F; ++f) {
      result.clinical_attention.emplace_back(card.clinical[f].name, shares[f] / static_cast<double>(t.size()));
    }
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (int64_t f = 0; f <= F; ++f) {
      auto hidden = t.c.clone();
      if (f < F) {
        hidden.select(1, f).fill_(nan);
      } else {
        hidden.fill_(nan);
      }
      auto p = apply_temperature(logits_of(model.nets, t.x, options.batch_size, hidden, views), labels_of(t.y),
                                       card.temperature);
      if (class_map) p = merge_classes(p, *class_map);
      result.clinical_ablation.emplace_back(f < F ? card.clinical[f].name : "all", compute_metrics(p, result.threshold));
    }
  }
  // --masks without --method measures diagnose's default method rather than ignore the masks.
  std::string method = options.method;
  if (method.empty() && (!options.masks.empty() || options.calibrate_heatmap_scale)) {
    method = "saliency";
    if (on_notice) {
      on_notice(std::string(options.masks.empty() ? "--calibrate-heatmap-scale" : "--masks") +
                " without --method: measuring diagnose's default heatmap method, saliency");
    }
  }
  if (method.empty()) return result;
  result.heatmaps = measure_heatmaps(model, data, t, model_level, options, method, on_notice);
  return result;
}


}  // namespace medattn::eval
