// `evaluate` as a library call: a model measured on labelled data (metrics, abstention gate,
// shift benchmark, clinical covariates' worth, heatmap metrics). eval/report.h turns the result
// into the evaluate JSON and table. Progress and problems go to the notice callback; nothing
// here prints.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eval/metrics.h"
#include "eval/shift.h"
#include "explain/options.h"

namespace medattn::eval {

using NoticeCallback = std::function<void(const std::string&)>;

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
  std::optional<double> pointing_game;  // share of masked images whose map maximum is in the lesion (none: no masked image)
  std::optional<double> heatmap_iou;    // mean IoU of the top |mask| pixels with the mask (none: no masked image)
  std::optional<double> deletion_auc;   // mean; lower is better (none: not computed)
  std::optional<double> insertion_auc;  // mean; higher is better (none: not computed)
  std::vector<explain::RandomizationStep> randomization;
  std::optional<double> randomization_floor;  // two independent random networks' correlation (none: not computed)
  std::optional<double> scale_reference;      // written by calibrate_heatmap_scale (none: not computed)
};

struct EvaluateResult {
  std::vector<std::string> classes;
  Metrics metrics;
  Predictions predictions;  // calibrated probabilities and labels, per readable sample
  double threshold = -1.0;        // the card's decision threshold (negative: argmax)
  std::vector<std::string> tta;   // the test-time flips whose logits were averaged (empty: none)
  HeatmapMetrics heatmaps;        // when EvaluateOptions::method is set
  // Models with clinical covariates: the mean share of CLS attention rollout per covariate
  // (card order), and the metrics when one covariate ("age", ...) or all of them ("all") are
  // hidden (treated as missing) for every sample: what each covariate is worth.
  std::vector<std::pair<std::string, double>> clinical_attention;
  std::vector<std::pair<std::string, Metrics>> clinical_ablation;
  int skipped = 0;  // samples that could not be read (reported as notices)
  GateMetrics gate;  // when the model has an OOD gate
  bool has_shift = false;
  ShiftResult shift;  // when EvaluateOptions::shift
  std::vector<std::string> model_classes;  // the model's own classes (differ from `classes` with a class map)
  // model_warnings(): no better than chance, a class never predicted, a temperature at
  // its bound. Also given to the notice callback.
  std::vector<std::string> warnings;
};

// Runs the model over a labelled dataset. Classes are matched to the model's by name,
// case-insensitively (or to the data classes of options.class_map); a class the model does not
// know is an error naming it. With options.masks and no options.method, the heatmaps are
// measured with diagnose's default method, saliency (a notice says so).
EvaluateResult run_evaluate(const EvaluateOptions& options, const NoticeCallback& on_notice);

}  // namespace medattn::eval
