// The parts of run_train (train/train.h) in their own files: the checkpoint (checkpoint.cpp),
// the --init encoder (init.cpp), the data and its validation split (train_data.cpp), one
// epoch (epoch.cpp), calibration and the written model (finish.cpp). Internal to train/
// (includes LibTorch through model/net.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "core/worker.h"
#include "model/card.h"
#include "model/net.h"
#include "train/augment.h"
#include "train/loss.h"
#include "train/samples.h"
#include "train/train.h"

namespace medattn::train {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ---- checkpoint.cpp

// Everything needed to continue an interrupted run exactly where it stopped.
struct Checkpoint {
  int epoch = 0;  // epochs completed
  int64_t step = 0;
  double best_auc = -1, best_acc = -1;
  int best_epoch = 0;
  int epochs_since_best = 0;
  int member = 0;  // the ensemble member being trained (0 = the first)
};

// OUT/checkpoint.
std::string checkpoint_dir(const std::string& out);

// Writes the checkpoint atomically: every file goes to a fresh folder that replaces the
// old one by rename, so a kill at any moment leaves the previous or the new checkpoint.
void save_checkpoint(const std::string& out, const Checkpoint& c, model::AttnNet& net, model::AttnNet& best,
                     model::AttnNet* ema, torch::optim::AdamW& optimizer, const model::ModelCard& card);

// The ensemble member whose checkpoint OUT holds; -1 when there is none.
int checkpoint_member(const std::string& out);

// Restores the networks, optimizer and random state. Throws Error(kInvalidArgument) "cannot
// resume 'OUT': ..." without a checkpoint or with one of another architecture, input or classes.
Checkpoint load_checkpoint(const std::string& out, model::AttnNet& net, model::AttnNet& best, model::AttnNet* ema,
                           torch::optim::AdamW& optimizer, const model::ModelCard& card);

// ---- init.cpp

// Layers that --init leaves as initialised: the head, and the covariate layers a pretrained
// image encoder has not got.
extern const std::vector<std::string> kFreshAtInit;

// Where --init takes the encoder from.
struct InitSource {
  std::string dir, path;  // path: DIR/encoder.bin or DIR/weights.bin; empty: no --init
  nlohmann::json pretrain = nlohmann::json::object();  // DIR/pretrain.json when present
  int tensors = 0;  // copied into the network (set when loaded)
};

// Empty `dir`: no --init. Throws Error(kInvalidArgument) when DIR has neither file.
InitSource find_init(const std::string& dir);

// The card's training.init block.
nlohmann::json describe_init(const InitSource& s);

// ---- train_data.cpp

// options.data read as a dataset, with patient groups from the file names by `group_regex`.
io::Dataset load_training_set(const TrainOptions& options, const std::optional<std::regex>& group_regex,
                              const NoticeCallback& on_notice);

// The prepared training and validation rows.
struct TrainData {
  Tensors tr, va;
  int64_t duplicates = 0;  // exact copies within the data (carved validation)
  int64_t overlap = 0;     // validation images that are copies of training images (separate validation)
};

// Prepares train_set with the card's preprocessing and takes the validation rows from
// options.val_data / val_split or carves them (stratified, seeded, groups and duplicates on one
// side); fits the covariates' normalisation on the training rows (card.clinical) and encodes
// both. Throws Error(kInvalidArgument) when either side is empty.
TrainData split_training_data(const TrainOptions& options, const io::Dataset& train_set, model::ModelCard& card,
                              const NoticeCallback& on_notice);

// ---- epoch.cpp

// ema = decay * ema + (1 - decay) * net for parameters; buffers (BatchNorm statistics) copied.
void update_ema(model::AttnNet& ema, model::AttnNet& net, double decay);

// What one epoch needs besides the networks.
struct EpochSetup {
  const TrainOptions* options = nullptr;
  const Tensors* tr = nullptr;
  const preprocess::PreprocessConfig* preprocess = nullptr;
  AugmentOptions augment;
  torch::Tensor class_counts;  // [K] float, training rows per class
  Balance balance = Balance::kWeights;
  int64_t warmup_steps = 0, total_steps = 0;  // linear warm-up, then cosine decay to 0
  Worker* batches = nullptr;  // prepares the next batch while one trains (one per run)
};

struct EpochLoss {
  double loss_sum = 0;  // sum over the samples of the batch mean loss
  int64_t seen = 0;     // samples trained on
};

// One epoch of AdamW on the rows of setup.tr in a fresh random order; step counts optimizer
// steps over the whole run (the schedule's position). ema: updated after every step when set.
// Each batch is prepared on setup.batches while the one before it trains (no thread started).
EpochLoss train_epoch(const EpochSetup& setup, model::AttnNet& net, model::AttnNet* ema,
                      torch::optim::AdamW& optimizer, int64_t& step);

// ---- finish.cpp

// Fits the temperature (options.calibrate) and the operating point on the validation logits of
// the ensemble's mean, and sets result.validation, ece_before and warnings. Returns the
// calibrated validation predictions.
eval::Predictions calibrate(const TrainOptions& options, const std::vector<model::AttnNet>& nets, const Tensors& va,
                            const std::vector<int>& views, model::ModelCard& card, TrainResult& result);

// How the run went, for the card.
struct RunFacts {
  bool keep_last = false;
  Balance balance = Balance::kWeights;
  AugmentOptions augment;
  const InitSource* init = nullptr;
  nlohmann::json member_notes;  // per member: seed, best_epoch, epochs_run, val_auc, val_accuracy
};

// Fills the card's training and validation blocks, writes the model to options.out, then fits
// the OOD gate (or removes a stale one, with a notice when validation is too small).
void write_trained_model(const TrainOptions& options, const std::vector<model::AttnNet>& nets, model::ModelCard& card,
                         const TrainData& data, const RunFacts& facts, const eval::Predictions& calibrated,
                         TrainResult& result, const NoticeCallback& on_notice);

}  // namespace medattn::train
