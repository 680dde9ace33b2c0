// `medattn fit-ood`: fits the out-of-distribution gate of an existing model without retraining
// it. Torch-free.
#pragma once

#include <cstdint>
#include <string>

#include "model/ood.h"
#include "train/train.h"

namespace medattn::train {

struct FitOodOptions {
  std::string model_dir;         // REQUIRES: a loadable model
  std::string data;              // its training DATA (class folders, CSV or npz)
  std::string split;             // npz arrays / CSV split of the training data ("" = npz "train")
  std::string val_data;          // separate validation DATA; empty: val_split, else carved from `data`
  std::string val_split;         // split name for validation (npz "val", CSV split)
  double val_fraction = 0.2;     // as `train`: carve this stratified share when no validation data
  uint64_t seed = 1;             // as `train`: the seed of the carved split
  std::string group_regex;       // as `train`: patient id from the file name, for grouped splits
  double percentile = 98;        // threshold = this percentile of the validation scores
  double shrinkage = 0.01;       // of the shared covariance towards its diagonal
  std::string feature = model::kDefaultOodFeature;  // "cls" or "layers" (model/ood_features.h)
  int batch_size = 64;
  std::string command;           // the command line, stored in the card
};

struct FitOodResult {
  model::OodGate gate;
  int train_count = 0, val_count = 0;
  double val_coverage = 0;  // share of validation images at or below the threshold
};

// Reproduces the training/validation split of `train` with the same options, fits the gate on
// the training images' features, sets the threshold on the validation images', writes
// MODEL/ood.bin and the card (with its SHA-256). Throws medattn::Error: kModel (model),
// kInvalidArgument (data, options: a percentile outside (0, 100], an empty split).
FitOodResult run_fit_ood(const FitOodOptions& options, const NoticeCallback& on_notice);

}  // namespace medattn::train
