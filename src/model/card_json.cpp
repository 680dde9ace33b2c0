#include "model/card.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <set>
#include <algorithm>
#include <filesystem>
#include <limits>
#include <type_traits>
#include <sstream>

#include "core/error.h"
#include "core/text.h"
#include "core/sha256.h"
#include "core/fs.h"
#include "core/bounded_io.h"

namespace medattn::model {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& source, const std::string& why) {
  throw file_error(ErrorKind::kModel, "invalid model card", source, why);
}

// True when every number in `v` (an array is walked) is an integer that fits in an int:
// nlohmann's conversion of 8.8e35 or 2^40 to int would be undefined behaviour (found by
// fuzz_model).
bool ints_fit(const json& v) {
  if (v.is_array()) {
    for (const auto& e : v) {
      if (!ints_fit(e)) return false;
    }
    return true;
  }
  if (v.is_number_float()) return false;
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max());
  if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    return x >= std::numeric_limits<int>::min() && x <= std::numeric_limits<int>::max();
  }
  return true;  // not a number: get<T>() checks the type
}

// Reads `key` from `obj` as T; a missing key keeps `*out`'s default unless `required`.
template <typename T>
void get(const json& obj, const char* key, T* out, const std::string& source, bool required = false) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) invalid(source, std::string("missing key '") + key + "'");
    return;
  }
  if constexpr (std::is_same_v<T, int> || std::is_same_v<T, std::vector<int>>) {
    if (!ints_fit(*it)) invalid(source, std::string("key '") + key + "' must hold integers that fit in 32 bits");
  }
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    invalid(source, std::string("key '") + key + "' has the wrong type (got " + it->type_name() + ")");
  }
}

const json& object_at(const json& obj, const char* key, const std::string& source) {
  auto it = obj.find(key);
  if (it == obj.end()) invalid(source, std::string("missing key '") + key + "'");
  if (!it->is_object()) invalid(source, std::string("key '") + key + "' must be an object");
  return *it;
}

// "input" and "preprocess": the network's input and how images become it.
void read_input(const json& j, ModelCard& card, const std::string& source) {
  const json& input = object_at(j, "input", source);
  get(input, "size", &card.preprocess.image_size, source, true);
  get(input, "channels", &card.preprocess.channels, source);
  if (card.preprocess.channels != 1 && card.preprocess.channels != 3) {
    invalid(source, "input channels must be 1 or 3 (got " + std::to_string(card.preprocess.channels) + ")");
  }
  if (j.contains("preprocess")) {
    const json& p = object_at(j, "preprocess", source);
    get(p, "clahe", &card.preprocess.clahe, source);
    get(p, "clahe_clip", &card.preprocess.clahe_clip, source);
    get(p, "clahe_tiles", &card.preprocess.clahe_tiles, source);
    get(p, "mean", &card.preprocess.mean, source);
    get(p, "std", &card.preprocess.std, source);
    get(p, "intensity", &card.preprocess.intensity, source);
    if (card.preprocess.intensity != "none" && card.preprocess.intensity != "percentile") {
      invalid(source, "preprocess.intensity must be none or percentile (got '" + card.preprocess.intensity + "')");
    }
    get(p, "colour_constancy", &card.preprocess.colour_constancy, source);
    if (card.preprocess.colour_constancy != "none" && card.preprocess.colour_constancy != "shades-of-grey") {
      invalid(source, "preprocess.colour_constancy must be none or shades-of-grey (got '" +
                          card.preprocess.colour_constancy + "')");
    }
    std::vector<double> pct;
    get(p, "intensity_percentiles", &pct, source);
    if (!pct.empty()) {
      if (pct.size() != 2 || !(pct[0] >= 0 && pct[0] < pct[1] && pct[1] <= 100)) {
        invalid(source, "preprocess.intensity_percentiles must be [low, high] with 0 <= low < high <= 100");
      }
      card.preprocess.intensity_low = pct[0];
      card.preprocess.intensity_high = pct[1];
    }
  }
  if (card.preprocess.std <= 0) invalid(source, "preprocess.std must be positive");
}

// "architecture", bounded far above any real model, and the input size it needs.
void read_architecture(const json& j, ModelCard& card, const std::string& source) {
  const json& a = object_at(j, "architecture", source);
  get(a, "stem_channels", &card.arch.stem_channels, source, true);
  get(a, "dim", &card.arch.dim, source, true);
  get(a, "depth", &card.arch.depth, source, true);
  get(a, "heads", &card.arch.heads, source, true);
  get(a, "mlp_ratio", &card.arch.mlp_ratio, source);
  const auto& arch = card.arch;
  if (arch.stem_channels.empty() || arch.dim <= 0 || arch.depth < 1 || arch.heads < 1 ||
      arch.dim % arch.heads != 0) {
    invalid(source, "architecture needs stem_channels, depth >= 1 and dim divisible by heads");
  }
  // Bounds far above any real model, so that a hostile card cannot ask for terabytes.
  bool channels_ok = arch.stem_channels.size() <= 8;
  for (int c : arch.stem_channels) channels_ok = channels_ok && c >= 1 && c <= 4096;
  if (!channels_ok || arch.dim > 4096 || arch.depth > 64 || arch.heads > 64 || !(arch.mlp_ratio > 0.0) ||
      arch.mlp_ratio > 16.0 || card.classes.size() > 10000) {
    invalid(source, "architecture out of bounds (at most 8 stem stages of 1..4096 channels, dim 4096, depth 64, "
                    "heads 64, mlp_ratio in (0, 16], 10000 classes)");
  }
  const int size = card.preprocess.image_size;
  if (size < 8 || size > 4096 || arch.grid_size(size) < 1 ||
      (size % (1 << arch.stem_channels.size())) != 0) {
    invalid(source, "input size " + std::to_string(size) + " must be a multiple of 2^" +
                        std::to_string(arch.stem_channels.size()) + " (one halving per stem stage)");
  }
}

// "clinical": the covariate fields and how they join the image tokens. Returns the
// parameters they add.
double read_clinical(const json& j, ModelCard& card, const std::string& source) {
  const auto& arch = card.arch;
  double params = 0;
  const json& c = object_at(j, "clinical", source);
  auto it = c.find("fields");
  if (it == c.end() || !it->is_array()) invalid(source, "clinical.fields must be an array");
  if (it->size() > 64) invalid(source, "at most 64 clinical fields");
  double vocab_total = 0;
  for (const auto& e : *it) {
    if (!e.is_object()) invalid(source, "clinical.fields must hold objects");
    ClinicalField f;
    std::string type;
    get(e, "name", &f.name, source, true);
    get(e, "type", &type, source, true);
    if (f.name.empty()) invalid(source, "clinical field with an empty name");
    for (const auto& other : card.clinical) {
      if (other.name == f.name) invalid(source, "clinical field '" + f.name + "' appears twice");
    }
    if (type == "num") {
      f.type = ClinicalField::Type::kNumeric;
      get(e, "mean", &f.mean, source, true);
      get(e, "std", &f.std, source, true);
      if (!std::isfinite(f.mean) || !(f.std > 0.0) || !std::isfinite(f.std)) {
        invalid(source, "clinical field '" + f.name + "' needs a finite mean and a positive std");
      }
    } else if (type == "cat") {
      f.type = ClinicalField::Type::kCategorical;
      get(e, "vocabulary", &f.vocabulary, source, true);
      if (f.vocabulary.empty() || f.vocabulary.size() > 10000) {
        invalid(source, "clinical field '" + f.name + "' needs a vocabulary of 1..10000 categories");
      }
      vocab_total += static_cast<double>(f.vocabulary.size());
    } else {
      invalid(source, "clinical field '" + f.name + "' has type '" + type + "' (expected num or cat)");
    }
    card.clinical.push_back(std::move(f));
  }
  params += (vocab_total + 4.0 * static_cast<double>(card.clinical.size())) * arch.dim;
  get(c, "mode", &card.clinical_fusion, source);
  if (card.clinical_fusion != "joint" && card.clinical_fusion != "cross") {
    invalid(source, "clinical.mode '" + card.clinical_fusion + "' is not supported (expected joint or cross)");
  }
  if (card.clinical_fusion == "cross") params += static_cast<double>(arch.depth) * 4.0 * arch.dim * arch.dim;
  return params;
}

// A rough parameter count of the whole network (stem convolutions, blocks, head) must stay
// under 200 million, so that loading cannot be made to allocate gigabytes before the
// weights file is even looked at.
void check_parameter_count(const ModelCard& card, double params, const std::string& source) {
  const auto& arch = card.arch;
  const int size = card.preprocess.image_size;
  int in_channels = card.preprocess.channels;
  for (int c : arch.stem_channels) {
    params += 9.0 * in_channels * c + 9.0 * c * c;
    in_channels = c;
  }
  params += static_cast<double>(arch.depth) * (4.0 + 2.0 * arch.mlp_ratio) * arch.dim * arch.dim;
  params += static_cast<double>(arch.dim) * (in_channels + static_cast<double>(card.classes.size()));
  const double grid = static_cast<double>(size) / (1 << arch.stem_channels.size());
  params += (1.0 + grid * grid) * arch.dim;  // positions
  if (params > 2e8) invalid(source, "architecture too large (about " + std::to_string(static_cast<long long>(params / 1e6)) + " million parameters, limit 200)");
}

// "weights": the digest of weights.bin and an ensemble's other members.
void read_weights(const json& j, ModelCard& card, const std::string& source) {
  const json& w = object_at(j, "weights", source);
  if (w.contains("sha256")) {
    get(w, "sha256", &card.weights_sha256, source);
    const bool hex = card.weights_sha256.size() == 64 &&
                     card.weights_sha256.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) invalid(source, "weights.sha256 must be 64 lower-case hex digits");
  }
  if (w.contains("members")) {
    if (!w["members"].is_array()) invalid(source, "weights.members must be an array");
    std::set<std::string> files{kWeightsFile};
    for (const auto& m : w["members"]) {
      if (!m.is_object()) invalid(source, "weights.members must hold objects with file and sha256");
      ModelCard::Member member;
      get(m, "file", &member.file, source, true);
      get(m, "sha256", &member.sha256, source, true);
      const bool plain = !member.file.empty() && member.file != "." && member.file != ".." &&
                         member.file.find_first_of("/\\") == std::string::npos;
      if (!plain) invalid(source, "weights.members: '" + member.file + "' is not a file name beside the card");
      if (!files.insert(member.file).second) invalid(source, "weights.members lists '" + member.file + "' twice");
      const bool hex = member.sha256.size() == 64 && member.sha256.find_first_not_of("0123456789abcdef") == std::string::npos;
      if (!hex) invalid(source, "weights.members: the sha256 of '" + member.file + "' must be 64 lower-case hex digits");
      card.members.push_back(member);
    }
    if (!card.members.empty() && card.format_version < kEnsembleCardFormatVersion) {
      invalid(source, "weights.members needs format_version " + std::to_string(kEnsembleCardFormatVersion) +
                          " (a version 1 reader would use the first network alone)");
    }
  }
}

// A list of flips under j[key]["flips"].
std::vector<std::string> read_flips(const json& j, const char* key, const std::string& source) {
  std::vector<std::string> flips;
  get(object_at(j, key, source), "flips", &flips, source, true);
  std::vector<std::string> parsed;
  try {
    parsed = parse_flips(join(flips, ","));
  } catch (const Error& e) {
    invalid(source, std::string(key) + ".flips: " + e.what());
  }
  if (parsed.size() != flips.size()) invalid(source, std::string(key) + ".flips lists a flip twice");
  return parsed;
}

// "heatmap_scale": per method, the reference that --heatmap-scale model divides by.
void read_heatmap_scale(const json& j, ModelCard& card, const std::string& source) {
  const json& hs = object_at(j, "heatmap_scale", source);
  if (!hs.contains("reference") || !hs["reference"].is_object()) invalid(source, "heatmap_scale.reference must be an object");
  for (const auto& [method, value] : hs["reference"].items()) {
    if (!value.is_number() || !(value.get<double>() > 0.0)) {
      invalid(source, "heatmap_scale.reference." + method + " must be a positive number");
    }
    card.heatmap_scale[method] = value.get<double>();
  }
}

// "decision": argmax, or a threshold on the second class's probability.
void read_decision(const json& j, ModelCard& card, const std::string& source) {
  const json& d = object_at(j, "decision", source);
  std::string rule = "argmax";
  get(d, "rule", &rule, source);
  if (rule == "threshold") {
    get(d, "threshold", &card.threshold, source, true);
    get(d, "operating_point", &card.operating_point, source);
    if (card.classes.size() != 2 || card.threshold < 0.0 || card.threshold > 1.0) {
      invalid(source, "decision.threshold needs two classes and a value in [0,1]");
    }
  } else if (rule != "argmax") {
    invalid(source, "decision.rule '" + rule + "' is not supported (expected argmax or threshold)");
  }
}

}  // namespace

json card_to_json(const ModelCard& card) {
  const auto& p = card.preprocess;
  const auto& a = card.arch;
  json j;
  j["format"] = "medattn-model";
  j["format_version"] = card.members.empty() ? kCardFormatVersion : kEnsembleCardFormatVersion;
  j["name"] = card.name;
  j["version"] = card.version;
  j["description"] = card.description;
  j["classes"] = card.classes;
  j["input"] = {{"size", p.image_size}, {"channels", p.channels}};
  j["preprocess"] = {{"grey", p.channels == 1},
                     {"colour", p.channels == 3 ? "BGR order; grey images repeated on the three channels" : "converted to grey (BT.601 luma)"},
                     {"window", "ReadOptions window, else the file's VOI window, else 0..255 for 8-bit, else min-max"},
                     {"resize", "aspect-preserving letterbox, black padding"},
                     {"clahe", p.clahe},
                     {"clahe_clip", p.clahe_clip},
                     {"clahe_tiles", p.clahe_tiles},
                     {"mean", p.mean},
                     {"std", p.std}};
  if (p.colour_constancy != "none") j["preprocess"]["colour_constancy"] = p.colour_constancy;
  if (p.intensity != "none") {
    j["preprocess"]["intensity"] = p.intensity;
    j["preprocess"]["intensity_percentiles"] = {p.intensity_low, p.intensity_high};
  }
  j["architecture"] = {{"type", "cnn-transformer"},
                       {"stem_channels", a.stem_channels},
                       {"dim", a.dim},
                       {"depth", a.depth},
                       {"heads", a.heads},
                       {"mlp_ratio", a.mlp_ratio},
                       {"norm", "pre-norm"},
                       {"grid", a.grid_size(p.image_size)}};
  if (!card.clinical.empty()) {
    json fields = json::array();
    for (const auto& f : card.clinical) {
      json e = {{"name", f.name}, {"type", f.type == ClinicalField::Type::kNumeric ? "num" : "cat"}};
      if (f.type == ClinicalField::Type::kNumeric) {
        e["mean"] = f.mean;
        e["std"] = f.std;
      } else {
        e["vocabulary"] = f.vocabulary;
      }
      fields.push_back(e);
    }
    j["clinical"] = {{"fields", fields},
                     {"missing", "empty, unknown, na, nan, none or ? (any case); categories not in the vocabulary count as missing"},
                     {"mode", card.clinical_fusion},
                     {"fusion", std::string("one token per covariate (numeric: learned projection, categorical: embedding; plus a type "
                                "embedding; missing: a learned embedding) ") +
                                    (card.clinical_fusion == "cross"
                                         ? "attended to by CLS and the image tokens in a gated cross-attention layer after every block"
                                         : "joined to the image tokens in every block")}};
  }
  j["weights"] = {{"file", kWeightsFile}};
  if (!card.weights_sha256.empty()) j["weights"]["sha256"] = card.weights_sha256;
  if (!card.members.empty()) {
    json members = json::array();
    for (const auto& m : card.members) members.push_back({{"file", m.file}, {"sha256", m.sha256}});
    j["weights"]["members"] = members;
    j["weights"]["rule"] = "an ensemble of " + std::to_string(card.network_count()) +
                           " networks: the logits are the mean of their logits (" + kWeightsFile + " is the first)";
  }
  if (!card.tta.empty()) {
    j["tta"] = {{"flips", card.tta}, {"views", 1 << card.tta.size()},
                {"rule", "the logits are the mean over the plain and flipped views"}};
  }
  if (!card.heatmap_flips.empty()) {
    j["heatmaps"] = {{"flips", card.heatmap_flips},
                     {"rule", "each map is the mean over the flipped views' maps, taken back to the image's orientation"}};
  }
  if (!card.heatmap_scale.empty()) {
    json scale = json::object();
    for (const auto& [method, reference] : card.heatmap_scale) scale[method] = reference;
    j["heatmap_scale"] = {{"reference", scale},
                          {"rule", "--heatmap-scale model shows map / reference (clipped): the median over validation "
                                   "images of each image's largest map value"}};
  }
  j["calibration"] = {{"temperature", card.temperature}};
  if (card.threshold >= 0) {
    j["decision"] = {{"rule", "threshold"}, {"positive_class", card.classes.size() > 1 ? card.classes[1] : ""},
                     {"threshold", card.threshold}, {"operating_point", card.operating_point}};
  } else {
    j["decision"] = {{"rule", "argmax"}};
  }
  if (!card.intended_use.empty()) j["intended_use"] = intended_use_to_json(card.intended_use);
  if (card.ood.enabled()) j["ood"] = ood_to_json(card.ood);
  j["training"] = card.training;
  j["validation"] = card.validation;
  return j;
}

ModelCard card_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) invalid(source, "not a JSON object");
  ModelCard card;
  get(j, "format_version", &card.format_version, source, /*required=*/true);
  if (card.format_version != kCardFormatVersion && card.format_version != kEnsembleCardFormatVersion) {
    invalid(source, "format_version " + std::to_string(card.format_version) + " is not supported (expected " +
                        std::to_string(kCardFormatVersion) + ", or " + std::to_string(kEnsembleCardFormatVersion) + " for an ensemble)");
  }
  get(j, "name", &card.name, source);
  get(j, "version", &card.version, source);
  get(j, "description", &card.description, source);
  get(j, "classes", &card.classes, source, /*required=*/true);
  if (card.classes.size() < 2) invalid(source, "needs at least 2 classes (got " + std::to_string(card.classes.size()) + ")");

  read_input(j, card, source);
  read_architecture(j, card, source);
  const double clinical_params = j.contains("clinical") ? read_clinical(j, card, source) : 0.0;
  check_parameter_count(card, clinical_params, source);
  if (j.contains("weights")) read_weights(j, card, source);
  if (j.contains("calibration")) {
    get(object_at(j, "calibration", source), "temperature", &card.temperature, source);
    if (!(card.temperature > 0.0)) invalid(source, "calibration.temperature must be positive");
  }
  if (j.contains("tta")) card.tta = read_flips(j, "tta", source);
  if (j.contains("heatmaps")) card.heatmap_flips = read_flips(j, "heatmaps", source);
  if (j.contains("heatmap_scale")) read_heatmap_scale(j, card, source);
  if (j.contains("decision")) read_decision(j, card, source);
  if (j.contains("intended_use")) card.intended_use = intended_use_from_json(j["intended_use"], source);
  if (j.contains("ood")) card.ood = ood_from_json(j["ood"], source);
  if (j.contains("training")) card.training = j["training"];
  if (j.contains("validation")) card.validation = j["validation"];
  return card;
}

ModelCard read_card(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kCardFile).string();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw file_error(ErrorKind::kModel, "cannot load model", dir, "not a directory");
  }
  if (!std::filesystem::exists(path, ec)) {
    throw file_error(ErrorKind::kModel, "cannot load model", dir, std::string("missing ") + kCardFile);
  }
  json j;
  try {
    j = json::parse(read_file_bounded(path, ErrorKind::kModel, "cannot load model", kMaxCardBytes));
  } catch (const json::exception& e) {
    invalid(path, std::string("not valid JSON (") + e.what() + ")");
  }
  return card_from_json(j, path);
}

void write_card(const std::string& dir, const ModelCard& card) {
  write_file_atomic((std::filesystem::path(dir) / kCardFile).string(), card_to_json(card).dump(2) + "\n");
}

}  // namespace medattn::model
