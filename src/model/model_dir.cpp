// A model directory: model.json, weights.bin and an ensemble's member files, each checked
// against the card's SHA-256 (model/net.h).
#include "model/net.h"

#include <filesystem>

#include "core/bounded_io.h"
#include "core/error.h"
#include "core/sha256.h"

namespace medattn::model {

LoadedModel load_model(const std::string& dir) {
  LoadedModel m;
  m.card = read_card(dir);
  const auto weights = (std::filesystem::path(dir) / kWeightsFile).string();
  std::error_code ec;
  if (!std::filesystem::exists(weights, ec)) {
    throw file_error(ErrorKind::kModel, "cannot load model", dir, std::string("missing ") + kWeightsFile);
  }
  require_regular_file(weights, ErrorKind::kModel, "cannot load model", kMaxWeightsBytes);
  m.weights_sha256 = sha256_file(weights);
  if (!m.card.weights_sha256.empty() && m.card.weights_sha256 != m.weights_sha256) {
    throw file_error(ErrorKind::kModel, "cannot load model", dir,
                     std::string(kWeightsFile) + " does not match the card's SHA-256 (got " + m.weights_sha256.substr(0, 16) +
                         "..., expected " + m.card.weights_sha256.substr(0, 16) + "...): corrupt or replaced");
  }
  m.net = build_net(m.card);
  load_weights(*m.net, weights);
  m.net->eval();
  m.nets.push_back(m.net);
  for (const auto& member : m.card.members) {
    const auto path = (std::filesystem::path(dir) / member.file).string();
    if (!std::filesystem::exists(path, ec)) {
      throw file_error(ErrorKind::kModel, "cannot load model", dir, "missing ensemble member " + member.file);
    }
    require_regular_file(path, ErrorKind::kModel, "cannot load model", kMaxWeightsBytes);
    const auto sha = sha256_file(path);
    if (sha != member.sha256) {
      throw file_error(ErrorKind::kModel, "cannot load model", dir,
                       member.file + " does not match the card's SHA-256 (got " + sha.substr(0, 16) + "..., expected " +
                           member.sha256.substr(0, 16) + "...): corrupt or replaced");
    }
    AttnNet net = build_net(m.card);
    load_weights(*net, path);
    net->eval();
    m.nets.push_back(net);
  }
  return m;
}

void save_model(const std::string& dir, const ModelCard& card, const std::vector<AttnNet>& nets) {
  TORCH_CHECK(!nets.empty(), "save_model: no network");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw file_error(ErrorKind::kIOError, "cannot create model directory", dir, ec.message());
  const auto weights = (std::filesystem::path(dir) / kWeightsFile).string();
  AttnNet first = nets[0];
  save_weights(*first, weights);
  ModelCard recorded = card;
  recorded.weights_sha256 = sha256_file(weights);
  recorded.members.clear();
  for (size_t k = 1; k < nets.size(); ++k) {
    const std::string file = "member-" + std::to_string(k + 1) + ".bin";
    const auto path = (std::filesystem::path(dir) / file).string();
    AttnNet member = nets[k];
    save_weights(*member, path);
    recorded.members.push_back({file, sha256_file(path)});
  }
  write_card(dir, recorded);
  // Members of an earlier, larger ensemble written to the same directory are not part of this model.
  for (size_t k = nets.size() + 1;; ++k) {
    const auto stale = std::filesystem::path(dir) / ("member-" + std::to_string(k) + ".bin");
    if (!std::filesystem::remove(stale, ec)) break;
  }
}

void save_model(const std::string& dir, const ModelCard& card, AttnNet& net) { save_model(dir, card, std::vector<AttnNet>{net}); }

}  // namespace medattn::model
