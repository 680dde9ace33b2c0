#include "train/train.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <future>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <functional>
#include <sstream>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/sha256.h"
#include "eval/model_checks.h"
#include "eval/report.h"
#include "io/dataset.h"
#include "io/image.h"
#include "model/net.h"
#include "preprocess/preprocess.h"
#include "train/augment.h"
#include "train/loss.h"
#include "model/ood.h"
#include "train/samples.h"
#include "train/pretrain.h"

namespace medattn::train {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Everything needed to continue an interrupted run exactly where it stopped.
struct Checkpoint {
  int epoch = 0;  // epochs completed
  int64_t step = 0;
  double best_auc = -1, best_acc = -1;
  int best_epoch = 0;
  int epochs_since_best = 0;
  int member = 0;  // the ensemble member being trained (0 = the first)
};

std::string checkpoint_dir(const std::string& out) { return (fs::path(out) / "checkpoint").string(); }

// Writes the checkpoint atomically: every file goes to a fresh folder that replaces the
// old one by rename, so a kill at any moment leaves the previous or the new checkpoint.
void save_checkpoint(const std::string& out, const Checkpoint& c, model::AttnNet& net, model::AttnNet& best,
                     model::AttnNet* ema, torch::optim::AdamW& optimizer, const model::ModelCard& card) {
  write_checkpoint_dir(checkpoint_dir(out), [&](const std::string& folder) {
    const fs::path tmp = folder;
    model::save_weights(*net, (tmp / "net.bin").string());
    model::save_weights(*best, (tmp / "best.bin").string());
    if (ema != nullptr) model::save_weights(**ema, (tmp / "ema.bin").string());
    torch::save(optimizer, (tmp / "optimizer.pt").string());
    save_rng_state((tmp / "rng.pt").string());
    nlohmann::json j = {{"epoch", c.epoch}, {"step", c.step}, {"best_auc", c.best_auc}, {"best_acc", c.best_acc},
                        {"best_epoch", c.best_epoch}, {"epochs_since_best", c.epochs_since_best}, {"member", c.member},
                        {"architecture", model::card_to_json(card)["architecture"]},
                        {"input", model::card_to_json(card)["input"]}, {"classes", card.classes}};
    write_file_atomic((tmp / "state.json").string(), j.dump(2));
  });
}

// The ensemble member whose checkpoint OUT holds; -1 when there is none.
int checkpoint_member(const std::string& out) {
  fs::path dir = checkpoint_dir(out);
  std::error_code ec;
  if (!fs::exists(dir / "state.json", ec) && fs::exists(dir.string() + ".old/state.json", ec)) dir = dir.string() + ".old";
  if (!fs::exists(dir / "state.json", ec)) return -1;
  try {
    return nlohmann::json::parse(read_file((dir / "state.json").string())).value("member", 0);
  } catch (const std::exception&) {
    return -1;
  }
}

Checkpoint load_checkpoint(const std::string& out, model::AttnNet& net, model::AttnNet& best, model::AttnNet* ema,
                           torch::optim::AdamW& optimizer, const model::ModelCard& card) {
  fs::path dir = checkpoint_dir(out);
  std::error_code ec;
  // A kill between the two renames of save_checkpoint leaves only the ".old" copy.
  if (!fs::exists(dir / "state.json", ec) && fs::exists(dir.string() + ".old/state.json", ec)) dir = dir.string() + ".old";
  if (!fs::exists(dir / "state.json", ec)) {
    throw file_error(ErrorKind::kInvalidArgument, "cannot resume", out, "no checkpoint (train without --resume first)");
  }
  const auto j = nlohmann::json::parse(read_file((dir / "state.json").string()));
  const auto want = model::card_to_json(card);
  if (j.value("architecture", nlohmann::json()) != want["architecture"] || j.value("input", nlohmann::json()) != want["input"] ||
      j.value("classes", nlohmann::json()) != nlohmann::json(card.classes)) {
    throw file_error(ErrorKind::kInvalidArgument, "cannot resume", out,
                     "the checkpoint was made with another architecture, input size or classes");
  }
  model::load_weights(*net, (dir / "net.bin").string());
  model::load_weights(*best, (dir / "best.bin").string());
  if (ema != nullptr) {
    if (!fs::exists(dir / "ema.bin", ec)) throw file_error(ErrorKind::kInvalidArgument, "cannot resume", out, "the checkpoint has no EMA weights (--ema differs)");
    model::load_weights(**ema, (dir / "ema.bin").string());
  }
  torch::load(optimizer, (dir / "optimizer.pt").string());
  load_rng_state((dir / "rng.pt").string());
  Checkpoint c;
  c.epoch = j.at("epoch");
  c.step = j.at("step");
  c.best_auc = j.at("best_auc");
  c.best_acc = j.at("best_acc");
  c.best_epoch = j.at("best_epoch");
  c.epochs_since_best = j.at("epochs_since_best");
  c.member = j.value("member", 0);
  return c;
}

// ema = decay * ema + (1 - decay) * net for parameters; buffers (BatchNorm statistics) copied.
void update_ema(model::AttnNet& ema, model::AttnNet& net, double decay) {
  torch::NoGradGuard no_grad;
  auto e = ema->parameters(), p = net->parameters();
  for (size_t i = 0; i < e.size(); ++i) e[i].mul_(decay).add_(p[i], 1.0 - decay);
  auto eb = ema->buffers(), pb = net->buffers();
  for (size_t i = 0; i < eb.size(); ++i) eb[i].copy_(pb[i]);
}

// One training batch: augmented inputs, labels, covariates (undefined without).
struct Batch {
  torch::Tensor x, y, c;
  std::optional<Mixed> mix;  // set when the images were blended (--mixup)
};

// Layers that --init leaves as initialised: the head, and the covariate layers a pretrained
// image encoder has not got.
const std::vector<std::string> kFreshAtInit = {"head.", "clinical_tokens.", "cross."};

// Where --init takes the encoder from.
struct InitSource {
  std::string dir, path;  // path: DIR/encoder.bin or DIR/weights.bin; empty: no --init
  nlohmann::json pretrain = nlohmann::json::object();  // DIR/pretrain.json when present
  int tensors = 0;  // copied into the network (set when loaded)
};

InitSource find_init(const std::string& dir) {
  InitSource s;
  if (dir.empty()) return s;
  s.dir = dir;
  std::error_code ec;
  const fs::path encoder = fs::path(dir) / kEncoderFile, weights = fs::path(dir) / model::kWeightsFile;
  if (fs::is_regular_file(encoder, ec)) {
    s.path = encoder.string();
    const auto card = fs::path(dir) / kPretrainCard;
    if (fs::is_regular_file(card, ec)) {
      try {
        s.pretrain = nlohmann::json::parse(read_file(card.string()));
      } catch (const nlohmann::json::exception& e) {
        throw file_error(ErrorKind::kInvalidArgument, "cannot initialise from", card.string(), std::string("not JSON: ") + e.what());
      }
    }
  } else if (fs::is_regular_file(weights, ec)) {
    s.path = weights.string();
  } else {
    throw file_error(ErrorKind::kInvalidArgument, "cannot initialise from", dir,
                     std::string("no ") + kEncoderFile + " (medattn pretrain) or " + model::kWeightsFile + " (a model)");
  }
  return s;
}

nlohmann::json describe_init(const InitSource& s) {
  nlohmann::json j = {{"from", s.dir}, {"file", fs::path(s.path).filename().string()}, {"sha256", sha256_file(s.path)},
                      {"tensors", s.tensors}};
  for (const char* key : {"objective", "data", "images", "epochs", "augment", "command"}) {
    if (s.pretrain.contains(key)) j[key] = s.pretrain[key];
  }
  return j;
}

}  // namespace

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

  io::DatasetOptions dopt;
  dopt.classes = options.classes;
  dopt.split = options.split;
  io::Dataset train_set = io::load_dataset(options.data, dopt);
  for (const auto& n : train_set.notices) if (on_notice) on_notice(n);
  if (group_regex) {
    // Patient groups from file names, e.g. "person(\d+)_" for the Kermany chest X-rays.
    for (auto& s : train_set.samples) {
      std::smatch m;
      const std::string name = fs::path(s.path).filename().string();
      if (std::regex_search(name, m, *group_regex)) s.group = m.size() > 1 ? m[1].str() : m[0].str();
    }
  }
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

  Tensors all = prepare_samples(train_set, card.preprocess, on_notice);
  Tensors tr, va;
  io::Dataset val_set;
  const io::Dataset* val_source = &train_set;
  int64_t duplicates = 0, overlap = 0;
  if (!options.val_data.empty() || !options.val_split.empty()) {
    io::DatasetOptions vopt;
    vopt.classes = card.classes;
    vopt.split = options.val_split;
    val_set = io::load_dataset(options.val_data.empty() ? options.data : options.val_data, vopt);
    val_source = &val_set;
    tr = all;
    va = prepare_samples(val_set, card.preprocess, on_notice);
    const std::set<uint64_t> in_train(tr.hashes.begin(), tr.hashes.end());
    for (auto h : va.hashes) overlap += in_train.count(h);
    if (overlap > 0 && on_notice) {
      on_notice(std::to_string(overlap) + " validation image(s) are exact copies of training images; validation figures are flattered by them");
    }
  } else {
    duplicates = count_duplicates(all.hashes);
    if (duplicates > 0 && on_notice) {
      on_notice(std::to_string(duplicates) + " training image(s) are exact copies of others; each set of copies is kept on one side of the validation split");
    }
    auto [ti, vi] = split_indices(all, options.val_fraction, options.seed);
    tr = select_rows(all, ti);
    va = select_rows(all, vi);
  }
  all = Tensors();
  if (!card.clinical.empty()) {
    // Normalisation and vocabularies from the training rows only.
    model::fit_clinical(card.clinical, clinical_rows(train_set, tr, card.clinical));
    card = model::card_from_json(model::card_to_json(card), "train options");
    encode_tensors(tr, train_set, card.clinical);
    const int unknown = encode_tensors(va, *val_source, card.clinical);
    if (unknown > 0 && on_notice) {
      on_notice(std::to_string(unknown) + " validation covariate value(s) are categories unseen in training or not numbers: treated as missing");
    }
  }
  if (tr.size() == 0 || va.size() == 0) throw file_error(ErrorKind::kInvalidArgument, "cannot train on", options.data, "the training or validation split is empty");

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
  aug.colour = card.preprocess.channels > 1;

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
      net->train();
      auto perm = torch::randperm(n, torch::kInt64);
      // The next batch is drawn and augmented on a second thread while this one trains.
      auto make_batch = [&](int64_t s) {
        const int64_t e = std::min(n, s + options.batch_size);
        auto idx = perm.slice(0, s, e);
        auto xb = tr.x.index_select(0, idx);
        if (options.augment) xb = augment(xb, card.preprocess, aug);
        torch::Tensor cb;
        if (tr.c.defined()) {
          // Covariate dropout: some values are hidden, so that the model learns to do without
          // any of them at diagnosis time.
          cb = tr.c.index_select(0, idx);
          if (options.clinical_dropout > 0) {
            cb = torch::where(torch::rand(cb.sizes()) < options.clinical_dropout,
                              torch::full_like(cb, std::numeric_limits<float>::quiet_NaN()), cb);
          }
        }
        std::optional<Mixed> mix;
        if (options.mixup > 0) {
          // Drawn here, on the batch thread, so that the random stream stays in one order.
          mix = mixup(xb, options.mixup);
          xb = mix->x;
        }
        return Batch{xb, tr.y.index_select(0, idx), cb, mix};
      };
      double loss_sum = 0;
      int64_t seen = 0;
      std::future<Batch> next = std::async(std::launch::async, make_batch, 0);
      for (int64_t s = 0; s < n; s += options.batch_size) {
        auto [xb, yb, cb, mix] = next.get();
        if (s + options.batch_size < n) next = std::async(std::launch::async, make_batch, s + options.batch_size);
        if (xb.size(0) < 2) continue;  // BatchNorm needs two samples
        const int64_t step = state.step;
        const double lr = step < warmup_steps
            ? options.lr * static_cast<double>(step + 1) / warmup_steps
            : options.lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step - warmup_steps) /
                                               std::max<int64_t>(1, total_steps - warmup_steps)));
        for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
        optimizer.zero_grad();
        const auto logits = net->forward(xb, false, cb).logits;
        auto loss = mix ? mixup_loss(logits, yb, *mix, class_counts, balance, options.label_smoothing)
                        : training_loss(logits, yb, class_counts, balance, options.label_smoothing);
        loss.backward();
        optimizer.step();
        if (options.ema > 0) {
          // Warm-up of the average: early steps use a smaller decay.
          update_ema(ema, net, std::min(options.ema, (1.0 + step) / (10.0 + step)));
        }
        loss_sum += loss.item<double>() * static_cast<double>(xb.size(0));
        seen += xb.size(0);
        ++state.step;
      }
      const auto metrics = eval::compute_metrics(eval::apply_temperature(logits_of({judged}, va.x, 128, va.c, views), labels_of(va.y), 1.0));
      EpochReport report;
      report.epoch = epoch;
      report.epochs = options.epochs;
      report.train_loss = loss_sum / static_cast<double>(std::max<int64_t>(1, seen));
      report.val_accuracy = metrics.accuracy;
      report.val_auc = metrics.auc;
      report.seconds = seconds_since(te);
      report.images_per_second = static_cast<double>(seen) / std::max(1e-9, report.seconds);
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
  result.seconds = seconds_since(t0);
  card.training["data"] = {{"train", options.data}, {"split", options.split},
                           {"validation", options.val_data.empty() && options.val_split.empty()
                                              ? describe_split(options.val_fraction, options.seed) +
                                                    (options.group_regex.empty() ? "" : ", grouped by " + options.group_regex)
                                              : (options.val_data.empty() ? options.data : options.val_data) + (options.val_split.empty() ? "" : " split " + options.val_split)},
                           {"train_images", result.train_count}, {"val_images", result.val_count},
                           {"exact_duplicates", duplicates}, {"val_copies_of_train", overlap}};
  card.training["command"] = options.command;
  card.training["epochs"] = options.epochs;
  card.training["epochs_run"] = member_notes[0].at("epochs_run");
  card.training["best_epoch"] = result.best_epoch;
  card.training["selection"] = keep_last ? "last epoch" : "best validation AUC (accuracy breaks ties)";
  card.training["batch_size"] = options.batch_size;
  card.training["optimizer"] = {{"name", "AdamW"}, {"lr", options.lr}, {"weight_decay", options.weight_decay},
                                {"schedule", "linear warm-up " + std::to_string(options.warmup_epochs) + " epoch(s), cosine decay"}};
  card.training["loss"] = {{"name", describe_loss(balance)}, {"balance", balance_name(balance)}, {"label_smoothing", options.label_smoothing},
                           {"mixup", options.mixup}};
  card.training["ema"] = options.ema;
  if (!init.path.empty()) card.training["init"] = describe_init(init);
  if (!card.clinical.empty()) {
    card.training["clinical"] = {{"columns", options.clinical}, {"dropout", options.clinical_dropout}, {"fusion", options.fusion}};
  }
  card.training["augment"] = options.augment ? nlohmann::json(describe_augment(aug)) : nlohmann::json(false);
  card.training["seed"] = options.seed;
  if (options.members > 1) {
    // Each member's own figures (uncalibrated, on the same validation split) beside the ensemble's.
    card.training["ensemble"] = {{"members", options.members}, {"seeds", "seed + member index (from 0)"}, {"member_validation", member_notes}};
  }
  card.training["seconds"] = std::round(result.seconds);
  card.training["threads"] = at::get_num_threads();
  card.validation = eval::metrics_to_json(result.validation, card.classes);
  card.validation["ece_before_calibration"] = std::round(result.ece_before * 1e6) / 1e6;
  card.validation["ece_if_calibrated"] = eval::calibrated_ece_to_json(eval::ece_if_calibrated(calibrated));
  if (!result.warnings.empty()) card.validation["warnings"] = result.warnings;
  model::save_model(options.out, card, nets);
  if (options.ood_percentile <= 0 || va.size() < min_gate_validation(options.ood_percentile)) {
    // A sidecar of an earlier model in the same directory does not belong to this one.
    std::error_code ec;
    fs::remove(fs::path(options.out) / model::kOodFile, ec);
  }
  if (options.ood_percentile > 0 && va.size() < min_gate_validation(options.ood_percentile)) {
    if (on_notice) {
      on_notice("no OOD gate: " + std::to_string(va.size()) + " validation image(s) cannot set a threshold at the " +
                std::to_string(static_cast<int>(options.ood_percentile)) + "th percentile (at least " +
                std::to_string(min_gate_validation(options.ood_percentile)) + " needed)");
    }
  } else if (options.ood_percentile > 0) {
    // The out-of-distribution gate, on the same split (model/ood.h); the card is written again
    // with the gate's sidecar and digest.
    model::ModelCard written = model::read_card(options.out);
    fit_gate_on(nets, written, tr, va, options.ood_percentile, /*shrinkage=*/0.01, model::kDefaultOodFeature, options.out);
    written.ood.fit["train"] = options.data + (options.split.empty() ? "" : " split " + options.split);
    written.ood.fit["validation"] = card.training["data"]["validation"];
    written.ood.fit["command"] = options.command;
    model::write_card(options.out, written);
    card = written;
  }
  // The run is complete: its checkpoints have served their purpose and must not ship with the model.
  std::error_code ec;
  fs::remove_all(checkpoint_dir(options.out), ec);
  fs::remove_all(staged_dir, ec);
  result.card = card;
  return result;
}

}  // namespace medattn::train
