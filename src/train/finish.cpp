// The end of training: temperature and operating point fitted on validation, the card's
// training and validation blocks, the model written, and its OOD gate fitted.
#include <cmath>
#include <filesystem>

#include "eval/model_checks.h"
#include "eval/report.h"
#include "model/ood.h"
#include "train/train_parts.h"

namespace fs = std::filesystem;

namespace medattn::train {

eval::Predictions calibrate(const TrainOptions& options, const std::vector<model::AttnNet>& nets, const Tensors& va,
                            const std::vector<int>& views, model::ModelCard& card, TrainResult& result) {
  // Calibration: temperature scaling fitted on the validation logits (of the ensemble's mean).
  const auto val_logits = logits_of(nets, va.x, 128, va.c, views);
  const auto val_labels = labels_of(va.y);
  const auto uncalibrated = eval::apply_temperature(val_logits, val_labels, 1.0);
  card.temperature = options.calibrate ? eval::fit_temperature(val_logits, val_labels) : 1.0;
  const auto calibrated = eval::apply_temperature(val_logits, val_labels, card.temperature);
  if (!options.operating_point.empty()) {
    card.threshold = eval::choose_threshold(calibrated, options.operating_point);
    card.operating_point = options.operating_point;
  }
  result.validation = eval::compute_metrics(calibrated, card.threshold);
  result.ece_before = eval::expected_calibration_error(uncalibrated);
  result.warnings = eval::model_warnings(calibrated, result.validation, card.classes,
                                         options.calibrate ? card.temperature : -1.0, "validation");
  return calibrated;
}

void write_trained_model(const TrainOptions& options, const std::vector<model::AttnNet>& nets, model::ModelCard& card,
                         const TrainData& data, const RunFacts& facts, const eval::Predictions& calibrated,
                         TrainResult& result, const NoticeCallback& on_notice) {
  card.training["data"] = {{"train", options.data}, {"split", options.split},
                           {"validation", options.val_data.empty() && options.val_split.empty()
                                              ? describe_split(options.val_fraction, options.seed) +
                                                    (options.group_regex.empty() ? "" : ", grouped by " + options.group_regex)
                                              : (options.val_data.empty() ? options.data : options.val_data) + (options.val_split.empty() ? "" : " split " + options.val_split)},
                           {"train_images", result.train_count}, {"val_images", result.val_count},
                           {"exact_duplicates", data.duplicates}, {"val_copies_of_train", data.overlap}};
  card.training["command"] = options.command;
  card.training["epochs"] = options.epochs;
  card.training["epochs_run"] = facts.member_notes[0].at("epochs_run");
  card.training["best_epoch"] = result.best_epoch;
  card.training["selection"] = facts.keep_last ? "last epoch" : "best validation AUC (accuracy breaks ties)";
  card.training["batch_size"] = options.batch_size;
  card.training["optimizer"] = {{"name", "AdamW"}, {"lr", options.lr}, {"weight_decay", options.weight_decay},
                                {"schedule", "linear warm-up " + std::to_string(options.warmup_epochs) + " epoch(s), cosine decay"}};
  card.training["loss"] = {{"name", describe_loss(facts.balance)}, {"balance", balance_name(facts.balance)}, {"label_smoothing", options.label_smoothing},
                           {"mixup", options.mixup}};
  card.training["ema"] = options.ema;
  if (facts.init != nullptr && !facts.init->path.empty()) card.training["init"] = describe_init(*facts.init);
  if (!card.clinical.empty()) {
    card.training["clinical"] = {{"columns", options.clinical}, {"dropout", options.clinical_dropout}, {"fusion", options.fusion}};
  }
  card.training["augment"] = options.augment ? nlohmann::json(describe_augment(facts.augment)) : nlohmann::json(false);
  card.training["seed"] = options.seed;
  if (options.members > 1) {
    // Each member's own figures (uncalibrated, on the same validation split) beside the ensemble's.
    card.training["ensemble"] = {{"members", options.members}, {"seeds", "seed + member index (from 0)"}, {"member_validation", facts.member_notes}};
  }
  card.training["seconds"] = std::round(result.seconds);
  card.training["threads"] = at::get_num_threads();
  card.validation = eval::metrics_to_json(result.validation, card.classes);
  card.validation["ece_before_calibration"] = std::round(result.ece_before * 1e6) / 1e6;
  card.validation["ece_if_calibrated"] = eval::calibrated_ece_to_json(eval::ece_if_calibrated(calibrated));
  if (!result.warnings.empty()) card.validation["warnings"] = result.warnings;
  model::save_model(options.out, card, nets);
  if (options.ood_percentile <= 0 || data.va.size() < min_gate_validation(options.ood_percentile)) {
    // A sidecar of an earlier model in the same directory does not belong to this one.
    std::error_code ec;
    fs::remove(fs::path(options.out) / model::kOodFile, ec);
  }
  if (options.ood_percentile > 0 && data.va.size() < min_gate_validation(options.ood_percentile)) {
    if (on_notice) {
      on_notice("no OOD gate: " + std::to_string(data.va.size()) + " validation image(s) cannot set a threshold at the " +
                std::to_string(static_cast<int>(options.ood_percentile)) + "th percentile (at least " +
                std::to_string(min_gate_validation(options.ood_percentile)) + " needed)");
    }
  } else if (options.ood_percentile > 0) {
    // The out-of-distribution gate, on the same split (model/ood.h); the card is written again
    // with the gate's sidecar and digest.
    model::ModelCard written = model::read_card(options.out);
    fit_gate_on(nets, written, data.tr, data.va, options.ood_percentile, /*shrinkage=*/0.01, model::kDefaultOodFeature, options.out);
    written.ood.fit["train"] = options.data + (options.split.empty() ? "" : " split " + options.split);
    written.ood.fit["validation"] = card.training["data"]["validation"];
    written.ood.fit["command"] = options.command;
    model::write_card(options.out, written);
    card = written;
  }
}

}  // namespace medattn::train
