// `train` and `evaluate` as library calls. Progress is reported through callbacks; nothing
// here prints.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/metrics.h"
#include "model/card.h"

namespace medattn::train {

struct TrainOptions {
  std::string data;                 // class folders, CSV or npz (io/dataset.h)
  std::string split = "";           // npz arrays / CSV split of the training data ("" = npz "train")
  std::string val_data;             // separate validation DATA; empty: carve from `data`
  std::string val_split;            // split name for validation (npz "val", CSV split)
  double val_fraction = 0.2;        // stratified share of `data` held out when no val data
  std::string out;                  // model directory to write
  std::vector<std::string> classes; // class names (npz labels; folders matched case-insensitively)
  int epochs = 10;
  int batch_size = 32;
  double lr = 1e-3;
  double weight_decay = 0.05;
  int warmup_epochs = 1;            // linear warm-up, then cosine decay to 0
  uint64_t seed = 1;
  bool augment = true;              // small shifts and brightness/contrast jitter
  bool calibrate = true;            // fit a softmax temperature on validation
  std::string operating_point;      // binary: "balanced" or "sensitivity=X"; empty = argmax
  model::ModelCard card;            // name, image size, preprocessing, architecture
  std::string command;              // the exact command line, stored in the card
};

struct EpochReport {
  int epoch = 0, epochs = 0;
  double train_loss = 0;
  double val_accuracy = 0, val_auc = 0;
  double seconds = 0, images_per_second = 0, eta_seconds = 0;
  bool best = false;
};

struct TrainResult {
  model::ModelCard card;  // as written, with validation metrics
  int best_epoch = 0;
  eval::Metrics validation;  // of the kept epoch, calibrated, under the card's decision rule
  double ece_before = 0;     // validation ECE before temperature scaling
  int train_count = 0, val_count = 0;
  double seconds = 0;
};

using EpochCallback = std::function<void(const EpochReport&)>;
using NoticeCallback = std::function<void(const std::string&)>;

// Trains with AdamW on class-weighted cross-entropy, keeps the epoch with the best
// validation AUC (accuracy breaks ties) and writes it to options.out. Throws medattn::Error
// on unusable data or options.
TrainResult run_train(const TrainOptions& options, const EpochCallback& on_epoch,
                      const NoticeCallback& on_notice);

struct EvaluateOptions {
  std::string model_dir;
  std::string data;
  std::string split;
  int batch_size = 64;
};

struct EvaluateResult {
  std::vector<std::string> classes;
  eval::Metrics metrics;
  eval::Predictions predictions;  // calibrated probabilities and labels, per readable sample
  double threshold = -1.0;        // the card's decision threshold (negative: argmax)
  int skipped = 0;  // samples that could not be read (reported as notices)
};

// Runs the model over a labelled dataset. Classes are matched to the model's by name,
// case-insensitively; a class the model does not know is an error naming it.
EvaluateResult run_evaluate(const EvaluateOptions& options, const NoticeCallback& on_notice);

}  // namespace medattn::train
