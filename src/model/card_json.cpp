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

}  // namespace

std::vector<ClinicalField> parse_clinical_spec(const std::string& spec) {
  std::vector<ClinicalField> fields;
  std::stringstream in(spec);
  std::string entry;
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::kInvalidArgument, "--clinical '" + spec + "': " + why);
  };
  for (std::string raw; std::getline(in, raw, ',');) {
    entry.clear();
    for (char ch : raw) {
      if (!std::isspace(static_cast<unsigned char>(ch))) entry += ch;
    }
    const auto colon = entry.find(':');
    if (colon == std::string::npos) throw bad("entry '" + entry + "' is not NAME:TYPE (TYPE num or cat)");
    ClinicalField f;
    for (char ch : entry.substr(0, colon)) f.name += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const std::string type = entry.substr(colon + 1);
    if (f.name.empty()) throw bad("entry '" + entry + "' has no column name");
    if (type == "num" || type == "numeric") {
      f.type = ClinicalField::Type::kNumeric;
    } else if (type == "cat" || type == "categorical") {
      f.type = ClinicalField::Type::kCategorical;
    } else {
      throw bad("type '" + type + "' of '" + f.name + "' is not num or cat");
    }
    for (const auto& other : fields) {
      if (other.name == f.name) throw bad("column '" + f.name + "' is named twice");
    }
    if (f.name == "path" || f.name == "label" || f.name == "split" || f.name == "group" || f.name == "mask") {
      throw bad("column '" + f.name + "' is not a covariate");
    }
    fields.push_back(std::move(f));
  }
  if (fields.empty()) throw bad("no covariates");
  return fields;
}

std::vector<ClinicalField> clinical_spec_from_argument(const std::string& argument) {
  std::error_code ec;
  if (argument.find(':') != std::string::npos || !std::filesystem::is_regular_file(argument, ec)) {
    return parse_clinical_spec(argument);
  }
  std::stringstream in(read_file(argument));
  std::string spec, line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    std::string entry;
    for (char ch : line) {
      if (!std::isspace(static_cast<unsigned char>(ch))) entry += ch;
    }
    if (!entry.empty()) spec += (spec.empty() ? "" : ",") + entry;
  }
  try {
    return parse_clinical_spec(spec);
  } catch (const Error& e) {
    throw file_error(ErrorKind::kInvalidArgument, "invalid clinical schema", argument, e.what());
  }
}

namespace {

// A finite number filling the whole field, or nullopt.
bool parse_number(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

}  // namespace

std::vector<std::string> parse_flips(const std::string& spec) {
  bool h = false, v = false;
  const bool list = spec.find(',') != std::string::npos;
  for (size_t start = 0; start <= spec.size();) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    std::string item = lower_trimmed(spec.substr(start, comma - start));
    start = comma + 1;
    // "" alone means none; an empty item in a list (",,", "hflip,") is a typo, not a request.
    if (list && item.empty()) {
      throw Error(ErrorKind::kInvalidArgument, "empty flip in '" + spec + "' (expected hflip, vflip or none, separated by commas)");
    }
    if (item == "hflip") {
      h = true;
    } else if (item == "vflip") {
      v = true;
    } else if (!(item.empty() || item == "none")) {
      throw Error(ErrorKind::kInvalidArgument, "unknown flip '" + item + "' (expected hflip, vflip or none)");
    }
  }
  std::vector<std::string> out;
  if (h) out.push_back("hflip");
  if (v) out.push_back("vflip");
  return out;
}

bool is_missing_value(const std::string& value) {
  const std::string v = lower_trimmed(value);
  return v.empty() || v == "unknown" || v == "na" || v == "n/a" || v == "nan" || v == "none" || v == "?" || v == "null";
}

void fit_clinical(std::vector<ClinicalField>& fields, const std::vector<std::vector<std::string>>& rows) {
  for (size_t f = 0; f < fields.size(); ++f) {
    auto& field = fields[f];
    if (field.type == ClinicalField::Type::kNumeric) {
      double sum = 0, sum2 = 0;
      int64_t n = 0;
      for (const auto& row : rows) {
        if (is_missing_value(row[f])) continue;
        double v;
        if (!parse_number(lower_trimmed(row[f]), &v)) {
          throw Error(ErrorKind::kInvalidArgument, "clinical column '" + field.name + "' is numeric but holds '" + row[f] + "'");
        }
        sum += v;
        sum2 += v * v;
        ++n;
      }
      if (n == 0) throw Error(ErrorKind::kInvalidArgument, "clinical column '" + field.name + "' has no values");
      field.mean = sum / static_cast<double>(n);
      const double var = sum2 / static_cast<double>(n) - field.mean * field.mean;
      field.std = var > 1e-12 ? std::sqrt(var) : 1.0;
    } else {
      std::set<std::string> seen;
      for (const auto& row : rows) {
        if (!is_missing_value(row[f])) seen.insert(lower_trimmed(row[f]));
      }
      if (seen.empty()) throw Error(ErrorKind::kInvalidArgument, "clinical column '" + field.name + "' has no categories");
      field.vocabulary.assign(seen.begin(), seen.end());
    }
  }
}

std::vector<float> encode_clinical(const std::vector<ClinicalField>& fields, const std::vector<std::string>& values,
                                   int* unknown) {
  std::vector<float> out(fields.size(), std::numeric_limits<float>::quiet_NaN());
  for (size_t f = 0; f < fields.size() && f < values.size(); ++f) {
    if (is_missing_value(values[f])) continue;
    const std::string v = lower_trimmed(values[f]);
    const auto& field = fields[f];
    bool known = false;
    if (field.type == ClinicalField::Type::kNumeric) {
      double x;
      if (parse_number(v, &x)) {
        out[f] = static_cast<float>((x - field.mean) / field.std);
        known = true;
      }
    } else {
      const auto it = std::find(field.vocabulary.begin(), field.vocabulary.end(), v);
      if (it != field.vocabulary.end()) {
        out[f] = static_cast<float>(it - field.vocabulary.begin());
        known = true;
      }
    }
    if (!known && unknown != nullptr) ++*unknown;
  }
  return out;
}

int ArchConfig::grid_size(int image_size) const {
  return image_size >> static_cast<int>(stem_channels.size());
}

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
  }
  if (card.preprocess.std <= 0) invalid(source, "preprocess.std must be positive");

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
  // And the whole network: a rough parameter count (stem convolutions, blocks, head) must stay
  // under 200 million, so that loading cannot be made to allocate gigabytes before the
  // weights file is even looked at.
  double params = 0;
  if (j.contains("clinical")) {
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
  }
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
  if (j.contains("weights")) {
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
  if (j.contains("calibration")) {
    get(object_at(j, "calibration", source), "temperature", &card.temperature, source);
    if (!(card.temperature > 0.0)) invalid(source, "calibration.temperature must be positive");
  }
  // A list of flips under j[key]["flips"].
  auto flips_at = [&](const char* key) {
    std::vector<std::string> flips;
    get(object_at(j, key, source), "flips", &flips, source, true);
    std::string joined;
    for (const auto& f : flips) joined += (joined.empty() ? "" : ",") + f;
    std::vector<std::string> parsed;
    try {
      parsed = parse_flips(joined);
    } catch (const Error& e) {
      invalid(source, std::string(key) + ".flips: " + e.what());
    }
    if (parsed.size() != flips.size()) invalid(source, std::string(key) + ".flips lists a flip twice");
    return parsed;
  };
  if (j.contains("tta")) card.tta = flips_at("tta");
  if (j.contains("heatmaps")) card.heatmap_flips = flips_at("heatmaps");
  if (j.contains("heatmap_scale")) {
    const json& hs = object_at(j, "heatmap_scale", source);
    if (!hs.contains("reference") || !hs["reference"].is_object()) invalid(source, "heatmap_scale.reference must be an object");
    for (const auto& [method, value] : hs["reference"].items()) {
      if (!value.is_number() || !(value.get<double>() > 0.0)) {
        invalid(source, "heatmap_scale.reference." + method + " must be a positive number");
      }
      card.heatmap_scale[method] = value.get<double>();
    }
  }
  if (j.contains("decision")) {
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

std::string describe_card(const ModelCard& card) {
  std::ostringstream s;
  const auto& a = card.arch;
  const auto& p = card.preprocess;
  s << "name:          " << card.name << " " << card.version << "\n";
  if (!card.description.empty()) s << "description:   " << card.description << "\n";
  s << "classes:       ";
  for (size_t i = 0; i < card.classes.size(); ++i) s << (i ? ", " : "") << card.classes[i];
  s << "\ninput:         " << p.image_size << "x" << p.image_size << (p.channels == 3 ? " colour" : " grey") << ", letterboxed"
    << (p.clahe ? ", CLAHE" : "") << ", normalised (x - " << p.mean << ") / " << p.std << "\n";
  s << "architecture:  CNN stem [";
  for (size_t i = 0; i < a.stem_channels.size(); ++i) s << (i ? "," : "") << a.stem_channels[i];
  const int g = a.grid_size(p.image_size);
  s << "] -> " << g << "x" << g << " tokens + CLS, " << a.depth << " pre-norm blocks, dim "
    << a.dim << ", " << a.heads << " heads, MLP x" << a.mlp_ratio << "\n";
  if (!card.clinical.empty()) {
    s << "clinical:      ";
    for (size_t i = 0; i < card.clinical.size(); ++i) {
      const auto& f = card.clinical[i];
      s << (i ? ", " : "") << f.name << " ("
        << (f.type == ClinicalField::Type::kNumeric ? "numeric" : std::to_string(f.vocabulary.size()) + " categories") << ")";
    }
    s << "; one token each, missing values allowed\n";
  }
  s << "decision:      ";
  if (card.threshold >= 0) {
    s << card.classes[1] << " when its probability >= " << card.threshold << " (operating point "
      << card.operating_point << ")\n";
  } else {
    s << "the most probable class\n";
  }
  if (!card.tta.empty()) {
    s << "test-time:     mean logits over " << (1 << card.tta.size()) << " views (";
    for (size_t i = 0; i < card.tta.size(); ++i) s << (i ? ", " : "") << card.tta[i];
    s << ")\n";
  }
  if (!card.heatmap_flips.empty()) {
    s << "heatmaps:      mean over the views of ";
    for (size_t i = 0; i < card.heatmap_flips.size(); ++i) s << (i ? ", " : "") << card.heatmap_flips[i];
    s << "\n";
  }
  if (card.temperature != 1.0) s << "calibration:   temperature " << card.temperature << "\n";
  if (!card.weights_sha256.empty()) s << "weights:       sha256 " << card.weights_sha256 << "\n";
  if (!card.members.empty()) {
    s << "ensemble:      mean logits of " << card.network_count() << " networks (" << kWeightsFile;
    for (const auto& m : card.members) s << ", " << m.file;
    s << ")\n";
  }
  s << describe_scope(card.intended_use, card.ood);
  if (card.training.contains("data")) s << "trained on:    " << card.training["data"].dump() << "\n";
  if (card.training.contains("command")) s << "command:       " << card.training["command"].get<std::string>() << "\n";
  if (!card.validation.empty()) s << "validation:    " << card.validation.dump() << "\n";
  return s.str();
}

std::string model_id(const std::string& name, const std::string& weights_sha256) {
  return name + "@" + weights_sha256.substr(0, 12);
}

std::string weights_identity(const ModelCard& card, const std::string& weights_sha256) {
  if (card.members.empty()) return weights_sha256;
  std::string digests = weights_sha256 + "\n";
  for (const auto& m : card.members) digests += m.sha256 + "\n";
  return sha256_hex(digests);
}

std::string model_id(const std::string& dir) {
  const ModelCard card = read_card(dir);
  const auto weights = (std::filesystem::path(dir) / kWeightsFile).string();
  require_regular_file(weights, ErrorKind::kModel, "cannot load model", kMaxWeightsBytes);
  try {
    return model_id(card.name, weights_identity(card, sha256_file(weights)));
  } catch (const Error& e) {
    throw file_error(ErrorKind::kModel, "cannot load model", dir, std::string("cannot read ") + kWeightsFile);
  }
}

}  // namespace medattn::model
