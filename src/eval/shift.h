// The shift benchmark (`evaluate --shift`): the evaluated images under a fixed, seeded set of
// realistic acquisition changes at five severities, after MedMNIST-C (Di Salvo et al. 2024)
// and ImageNet-C (Hendrycks and Dietterich 2019). Each corruption is one row of one registry;
// the sets per modality, the table and the JSON are derived from it. Torch-free.
//
// Corruptions work on display images (CV_32FC1 or CV_32FC3 in [0,1], as io::to_display gives,
// at the image's own resolution) and return the same type and size, clamped to [0,1]. Sizes
// (blur sigma, resolution) are given in model-input pixels and scaled to the original image,
// so that a severity means the same to a 28 px and a 224 px image seen by the same model.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <opencv2/core.hpp>
#include <set>
#include <string>
#include <vector>

namespace medattn::eval {

inline constexpr int kShiftSeverities = 5;

// display: CV_32FC1/3 in [0,1]; param: the severity's parameter; scale: original pixels per
// model-input pixel (max(width, height) / image_size); rng: this image's seeded generator.
using CorruptFn = cv::Mat (*)(const cv::Mat& display, double param, double scale, cv::RNG& rng);

struct Corruption {
  const char* name;    // "quantum_noise"
  const char* family;  // the kind of change; a model whose training augmentation applies the
                       // same family has "seen" the corruption (seen_families)
  const char* models;  // the acquisition change it stands for, one line
  const char* unit;    // what the parameter is
  std::array<double, kShiftSeverities> params;  // severities 1..5
  CorruptFn apply;
};

// Every corruption, in a fixed order.
const std::vector<Corruption>& corruption_registry();

// Throws medattn::Error(kInvalidArgument) naming the known corruptions for an unknown name.
const Corruption& find_corruption(const std::string& name);

struct ShiftSetDef {
  const char* name;        // "radiograph", "mri", "ultrasound", "dermoscopy"
  const char* modalities;  // the DICOM modalities that choose it, for help texts
  std::vector<const char*> corruptions;
};

// The sets, one per kind of acquisition.
const std::vector<ShiftSetDef>& shift_sets();

// Throws medattn::Error(kInvalidArgument) naming the known sets for an unknown name.
const ShiftSetDef& find_shift_set(const std::string& name);

// The set for a model's card: MR -> mri, US -> ultrasound, XC/DMS/GM -> dermoscopy, else
// (CR, DX, CT, MG, OT or none) radiograph; a colour model without modalities -> dermoscopy.
std::string shift_set_for(const std::vector<std::string>& modalities, int channels);

// Families that a card's training augmentation (its `training.augment` description, as
// train writes it; "" or "false" = none) applies: "intensity" (contrast, brightness, gamma),
// "noise" (additive Gaussian), "blur", "resolution", "colour" (per-channel gain).
std::set<std::string> seen_families(const std::string& augment_description);

// An image's generator seed for one corruption: depends on nothing else, so that the same
// seed gives the same corrupted images whatever the threads or the other images. The severity
// is left out on purpose: an image gets the same random draws (noise pattern, bias field,
// light spot) at every severity, which only scales them, so the change grows monotonically.
uint64_t corruption_seed(uint64_t seed, const std::string& corruption, uint64_t sample);

// `display` under `c` at `severity` (0 = the image unchanged, a copy; 1..5 = c.params).
cv::Mat corrupt(const cv::Mat& display, const Corruption& c, int severity, double scale, uint64_t seed);

// Figures of the model on one version of the images.
struct ShiftCell {
  int severity = 0;  // 0 = clean
  double param = 0;
  int n = 0;
  double accuracy = 0, balanced_accuracy = 0, auc = 0, ece = 0;
  double coverage = -1;  // share not abstained (scope checks or the OOD gate); -1 = no gate
};

struct ShiftRow {
  std::string name, family, models, unit;
  bool seen = false;
  std::vector<ShiftCell> cells;  // severities 1..5
};

// Means over corruptions and severities 1..5.
struct ShiftSummary {
  int corruptions = 0;
  double accuracy = 0, balanced_accuracy = 0, auc = 0, ece = 0;
  double coverage = -1;                // -1 = no gate
  double relative_accuracy_drop = 0;   // (clean - mean) / clean
  double relative_balanced_accuracy_drop = 0;
};

struct ShiftResult {
  std::string set;
  uint64_t seed = 0;
  std::vector<std::string> seen_families;  // of the model's training augmentation
  ShiftCell clean;
  std::vector<ShiftRow> rows;
  ShiftSummary unseen;  // corruptions the training augmentation does not apply: what chooses recipes
  ShiftSummary all;
};

// The summary over the rows (only the unseen ones when `unseen_only`); corruptions = 0 and
// all means 0 when there is none.
ShiftSummary summarise(const ShiftResult& result, bool unseen_only);

// The `shift` object of evaluate's JSON (figures rounded to 4 decimals).
nlohmann::json shift_to_json(const ShiftResult& result);

// What a model card keeps of a shift run (card "validation" -> "shift"): the set, seed, images,
// the data it ran on, the clean cell, both summaries and, per corruption, the mean accuracy and
// AUC over the severities and the accuracy and AUC at severity 5.
nlohmann::json shift_card_record(const ShiftResult& result, const std::string& data);

// One sentence for the card's limitations, starting with kShiftLimitationPrefix, e.g.
// "Shift benchmark (ultrasound set, validation data): under corruptions its training never
// applied, accuracy 0.885 -> 0.801 on average; worst: speckle (accuracy 0.705, AUC 0.590 at
// severity 5)." A later run replaces the sentence (replace_shift_limitation).
inline constexpr const char* kShiftLimitationPrefix = "Shift benchmark (";
std::string shift_limitation(const ShiftResult& result);
// `limitations` with its shift sentence (if any) replaced by `sentence`, appended otherwise.
std::string replace_shift_limitation(const std::string& limitations, const std::string& sentence);

// evaluate's table block: one line per corruption (accuracy per severity, means), then the
// clean line and both summaries.
std::string shift_table(const ShiftResult& result);

}  // namespace medattn::eval
