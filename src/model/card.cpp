#include "model/card.h"

#include <cstdint>
#include <filesystem>
#include <limits>
#include <type_traits>
#include <sstream>

#include "core/error.h"
#include "core/sha256.h"
#include "core/fs.h"

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

int ArchConfig::grid_size(int image_size) const {
  return image_size >> static_cast<int>(stem_channels.size());
}

json card_to_json(const ModelCard& card) {
  const auto& p = card.preprocess;
  const auto& a = card.arch;
  json j;
  j["format"] = "medattn-model";
  j["format_version"] = card.format_version;
  j["name"] = card.name;
  j["version"] = card.version;
  j["description"] = card.description;
  j["classes"] = card.classes;
  j["input"] = {{"size", p.image_size}, {"channels", p.channels}};
  j["preprocess"] = {{"grey", p.channels == 1},
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
  j["weights"] = {{"file", kWeightsFile}};
  if (!card.weights_sha256.empty()) j["weights"]["sha256"] = card.weights_sha256;
  j["calibration"] = {{"temperature", card.temperature}};
  if (card.threshold >= 0) {
    j["decision"] = {{"rule", "threshold"}, {"positive_class", card.classes.size() > 1 ? card.classes[1] : ""},
                     {"threshold", card.threshold}, {"operating_point", card.operating_point}};
  } else {
    j["decision"] = {{"rule", "argmax"}};
  }
  j["training"] = card.training;
  j["validation"] = card.validation;
  return j;
}

ModelCard card_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) invalid(source, "not a JSON object");
  ModelCard card;
  get(j, "format_version", &card.format_version, source, /*required=*/true);
  if (card.format_version != kCardFormatVersion) {
    invalid(source, "format_version " + std::to_string(card.format_version) +
                        " is not supported (expected " + std::to_string(kCardFormatVersion) + ")");
  }
  get(j, "name", &card.name, source);
  get(j, "version", &card.version, source);
  get(j, "description", &card.description, source);
  get(j, "classes", &card.classes, source, /*required=*/true);
  if (card.classes.size() < 2) invalid(source, "needs at least 2 classes (got " + std::to_string(card.classes.size()) + ")");

  const json& input = object_at(j, "input", source);
  get(input, "size", &card.preprocess.image_size, source, true);
  get(input, "channels", &card.preprocess.channels, source);
  if (card.preprocess.channels != 1) invalid(source, "input channels must be 1 (got " + std::to_string(card.preprocess.channels) + ")");
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
  int in_channels = 1;
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
  }
  if (j.contains("calibration")) {
    get(object_at(j, "calibration", source), "temperature", &card.temperature, source);
    if (!(card.temperature > 0.0)) invalid(source, "calibration.temperature must be positive");
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
    j = json::parse(read_file(path));
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
  s << "\ninput:         " << p.image_size << "x" << p.image_size << " grey, letterboxed"
    << (p.clahe ? ", CLAHE" : "") << ", normalised (x - " << p.mean << ") / " << p.std << "\n";
  s << "architecture:  CNN stem [";
  for (size_t i = 0; i < a.stem_channels.size(); ++i) s << (i ? "," : "") << a.stem_channels[i];
  const int g = a.grid_size(p.image_size);
  s << "] -> " << g << "x" << g << " tokens + CLS, " << a.depth << " pre-norm blocks, dim "
    << a.dim << ", " << a.heads << " heads, MLP x" << a.mlp_ratio << "\n";
  s << "decision:      ";
  if (card.threshold >= 0) {
    s << card.classes[1] << " when its probability >= " << card.threshold << " (operating point "
      << card.operating_point << ")\n";
  } else {
    s << "the most probable class\n";
  }
  if (card.temperature != 1.0) s << "calibration:   temperature " << card.temperature << "\n";
  if (!card.weights_sha256.empty()) s << "weights:       sha256 " << card.weights_sha256 << "\n";
  if (card.training.contains("data")) s << "trained on:    " << card.training["data"].dump() << "\n";
  if (card.training.contains("command")) s << "command:       " << card.training["command"].get<std::string>() << "\n";
  if (!card.validation.empty()) s << "validation:    " << card.validation.dump() << "\n";
  return s.str();
}

std::string model_id(const std::string& name, const std::string& weights_sha256) {
  return name + "@" + weights_sha256.substr(0, 12);
}

std::string model_id(const std::string& dir) {
  const ModelCard card = read_card(dir);
  try {
    return model_id(card.name, sha256_file((std::filesystem::path(dir) / kWeightsFile).string()));
  } catch (const Error& e) {
    throw file_error(ErrorKind::kModel, "cannot load model", dir, std::string("cannot read ") + kWeightsFile);
  }
}

}  // namespace medattn::model
