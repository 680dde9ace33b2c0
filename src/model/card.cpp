// The model card's plain parts (model/card.h): test-time flips, the token grid, the
// description `info` prints, and model ids. JSON in and out: model/card_json.cpp; the
// clinical schema: model/clinical.cpp; intended use and OOD gate: model/card_scope.cpp.
#include <algorithm>
#include <filesystem>
#include <sstream>

#include "core/bounded_io.h"
#include "core/error.h"
#include "core/sha256.h"
#include "core/text.h"
#include "model/card.h"

namespace medattn::model {

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

int ArchConfig::grid_size(int image_size) const {
  return image_size >> static_cast<int>(stem_channels.size());
}

namespace {
std::string short_pct(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}
}  // namespace

std::string describe_card(const ModelCard& card) {
  std::ostringstream s;
  const auto& a = card.arch;
  const auto& p = card.preprocess;
  s << "name:          " << card.name << " " << card.version << "\n";
  if (!card.description.empty()) s << "description:   " << card.description << "\n";
  s << "classes:       ";
  s << join(card.classes, ", ");
  s << "\ninput:         " << p.image_size << "x" << p.image_size << (p.channels == 3 ? " colour" : " grey") << ", letterboxed"
    << (p.colour_constancy == "shades-of-grey" ? ", shades-of-grey colour constancy" : "")
    << (p.intensity == "percentile" ? ", stretched " + short_pct(p.intensity_low) + "-" + short_pct(p.intensity_high) + "th percentile" : std::string())
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
    s << join(card.tta, ", ") << ")\n";
  }
  if (!card.heatmap_flips.empty()) {
    s << "heatmaps:      mean over the views of ";
    s << join(card.heatmap_flips, ", ") << "\n";
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