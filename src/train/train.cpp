// `medattn train`: options checked, data split, ensemble members trained epoch by epoch with
// checkpoints, then calibration and the model written (the parts: train/train_parts.h).
#include "train/train.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <regex>

#include <omp.h>

#include "core/error.h"
#include "core/fs.h"
#include "train/train_parts.h"

namespace fs = std::filesystem;

namespace medattn::train {

TrainResult run_train(const TrainOptions& options, const EpochCallback& on_epoch,
                      const NoticeCallback& on_notice) {
  const auto t0 = Clock::now();
  if (options.out.empty()) throw Error(ErrorKind::kInvalidArgument, "--out MODEL is required");
  if (options.epochs < 1 || options.batch_size < 2) throw Error(ErrorKind::kInvalidArgument, "--epochs must be at least 1 and --batch-size at least 2");
  if (options.val_fraction <= 0 || options.val_fraction >= 1) throw Error(ErrorKind::kInvalidArgument, "--val-fraction must be in (0, 1)");
  if (options.ema < 0 || options.ema >= 1) throw Error(ErrorKind::kInvalidArgument, "--ema must be in [0, 1)");
  if (options.label_smoothing < 0 || options.label_smoothing >= 1) throw Error(ErrorKind::kInvalidArgument, "--label-smoothing must be in [0, 1)");
  const Balance balance = parse_balance(options.balance);
  if (options.select != "best-auc" && options.select != "last") {
    throw Error(ErrorKind::kInvalidArgument, "--select '" + options.select + "' is not one of best-auc, last");
  }
  const bool keep_last = options.select == "last";
  if (keep_last && options.patience > 0) {
    throw Error(ErrorKind::kInvalidArgument, "--patience stops on the best validation AUC, so it needs --select best-auc");
  }
  if (options.mixup < 0) throw Error(ErrorKind::kInvalidArgument, "--mixup must be 0 (off) or a positive Beta alpha");
  if (options.mixup > 0 && !options.clinical.empty()) {
    // A blended image has no single patient whose covariates it could carry.
    throw Error(ErrorKind::kInvalidArgument, "--mixup cannot be combined with --clinical");
  }
  std::optional<std::regex> group_regex;
  if (!options.group_regex.empty()) {
    try {
      group_regex.emplace(options.group_regex);
    } catch (const std::regex_error& e) {
      throw Error(ErrorKind::kInvalidArgument, "--group-regex '" + options.group_regex + "' is not a valid regular expression");
    }
  }
  torch::manual_seed(options.seed);
  if (options.card.preprocess.colour_constancy != "none" && options.card.preprocess.channels != 3) {
    throw Error(ErrorKind::kInvalidArgument, "--colour-constancy needs a colour model (--channels 3)");
  }

  io::Dataset train_set = load_training_set(options, group_regex, on_notice);
  model::ModelCard card = options.card;
  card.classes = train_set.classes;
  if (card.intended_use.colour.empty()) card.intended_use.colour = card.preprocess.channels == 3 ? "colour" : "grey";
  card.tta = model::parse_flips(options.tta);
  // A model trained to ignore these flips is explained by the mean over them.
  card.heatmap_flips.clear();
  if (options.augment && options.hflip) card.heatmap_flips.push_back("hflip");
  if (options.augment && options.vflip) card.heatmap_flips.push_back("vflip");
  const auto views = model::tta_views(card.tta);
  if (!options.clinical.empty()) {
    card.clinical = model::clinical_spec_from_argument(options.clinical);
    const auto absent = absent_columns(train_set, card.clinical);
    if (!absent.empty()) {
      throw file_error(ErrorKind::kInvalidArgument, "cannot train on", options.data,
                       "--clinical names column '" + absent.front() + "', which the data has not (a CSV with path,label and the covariate columns is needed)");
    }
  }
  if (options.fusion != "joint" && options.fusion != "cross") {
    throw Error(ErrorKind::kInvalidArgument, "--fusion must be joint or cross (got '" + options.fusion + "')");
  }
  card.clinical_fusion = options.fusion;
  if (options.clinical_dropout < 0 || options.clinical_dropout >= 1) {
    throw Error(ErrorKind::kInvalidArgument, "--clinical-dropout must be in [0, 1)");
  }
  if (card.classes.size() < 2) throw file_error(ErrorKind::kInvalidArgument, "cannot train on", options.data, "needs at least 2 classes");
  // Validate the architecture against the image size before the expensive preparation (the
  // covariates' vocabularies are fitted below, and the card is validated again with them).
  {
    const auto fields = card.clinical;
    const auto fusion = card.clinical_fusion;
    card.clinical.clear();
    card = model::card_from_json(model::card_to_json(card), "train options");
    card.clinical = fields;
    card.clinical_fusion = fusion;
  }

  // --init: the encoder must fit this architecture; checked before the data are prepared.
  InitSource init = find_init(options.init);
  if (!init.path.empty()) {
    model::ModelCard image_only = card;
    image_only.clinical.clear();
    auto probe = model::build_net(image_only);
    model::load_encoder_weights(*probe, init.path, kFreshAtInit);
    torch::manual_seed(options.seed);  // the probe's initialisation does not count
  }

  TrainData data = split_training_data(options, train_set, card, on_notice);
  const Tensors& tr = data.tr;
  const Tensors& va = data.va;
  const int K = static_cast<int>(card.classes.size());
  const auto class_counts = torch::bincount(tr.y, {}, K).to(torch::kFloat32);

  TrainResult result;
  result.train_count = static_cast<int>(tr.size());
  result.val_count = static_cast<int>(va.size());
  const int64_t n = tr.size();
  const int64_t steps_per_epoch = n / options.batch_size + ((n % options.batch_size) >= 2 ? 1 : 0);
  const int64_t total_steps = steps_per_epoch * options.epochs;
  const int64_t warmup_steps = steps_per_epoch * std::min(options.warmup_epochs, options.epochs);
  AugmentOptions aug;
  aug.hflip = options.hflip;
  aug.vflip = options.vflip;
  aug.erase = options.erase;
  aug.multires = options.multires;
  aug.colour = card.preprocess.channels > 1;
  EpochSetup setup;
  setup.options = &options;
  setup.tr = &tr;
  setup.preprocess = &card.preprocess;
  setup.augment = aug;
  setup.class_counts = class_counts;
  setup.balance = balance;
  setup.warmup_steps = warmup_steps;
  setup.total_steps = total_steps;
  // One batch thread for the whole run. Its LibTorch operations run on it alone: a team of
  // intra-op threads of its own would compete with the training step's for the same cores.
  Worker batches([] {
    at::init_num_threads();
    omp_set_num_threads(1);
  });
  setup.batches = &batches;

  // Ensemble members are trained one after the other on the same split, member m from seed
  // `seed + m`; each finished member waits in OUT/checkpoint-members until the model is written,
  // so that --resume continues with the member that was interrupted.
  const fs::path staged_dir = fs::path(options.out) / "checkpoint-members";
  std::vector<model::AttnNet> nets;
  nlohmann::json member_notes = nlohmann::json::array();
  int resume_member = -1;  // the member whose checkpoint --resume continues (-1: none)
  if (options.resume) {
    for (int m = 0; m < options.members; ++m) {
      const auto weights = staged_dir / ("member-" + std::to_string(m + 1) + ".bin");
      const auto notes = staged_dir / ("member-" + std::to_string(m + 1) + ".json");
      std::error_code ec;
      if (!fs::exists(weights, ec) || !fs::exists(notes, ec)) break;
      auto net = model::build_net(card);
      model::load_weights(*net, weights.string());
      nets.push_back(net);
      member_notes.push_back(nlohmann::json::parse(read_file(notes.string())));
    }
    resume_member = checkpoint_member(options.out);
    if (resume_member != static_cast<int>(nets.size())) resume_member = -1;  // a finished member's leftover
    if (nets.empty() && resume_member < 0) {
      throw file_error(ErrorKind::kInvalidArgument, "cannot resume", options.out, "no checkpoint (train without --resume first)");
    }
    if (!nets.empty() && on_notice) on_notice(std::to_string(nets.size()) + " of " + std::to_string(options.members) + " ensemble members already trained");
  }
  Checkpoint state;
  for (int member = static_cast<int>(nets.size()); member < options.members; ++member) {
    // Member 0 draws from the seed set above, as a single model always has.
    if (member > 0) torch::manual_seed(options.seed + static_cast<uint64_t>(member));
    model::AttnNet net = model::build_net(card);
    if (!init.path.empty() && resume_member != member) {
      init.tensors = model::load_encoder_weights(*net, init.path, kFreshAtInit);
    }
    model::AttnNet best = model::build_net(card);
    model::AttnNet ema{nullptr};
    if (options.ema > 0) {
      ema = model::build_net(card);
      model::copy_weights(*ema, *net);
    }
    // The network that is validated, kept and shipped: the EMA of the weights when enabled.
    model::AttnNet& judged = options.ema > 0 ? ema : net;
    torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));
    state = Checkpoint();
    state.member = member;
    if (resume_member == member) {
      state = load_checkpoint(options.out, net, best, options.ema > 0 ? &ema : nullptr, optimizer, card);
      if (on_notice) {
        on_notice("resuming after epoch " + std::to_string(state.epoch) + (options.members > 1 ? " of member " + std::to_string(member + 1) : "") +
                  " (best so far: epoch " + std::to_string(state.best_epoch) + ")");
      }
    }
    for (int epoch = state.epoch + 1; epoch <= options.epochs; ++epoch) {
      if (options.patience > 0 && state.epochs_since_best >= options.patience) {
        if (on_notice) on_notice("early stop: validation AUC has not improved for " + std::to_string(options.patience) + " epochs");
        break;
      }
      const auto te = Clock::now();
      const EpochLoss epoch_loss = train_epoch(setup, net, options.ema > 0 ? &ema : nullptr, optimizer, state.step);
      const double loss_sum = epoch_loss.loss_sum;
      const int64_t seen = epoch_loss.seen;
      const double train_seconds = seconds_since(te);
      const auto metrics = eval::compute_metrics(eval::apply_temperature(logits_of({judged}, va.x, 128, va.c, views), labels_of(va.y), 1.0));
      EpochReport report;
      report.epoch = epoch;
      report.epochs = options.epochs;
      report.train_loss = loss_sum / static_cast<double>(std::max<int64_t>(1, seen));
      report.val_accuracy = metrics.accuracy;
      report.val_auc = metrics.auc;
      report.seconds = seconds_since(te);
      report.images_per_second = static_cast<double>(seen) / std::max(1e-9, train_seconds);
      report.member = member + 1;
      report.members = options.members;
      report.eta_seconds = report.seconds * ((options.epochs - epoch) + static_cast<double>(options.epochs) * (options.members - member - 1));
      const double auc = std::isnan(metrics.auc) ? 0.0 : metrics.auc;
      state.epoch = epoch;
      if (keep_last || auc > state.best_auc || (auc == state.best_auc && metrics.accuracy > state.best_acc)) {
        state.best_auc = auc;
        state.best_acc = metrics.accuracy;
        state.best_epoch = epoch;
        state.epochs_since_best = 0;
        model::copy_weights(*best, *judged);
        report.best = true;
      } else {
        ++state.epochs_since_best;
      }
      save_checkpoint(options.out, state, net, best, options.ema > 0 ? &ema : nullptr, optimizer, card);
      if (on_epoch) on_epoch(report);
    }
    best->eval();
    nets.push_back(best);
    nlohmann::json note = {{"seed", options.seed + static_cast<uint64_t>(member)}, {"best_epoch", state.best_epoch}, {"epochs_run", state.epoch},
                           {"val_auc", std::round(state.best_auc * 1e6) / 1e6}, {"val_accuracy", std::round(state.best_acc * 1e6) / 1e6}};
    member_notes.push_back(note);
    if (options.members > 1) {
      // Kept until the model is written; the checkpoint then belongs to the next member.
      std::error_code ec;
      fs::create_directories(staged_dir, ec);
      model::save_weights(*best, (staged_dir / ("member-" + std::to_string(member + 1) + ".bin")).string());
      write_file_atomic((staged_dir / ("member-" + std::to_string(member + 1) + ".json")).string(), note.dump(2));
      fs::remove_all(checkpoint_dir(options.out), ec);
    }
  }
  result.best_epoch = member_notes[0].at("best_epoch");
  const auto calibrated = calibrate(options, nets, va, views, card, result);
  result.seconds = seconds_since(t0);
  RunFacts facts;
  facts.keep_last = keep_last;
  facts.balance = balance;
  facts.augment = aug;
  facts.init = &init;
  facts.member_notes = member_notes;
  write_trained_model(options, nets, card, data, facts, calibrated, result, on_notice);
  // The run is complete: its checkpoints have served their purpose and must not ship with the model.
  std::error_code ec;
  fs::remove_all(checkpoint_dir(options.out), ec);
  fs::remove_all(staged_dir, ec);
  result.card = card;
  return result;
}

}  // namespace medattn::train
