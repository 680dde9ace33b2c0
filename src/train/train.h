// `train` and `evaluate` as library calls. Progress is reported through callbacks; nothing
// here prints.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/metrics.h"
#include "eval/shift.h"
#include "explain/options.h"
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

struct EvaluateOptions {
  std::string model_dir;
  std::string data;
  std::string split;
  int batch_size = 64;
  std::string tta;  // empty: the card's test-time augmentation; else model::parse_flips overrides it
  std::string heatmap_flips;  // empty: the card's; else model::parse_flips ("none", "hflip,vflip")
  // Heatmap metrics (empty method: none). Maps explain the class each image is predicted as.
  std::string method;
  explain::ExplainOptions explain;
  std::string masks;                 // lesion masks at the same relative paths as DATA's images
  bool no_deletion = false;          // skip deletion/insertion (they cost 34 forward passes an image)
  bool randomization_check = false;  // cascading weight randomisation (Adebayo et al. 2018)
  int randomization_images = 32;     // images used by the randomisation check
  // Also write the card's heatmap_scale reference for the method (model/card.h): the median
  // over DATA's images (use the validation split) of each map's largest value in the method's
  // own units, what `diagnose --heatmap-scale model` divides by.
  bool calibrate_heatmap_scale = false;
  // > 0: evaluate only the validation split that `train --val-fraction F --seed N
  // [--group-regex RE]` carved from DATA (the same split, reproduced).
  double val_fraction = 0;
  uint64_t seed = 1;
  std::string group_regex;
  // Out-of-distribution sets for the gate (models with one): image files, folders (searched
  // recursively), npz or CSV datasets, each scored against DATA as the in-distribution set.
  std::vector<std::string> ood_data;
  int ood_limit = 2000;  // at most this many images per OOD set (evenly spread over the walk)
  // The shift benchmark (eval/shift.h): the evaluated images under the corruptions of
  // `shift_set` (empty: the set for the card's modalities) at five severities.
  bool shift = false;
  std::string shift_set;
  int shift_limit = 1000;    // at most this many images (evenly spread; 0 = all)
  uint64_t shift_seed = 1;   // the corruptions' random draws
  // Data whose classes merge the model's (eval/model_checks.h): "no=notumor,yes=glioma+...".
  // The data's class of an image is scored by the sum of its model classes' probabilities, and
  // decided by argmax over the data's classes. Empty: the data has the model's classes.
  std::string class_map;
};

// The abstention gate (scope checks and the OOD score) measured on DATA and on OOD sets.
struct OodSetMetrics {
  std::string data;
  int n = 0;
  double auroc = 0, fpr95 = 0;                // of the Mahalanobis score, OOD = positive
  double auroc_energy = 0, fpr95_energy = 0;  // the same for the energy of the logits
  double abstention = 0;  // share diagnose would abstain on (scope checks or score above the threshold)
};

struct GateMetrics {
  bool enabled = false;       // the model has a gate
  int n = 0;                  // DATA's samples
  int scope_abstained = 0;    // of them refused by a scope check
  int gate_abstained = 0;     // of the rest, refused by the score
  double coverage = 0;        // share of DATA not abstained
  double selective_accuracy = 0, selective_auc = 0;  // on the covered samples (card decision rule)
  // Area under the risk-coverage curve: samples ranked by the OOD score, risk = error rate of
  // the kept ones, averaged over every coverage 1/n..1 (lower is better).
  double aurc = 0;
  std::vector<OodSetMetrics> ood;  // per EvaluateOptions::ood_data
  OodSetMetrics pooled;            // all OOD sets together (data = "all")
};

struct HeatmapMetrics {
  std::string method;
  int images = 0;                // images explained
  int masked = 0;                // images with a non-empty lesion mask
  double pointing_game = -1;     // share of masked images whose map maximum is in the lesion (-1: none)
  double heatmap_iou = -1;       // mean IoU of the top |mask| pixels with the mask (-1: none)
  double deletion_auc = -1;      // mean; lower is better (-1: not computed)
  double insertion_auc = -1;     // mean; higher is better
  std::vector<explain::RandomizationStep> randomization;
  double randomization_floor = -2;  // two independent random networks' correlation (-2: not computed)
  double scale_reference = -1;      // written by calibrate_heatmap_scale (-1: not computed)
};

struct EvaluateResult {
  std::vector<std::string> classes;
  eval::Metrics metrics;
  eval::Predictions predictions;  // calibrated probabilities and labels, per readable sample
  double threshold = -1.0;        // the card's decision threshold (negative: argmax)
  std::vector<std::string> tta;   // the test-time flips whose logits were averaged (empty: none)
  HeatmapMetrics heatmaps;        // when EvaluateOptions::method is set
  // Models with clinical covariates: the mean share of CLS attention rollout per covariate
  // (card order), and the metrics when one covariate ("age", ...) or all of them ("all") are
  // hidden (treated as missing) for every sample: what each covariate is worth.
  std::vector<std::pair<std::string, double>> clinical_attention;
  std::vector<std::pair<std::string, eval::Metrics>> clinical_ablation;
  int skipped = 0;  // samples that could not be read (reported as notices)
  GateMetrics gate;  // when the model has an OOD gate
  bool has_shift = false;
  eval::ShiftResult shift;  // when EvaluateOptions::shift
  std::vector<std::string> model_classes;  // the model's own classes (differ from `classes` with a class map)
  // eval::model_warnings(): no better than chance, a class never predicted, a temperature at
  // its bound. Also given to the notice callback.
  std::vector<std::string> warnings;
};

// Runs the model over a labelled dataset. Classes are matched to the model's by name,
// case-insensitively (or to the data classes of options.class_map); a class the model does not
// know is an error naming it. With options.masks and no options.method, the heatmaps are
// measured with diagnose's default method, saliency (a notice says so).
EvaluateResult run_evaluate(const EvaluateOptions& options, const NoticeCallback& on_notice);

}  // namespace medattn::train
