// `medattn pretrain`: self-supervised pretraining of the network's encoder (stem, tokens,
// transformer blocks, final norm) on unlabelled images, for `train --init`. Progress through
// callbacks; nothing here prints. Torch-free header.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/card.h"

namespace medattn::train {

struct PretrainOptions {
  // Image folders (searched recursively; any images, labels ignored), MedMNIST npz files or
  // CSVs with a `path` column.
  std::vector<std::string> data;
  std::string split = "train";  // npz arrays NAME_images / CSV rows of this split ("" = all CSV rows)
  int limit = 0;                // at most this many images per DATA, spread evenly (0 = all)
  std::string out;              // writes OUT/encoder.bin and OUT/pretrain.json
  // "mim": masked image modelling, the masked patches' pixels predicted from the tokens
  // (SimMIM, Xie et al. 2022); "dino": self-distillation of two augmented views with a
  // momentum teacher, centred and sharpened (Caron et al. 2021). mim is the default because it
  // learns from the first step at small budgets, where our measurement saw dino collapse to the
  // uniform distribution (loss ln K; docs/robustness.md).
  std::string objective = "mim";
  int epochs = 10;
  int batch_size = 64;
  double lr = 5e-4;
  double weight_decay = 0.04;
  int warmup_epochs = 1;
  uint64_t seed = 1;
  bool resume = false;           // continue from OUT/checkpoint
  int prototypes = 256;          // dino: output dimension of the projection head
  double teacher_momentum = 0.996;  // dino: start of the teacher's EMA (cosine to 1)
  double mask_ratio = 0.5;       // mim: share of the token grid masked
  model::ModelCard card;         // architecture, image size, channels, preprocessing
  std::string command;           // the exact command line, stored in pretrain.json
};

struct PretrainEpoch {
  int epoch = 0, epochs = 0;
  double loss = 0;
  double seconds = 0, images_per_second = 0, eta_seconds = 0;
};

struct PretrainResult {
  int images = 0;
  std::vector<double> losses;  // per epoch (all epochs, resumed ones included)
  double seconds = 0;
};

// The file names in OUT.
inline constexpr const char* kEncoderFile = "encoder.bin";
inline constexpr const char* kPretrainCard = "pretrain.json";

// Pretrains and writes OUT/encoder.bin (a weights file, model/net.h, of the whole network; its
// head is untrained and never loaded by --init) and OUT/pretrain.json (architecture,
// preprocessing, objective, data, losses, augmentation, command). A checkpoint is written
// atomically after every epoch; options.resume continues it exactly (same seed and data).
// Throws medattn::Error on unusable data or options.
PretrainResult run_pretrain(const PretrainOptions& options, const std::function<void(const PretrainEpoch&)>& on_epoch,
                            const std::function<void(const std::string&)>& on_notice);

// The pretraining augmentation's description (pretrain.json "augment"), whose families the
// shift benchmark counts as seen for a model initialised from it.
std::string describe_pretrain_augment();

}  // namespace medattn::train
