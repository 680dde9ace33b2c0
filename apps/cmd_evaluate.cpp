// `medattn evaluate`: binds the flags to eval::EvaluateCommand and prints what
// eval::run_evaluate_command (eval/report.h) returns: the table or the JSON.
#include "cli.h"

#include <spdlog/spdlog.h>
#include <iostream>
#include <memory>

#include "core/threads.h"
#include "eval/report.h"
#include "eval/shift.h"
#include "report/output_file.h"

namespace medattn::cli {
namespace {

struct EvaluateArgs {
  eval::EvaluateCommand command;
  // The flags bind to these names (the command's fields).
  eval::EvaluateOptions& options = command.evaluate;
  std::string& format = command.format;
  std::string& roc = command.roc_path;
  std::string& compare = command.compare_model;
  int threads = 0;
};

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
  evaluate->add_option("--masks", a->options.masks, "Lesion masks at the same relative paths as DATA's images (e.g. phantoms/masks); "
                                           "without --method, the default method (saliency) is measured");
  evaluate->add_flag("--calibrate-heatmap-scale", a->options.calibrate_heatmap_scale,
                     "Write the model's heatmap scale for --method (default saliency) from DATA (use the validation split): "
                     "the median of each map's largest value, what diagnose --heatmap-scale model shows as 1");
  evaluate->add_option("--class-map", a->options.class_map,
                       "Score data whose classes merge the model's: DATA_CLASS=MODEL_CLASS[+MODEL_CLASS...],... "
                       "(e.g. no=notumor,yes=glioma+meningioma+pituitary); each data class gets the sum of its model classes' "
                       "probabilities");
  evaluate->add_flag("--randomization-check", a->options.randomization_check,
                     "Re-initialise the weights top-down and report the rank correlation with the original maps");
  add_flip_options(*evaluate, a->options.tta, a->options.heatmap_flips);
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
  evaluate->add_flag("--shift-to-card", a->command.shift_to_card,
                     "With --shift: keep the summary in the model's card (validation.shift, and a sentence in its "
                     "limitations); run it on the validation split")
      ->needs("--shift");
  evaluate->add_option("--shift-seed", a->options.shift_seed, "Seed of the corruptions' random draws")->capture_default_str();
  add_method_flags(*evaluate, a->options.explain);
  evaluate->add_option("--threads", a->threads, "Threads (default: all cores; at most 256)")->check(in_range(0, kMaxThreads));
  evaluate->footer("Example:\n  medattn evaluate -m models/phantom phantoms/images --format json");
  return {evaluate, [a](const std::string&) {
            set_threads(a->threads);
            const auto& c = a->command;
            // never over an input or the model
            if (!c.roc_path.empty()) report::check_outputs({{c.roc_path, "ROC plot"}}, {c.evaluate.data}, c.evaluate.model_dir);
            const auto out = eval::run_evaluate_command(c, [](const std::string& n) { spdlog::warn("{}", n); });
            if (!c.roc_path.empty()) spdlog::info("wrote ROC curve to {}", c.roc_path);
            std::cout << out.text;
            return out.skipped > 0 ? kExitSomeFailed : kExitOk;
          }};
}

}  // namespace medattn::cli
