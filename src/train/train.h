// `train` as a library call. Progress is reported through callbacks; nothing
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
  bool augment = true;              // geometric + photometric augmentation (see train.cpp)
  bool hflip = false;               // also flip horizontally (off: anatomy has a side)
  bool vflip = false;               // also flip vertically (e.g. dermoscopy)
  std::string clinical;             // covariate columns of a CSV, "age:num,sex:cat" (empty: image only)
  double clinical_dropout = 0.2;    // share of covariate values hidden in each training batch
  std::string fusion = "joint";     // how covariates meet the image: joint or cross (model::ModelCard)
  double label_smoothing = 0.0;     // cross-entropy label smoothing in [0,1)
  double erase = 0.0;               // random erasing probability (train/augment.h; 0 = off)
  double multires = 0.0;            // multi-resolution training probability (train/augment.h; 0 = off)
  double mixup = 0.0;               // mixup Beta(alpha, alpha) blending of training images (0 = off; train/loss.h)
  std::string balance = "weights";  // class imbalance in the loss: weights, logit-adjust, none (train/loss.h)
  double ema = 0.0;                 // exponential moving average of the weights (0 = off), e.g. 0.999
  std::string select = "best-auc";  // the epoch kept: "best-auc" (best validation AUC) or "last"
  int patience = 0;                 // early stop after this many epochs without a better val AUC (0 = off)
  std::string group_regex;          // patient id from the file name (first capture group), for grouped splits
  bool resume = false;              // continue from OUT/checkpoint
  // Start every network from a pretrained encoder: DIR/encoder.bin (medattn pretrain) or
  // DIR/weights.bin (another model); all tensors but the head (and covariate layers) must match
  // the architecture. Empty: random initialisation.
  std::string init;
  int members = 1;                  // ensemble: networks trained one after the other (seeds seed,
                                    // seed+1, ...) whose mean logits are the model's
  bool calibrate = true;            // fit a softmax temperature on validation
  std::string operating_point;      // binary: "balanced" or "sensitivity=X"; empty = argmax
  std::string tta;                  // test-time flips stored in the card (model::parse_flips): validation,
                                    // calibration and later diagnoses average the logits over them
  // Out-of-distribution gate fitted at the end (model/ood.h): the threshold is this percentile
  // of the validation images' scores; 0 = no gate. Left out, with a notice, when validation has
  // fewer than 100 / (100 - P) images (50 for the 98th percentile).
  double ood_percentile = 98;
  model::ModelCard card;            // name, image size, preprocessing, architecture, intended use
  std::string command;              // the exact command line, stored in the card
};

struct EpochReport {
  int epoch = 0, epochs = 0;
  int member = 1, members = 1;  // which ensemble member is training
  double train_loss = 0;
  double val_accuracy = 0, val_auc = 0;
  double seconds = 0, eta_seconds = 0;  // the whole epoch: training, validation, checkpoint
  double images_per_second = 0;         // training images per second of the training pass alone
  bool best = false;
};

struct TrainResult {
  model::ModelCard card;  // as written, with validation metrics
  int best_epoch = 0;
  eval::Metrics validation;  // of the kept epoch, calibrated, under the card's decision rule
  double ece_before = 0;     // validation ECE before temperature scaling
  int train_count = 0, val_count = 0;
  double seconds = 0;
  std::vector<std::string> warnings;  // eval::model_warnings() on validation (also in the card)
};

using EpochCallback = std::function<void(const EpochReport&)>;
using NoticeCallback = std::function<void(const std::string&)>;

// Trains with AdamW (warm-up, cosine decay) on cross-entropy balanced as options.balance says,
// keeps the epoch with the best validation AUC (accuracy breaks ties; with options.select
// "last", the last epoch), fits a temperature and optionally a decision threshold on
// validation, and writes the model to options.out. A checkpoint is
// written atomically to OUT/checkpoint after every epoch; options.resume continues from it
// with the same optimizer and random state. Throws medattn::Error on unusable data or
// options.
TrainResult run_train(const TrainOptions& options, const EpochCallback& on_epoch,
                      const NoticeCallback& on_notice);

}  // namespace medattn::train
