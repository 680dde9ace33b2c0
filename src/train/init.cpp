// train --init: the pretrained encoder (medattn pretrain) or another model's weights that
// every network starts from, and how the card describes it.
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/sha256.h"
#include "train/pretrain.h"
#include "train/train_parts.h"

namespace fs = std::filesystem;

namespace medattn::train {

const std::vector<std::string> kFreshAtInit = {"head.", "clinical_tokens.", "cross."};

InitSource find_init(const std::string& dir) {
  InitSource s;
  if (dir.empty()) return s;
  s.dir = dir;
  std::error_code ec;
  const fs::path encoder = fs::path(dir) / kEncoderFile, weights = fs::path(dir) / model::kWeightsFile;
  if (fs::is_regular_file(encoder, ec)) {
    s.path = encoder.string();
    const auto card = fs::path(dir) / kPretrainCard;
    if (fs::is_regular_file(card, ec)) {
      try {
        s.pretrain = nlohmann::json::parse(read_file(card.string()));
      } catch (const nlohmann::json::exception& e) {
        throw file_error(ErrorKind::kInvalidArgument, "cannot initialise from", card.string(), std::string("not JSON: ") + e.what());
      }
    }
  } else if (fs::is_regular_file(weights, ec)) {
    s.path = weights.string();
  } else {
    throw file_error(ErrorKind::kInvalidArgument, "cannot initialise from", dir,
                     std::string("no ") + kEncoderFile + " (medattn pretrain) or " + model::kWeightsFile + " (a model)");
  }
  return s;
}

nlohmann::json describe_init(const InitSource& s) {
  nlohmann::json j = {{"from", s.dir}, {"file", fs::path(s.path).filename().string()}, {"sha256", sha256_file(s.path)},
                      {"tensors", s.tensors}};
  for (const char* key : {"objective", "data", "images", "epochs", "augment", "command"}) {
    if (s.pretrain.contains(key)) j[key] = s.pretrain[key];
  }
  return j;
}

}  // namespace medattn::train
