// The model card: everything that defines a model except its weights, stored as
// MODEL/model.json beside MODEL/weights.bin (see ../shared/CLI.md, "Model directory").
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <vector>

#include "model/card_scope.h"
#include "preprocess/preprocess.h"

namespace medattn::model {

inline constexpr int kCardFormatVersion = 1;
// Cards of ensembles (ModelCard::members) are written as version 2, so that a reader from before
// ensembles refuses them instead of diagnosing with the first network alone.
inline constexpr int kEnsembleCardFormatVersion = 2;
inline constexpr const char* kCardFile = "model.json";
inline constexpr const char* kWeightsFile = "weights.bin";
// Size limits of the model's files, checked before anything is read (a FIFO, a link to
// /dev/zero or a huge file is refused at once): the card, each weights file, the OOD sidecar.
inline constexpr uint64_t kMaxCardBytes = uint64_t{16} << 20;      // 16 MiB
inline constexpr uint64_t kMaxWeightsBytes = uint64_t{4} << 30;    // 4 GiB
inline constexpr uint64_t kMaxOodBytes = uint64_t{2} << 30;        // 2 GiB

// Hyper-parameters of the CNN+Transformer (see model/net.h).
struct ArchConfig {
  std::vector<int> stem_channels{16, 32, 64};  // one conv stage (stride 2) per entry
  int dim = 64;            // token width
  int depth = 2;           // Transformer blocks
  int heads = 4;           // attention heads; REQUIRES: dim % heads == 0
  double mlp_ratio = 2.0;  // MLP hidden width = mlp_ratio * dim
  // Side of the token grid for a given input size: image_size / 2^stages.
  int grid_size(int image_size) const;
};

// One clinical covariate the model takes beside the image (a token of its own; model/net.h).
// Missing values ("", "unknown", "na", "nan", "none", "?"; case-insensitive) are first-class:
// they take a learned "missing" embedding, never a zero.
struct ClinicalField {
  enum class Type { kNumeric, kCategorical };
  std::string name;                 // the CSV column, lower case
  Type type = Type::kNumeric;
  double mean = 0.0, std = 1.0;     // numeric: value -> (value - mean) / std, fitted on training rows
  std::vector<std::string> vocabulary;  // categorical: the known categories (lower case), in index order
};

// Parses "age:num,sex:cat,localization:cat" (types num|numeric|cat|categorical) into fields
// without statistics. Throws medattn::Error(kInvalidArgument) naming the bad entry.
std::vector<ClinicalField> parse_clinical_spec(const std::string& spec);

// The same from a --clinical argument: an inline spec, or the path of a schema file holding
// NAME:TYPE entries separated by commas or new lines ('#' starts a comment).
std::vector<ClinicalField> clinical_spec_from_argument(const std::string& argument);

// True for the spellings of a missing value.
bool is_missing_value(const std::string& value);

// Fits the numeric normalisation (mean, std) and category vocabularies (sorted distinct
// non-missing values) from training rows: rows[i][f] is row i's raw value of field f.
// Throws medattn::Error(kInvalidArgument) when a numeric field holds a non-number or has no
// value at all, or a categorical field has no category.
void fit_clinical(std::vector<ClinicalField>& fields, const std::vector<std::vector<std::string>>& rows);

// The model's encoding of one row: numeric -> (v - mean) / std, categorical -> the category's
// index; NaN where the value is missing, not a number, or a category never seen in training
// (those are counted in *unknown when not null).
std::vector<float> encode_clinical(const std::vector<ClinicalField>& fields, const std::vector<std::string>& values,
                                   int* unknown = nullptr);

// A list of flips, for test-time augmentation and for heatmaps averaged over flipped views:
// "hflip", "vflip" or "hflip,vflip" (both also give the 180-degree view), "" or "none" for the
// image alone. Returns the flips in canonical order ("hflip" before "vflip"). Throws
// medattn::Error(kInvalidArgument) naming anything else, and an empty item in a list
// ("empty flip in ',,' (expected hflip, vflip or none, separated by commas)").
std::vector<std::string> parse_flips(const std::string& spec);

struct ModelCard {
  int format_version = kCardFormatVersion;  // as read; card_to_json writes 1, or 2 for an ensemble
  std::string name;
  std::string version = "1.0.0";
  std::string description;
  std::vector<std::string> classes;   // in label order
  preprocess::PreprocessConfig preprocess;
  ArchConfig arch;
  // Clinical covariates (empty: an image-only model).
  std::vector<ClinicalField> clinical;
  // How the covariate tokens meet the image (model/net.h): "joint" (they join the image tokens
  // in every self-attention block) or "cross" (after each block, CLS and the image tokens
  // attend to them in a gated cross-attention layer).
  std::string clinical_fusion = "joint";
  // Test-time augmentation (parse_flips): the logits are the mean over these flips' views.
  std::vector<std::string> tta;
  // Heatmaps are averaged over these flips of the input (parse_flips names; see
  // explain::ExplainOptions::flips): by default the flips the model was trained with.
  std::vector<std::string> heatmap_flips;
  // --heatmap-scale model: per heatmap method, the map value shown as 1 (the median over the
  // validation images of each one's largest value, in the method's own units), so that maps
  // can be compared across images; written by `evaluate --calibrate-heatmap-scale`. Empty: none.
  std::map<std::string, double> heatmap_scale;
  // Softmax temperature fitted on validation (probabilities = softmax(logits / T)); 1 = none.
  double temperature = 1.0;
  // Binary models: class 1 when P(class 1) >= threshold; negative = the most probable class.
  double threshold = -1.0;
  std::string operating_point;  // how the threshold was chosen, e.g. "sensitivity=0.95"
  // SHA-256 (hex) of weights.bin; load_model refuses weights that do not match. Empty: not
  // recorded (cards written before it existed), and then not checked.
  std::string weights_sha256;
  // An ensemble's further members (weights.bin is the first): weight files beside model.json,
  // each with its SHA-256 (required). The model's logits are the mean of the members' logits,
  // before the temperature. Empty: a single network.
  struct Member {
    std::string file;    // a plain file name, e.g. "member-2.bin"
    std::string sha256;  // 64 lower-case hex digits
  };
  std::vector<Member> members;
  // Networks in the model: 1 + members.size().
  int network_count() const { return 1 + static_cast<int>(members.size()); }
  // What the model is for (card section "intended_use"; model/card_scope.h): diagnose's scope
  // checks read it. Empty on cards written before it existed: then nothing is out of scope.
  IntendedUse intended_use;
  // The out-of-distribution gate (card section "ood"; model/ood.h). Not enabled: no gate.
  OodGate ood;
  nlohmann::json training = nlohmann::json::object();    // data, command, epochs, time, ...
  nlohmann::json validation = nlohmann::json::object();  // metrics on the validation split
};

nlohmann::json card_to_json(const ModelCard& card);

// Parses and validates a card. Throws medattn::Error(kModel) naming `source` (the file) and
// the offending key, e.g. "invalid model card 'm/model.json': format_version 3 is not
// supported (expected 1, or 2 for an ensemble)".
ModelCard card_from_json(const nlohmann::json& json, const std::string& source);

// Reads DIR/model.json. Throws medattn::Error(kModel) on a missing or invalid card.
ModelCard read_card(const std::string& dir);

// Writes DIR/model.json atomically (temporary file, then rename). Throws on I/O failure.
void write_card(const std::string& dir, const ModelCard& card);

// Which model wrote a record: "name@" + the first 12 hex digits of the weights' SHA-256.
std::string model_id(const std::string& name, const std::string& weights_sha256);

// What a model id hashes: the SHA-256 of weights.bin for a single network; for an ensemble the
// SHA-256 of the members' digests (weights.bin's first, then card.members' in order, one per
// line), so that an ensemble never shares an id with its first member.
std::string weights_identity(const ModelCard& card, const std::string& weights_sha256);

// The id of the model in DIR (hashes DIR/weights.bin). Throws medattn::Error(kModel) when the
// card or the weights cannot be read.
std::string model_id(const std::string& dir);

// A human-readable multi-line summary for `medattn info`.
std::string describe_card(const ModelCard& card);

}  // namespace medattn::model
