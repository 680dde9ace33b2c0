// The training checkpoint: OUT/checkpoint written atomically after every epoch, read back by
// --resume.
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "train/train_parts.h"

namespace fs = std::filesystem;

namespace medattn::train {

std::string checkpoint_dir(const std::string& out) { return (fs::path(out) / "checkpoint").string(); }

void save_checkpoint(const std::string& out, const Checkpoint& c, model::AttnNet& net, model::AttnNet& best,
                     model::AttnNet* ema, torch::optim::AdamW& optimizer, const model::ModelCard& card) {
  write_checkpoint_dir(checkpoint_dir(out), [&](const std::string& folder) {
    const fs::path tmp = folder;
    model::save_weights(*net, (tmp / "net.bin").string());
    model::save_weights(*best, (tmp / "best.bin").string());
    if (ema != nullptr) model::save_weights(**ema, (tmp / "ema.bin").string());
    torch::save(optimizer, (tmp / "optimizer.pt").string());
    save_rng_state((tmp / "rng.pt").string());
    nlohmann::json j = {{"epoch", c.epoch}, {"step", c.step}, {"best_auc", c.best_auc}, {"best_acc", c.best_acc},
                        {"best_epoch", c.best_epoch}, {"epochs_since_best", c.epochs_since_best}, {"member", c.member},
                        {"architecture", model::card_to_json(card)["architecture"]},
                        {"input", model::card_to_json(card)["input"]}, {"classes", card.classes}};
    write_file_atomic((tmp / "state.json").string(), j.dump(2));
  });
}

int checkpoint_member(const std::string& out) {
  fs::path dir = checkpoint_dir(out);
  std::error_code ec;
  if (!fs::exists(dir / "state.json", ec) && fs::exists(dir.string() + ".old/state.json", ec)) dir = dir.string() + ".old";
  if (!fs::exists(dir / "state.json", ec)) return -1;
  try {
    return nlohmann::json::parse(read_file((dir / "state.json").string())).value("member", 0);
  } catch (const std::exception&) {
    return -1;
  }
}

Checkpoint load_checkpoint(const std::string& out, model::AttnNet& net, model::AttnNet& best, model::AttnNet* ema,
                           torch::optim::AdamW& optimizer, const model::ModelCard& card) {
  fs::path dir = checkpoint_dir(out);
  std::error_code ec;
  // A kill between the two renames of save_checkpoint leaves only the ".old" copy.
  if (!fs::exists(dir / "state.json", ec) && fs::exists(dir.string() + ".old/state.json", ec)) dir = dir.string() + ".old";
  if (!fs::exists(dir / "state.json", ec)) {
    throw file_error(ErrorKind::kInvalidArgument, "cannot resume", out, "no checkpoint (train without --resume first)");
  }
  const auto j = nlohmann::json::parse(read_file((dir / "state.json").string()));
  const auto want = model::card_to_json(card);
  if (j.value("architecture", nlohmann::json()) != want["architecture"] || j.value("input", nlohmann::json()) != want["input"] ||
      j.value("classes", nlohmann::json()) != nlohmann::json(card.classes)) {
    throw file_error(ErrorKind::kInvalidArgument, "cannot resume", out,
                     "the checkpoint was made with another architecture, input size or classes");
  }
  model::load_weights(*net, (dir / "net.bin").string());
  model::load_weights(*best, (dir / "best.bin").string());
  if (ema != nullptr) {
    if (!fs::exists(dir / "ema.bin", ec)) throw file_error(ErrorKind::kInvalidArgument, "cannot resume", out, "the checkpoint has no EMA weights (--ema differs)");
    model::load_weights(**ema, (dir / "ema.bin").string());
  }
  torch::load(optimizer, (dir / "optimizer.pt").string());
  load_rng_state((dir / "rng.pt").string());
  Checkpoint c;
  c.epoch = j.at("epoch");
  c.step = j.at("step");
  c.best_auc = j.at("best_auc");
  c.best_acc = j.at("best_acc");
  c.best_epoch = j.at("best_epoch");
  c.epochs_since_best = j.at("epochs_since_best");
  c.member = j.value("member", 0);
  return c;
}

}  // namespace medattn::train
