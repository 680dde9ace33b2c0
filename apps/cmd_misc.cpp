// The small commands: `medattn fit-ood`, `medattn info` and `medattn phantom`.
#include "cli.h"

#include <spdlog/spdlog.h>
#include <iostream>
#include <memory>

#include "core/threads.h"
#include "model/card.h"
#include "phantom/phantom.h"
#include "pipeline/diagnose.h"
#include "train/fit_ood.h"

namespace medattn::cli {

Command add_fit_ood(CLI::App& app) {
  struct Args {
    train::FitOodOptions options;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* fitood = app.add_subcommand("fit-ood", "Fit a model's out-of-distribution gate on its training data, without retraining");
  fitood->add_option("-m,--model", a->options.model_dir, "Model directory (its card and ood.bin are written)")->check(kNotEmpty)->required();
  fitood->add_option("data", a->options.data, "The training DATA the model was trained on")->required();
  fitood->add_option("--split", a->options.split, "As train: npz arrays or CSV rows of the training split (e.g. train)");
  fitood->add_option("--val", a->options.val_data, "Separate validation DATA (the threshold is set on it)");
  fitood->add_option("--val-split", a->options.val_split, "Validation split of DATA (or of --val), e.g. val");
  fitood->add_option("--val-fraction", a->options.val_fraction, "As train: stratified share of DATA carved for validation")
      ->check(in_range(0.01, 0.9))->capture_default_str();
  fitood->add_option("--seed", a->options.seed, "As train: the seed of the carved split")->capture_default_str();
  fitood->add_option("--group-regex", a->options.group_regex, "As train: patient id from the file name, for a grouped split");
  fitood->add_option("--percentile", a->options.percentile, "Threshold: this percentile of the validation scores")
      ->check(in_range(1.0, 100.0))->capture_default_str();
  fitood->add_option("--shrinkage", a->options.shrinkage, "Shrinkage of the shared covariance towards its diagonal")
      ->check(in_range(0.0, 0.99))->capture_default_str();
  fitood->add_option("--feature", a->options.feature, "What the gate scores: layers (CLS, mean token, CNN stages) or cls (the head's input)")
      ->check(CLI::IsMember({"layers", "cls"}))->capture_default_str();
  fitood->add_option("--threads", a->threads, "Threads (default: all cores; at most 256)")->check(in_range(0, kMaxThreads));
  fitood->footer("Example (the split of the card's training command):\n"
                 "  medattn fit-ood -m models/pneumoniamnist ../shared/data/pneumoniamnist/pneumoniamnist_trainval.npz "
                 "--split train --val-split val");
  return {fitood, [a](const std::string& command) {
            set_threads(a->threads);
            a->options.command = command;
            const auto r = train::run_fit_ood(a->options, [](const std::string& n) { spdlog::info("{}", n); });
            spdlog::info("fitted the OOD gate of {} on {} training image(s): threshold {:.4f} ({}th percentile of {} validation "
                         "image(s); validation coverage {:.4f}); wrote {} (sha256 {})",
                         a->options.model_dir, r.train_count, r.gate.threshold, r.gate.percentile, r.val_count, r.val_coverage,
                         r.gate.file, r.gate.sha256);
            return kExitOk;
          }};
}

Command add_info(CLI::App& app) {
  struct Args {
    std::string model;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* info = app.add_subcommand("info", "Print a model's card");
  info->add_option("-m,--model", a->model, "Model directory")->check(kNotEmpty)->required();
  info->add_flag("--json", a->json, "Print the card as JSON");
  info->footer("Example:\n  medattn info -m models/phantom");
  return {info, [a](const std::string&) {
            const auto card = model::read_card(a->model);
            std::cout << (a->json ? model::card_to_json(card).dump(2) + "\n" : model::describe_card(card));
            return kExitOk;
          }};
}

Command add_phantom(CLI::App& app) {
  struct Args {
    phantom::PhantomOptions options;
    std::string out;
  };
  auto a = std::make_shared<Args>();
  auto* phantomc = app.add_subcommand("phantom", "Generate synthetic chest-radiograph-like images with lesion masks");
  phantomc->add_option("--out", a->out, "Output folder (images/<class>/, masks/<class>/)")->required();
  phantomc->add_option("--count", a->options.count, "Images in all, spread evenly over normal, nodule, consolidation")->required()->check(in_range(1, 1000000));
  phantomc->add_option("--seed", a->options.seed, "Seed: the same seed gives the same files")->capture_default_str();
  phantomc->add_option("--size", a->options.size, "Image width and height in pixels")->check(in_range(64, 4096))->capture_default_str();
  phantomc->footer("Example:\n  medattn phantom --out phantoms --count 30 --seed 7");
  return {phantomc, [a](const std::string&) {
            const int n = phantom::write_phantoms(a->out, a->options);
            spdlog::info("wrote {} phantom image(s) and mask(s) to {}", n, a->out);
            return kExitOk;
          }};
}

}  // namespace medattn::cli
