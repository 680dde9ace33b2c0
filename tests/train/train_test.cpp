// Training as users rely on it: repeatable, resumable, and learning what the data shows.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/threads.h"
#include <nlohmann/json.hpp>
#include "eval/evaluate.h"
#include "model/card.h"
#include "phantom/phantom.h"
#include "pipeline/diagnose.h"
#include "support/temp_dir.h"
#include "support/tiny_model.h"
#include "train/train.h"

namespace fs = std::filesystem;
using namespace medattn;

namespace {

fs::path phantom_set(const std::string& name, int count, int size) {
  const fs::path dir = testing::scratch_dir("train_test_" + name);
  phantom::PhantomOptions opt;
  opt.count = count;
  opt.size = size;
  opt.seed = 5;
  phantom::write_phantoms(dir.string(), opt);
  return dir;
}

train::TrainOptions tiny_options(const fs::path& data, const fs::path& out, int epochs) {
  train::TrainOptions o;
  o.data = (data / "images").string();
  o.out = out.string();
  o.classes = {"normal", "nodule", "consolidation"};
  o.epochs = epochs;
  o.batch_size = 8;
  testing::make_tiny(o.card);
  return o;
}

}  // namespace

TEST_CASE("an interrupted run resumed from its checkpoint ends with the same weights", "[train]") {
  set_threads(1);
  const fs::path data = phantom_set("resume", 30, 64);
  const fs::path tmp = testing::scratch_dir("train_test_resume_models");

  // Uninterrupted: 3 epochs.
  auto full = tiny_options(data, tmp / "full", 3);
  train::run_train(full, {}, {});

  // Interrupted after epoch 2 (its checkpoint is on disk), then resumed.
  auto part = tiny_options(data, tmp / "part", 3);
  struct Crash {};
  CHECK_THROWS_AS(train::run_train(part, [](const train::EpochReport& r) { if (r.epoch == 2) throw Crash{}; }, {}), Crash);
  CHECK(fs::exists(tmp / "part" / "checkpoint" / "state.json"));
  CHECK_FALSE(fs::exists(tmp / "part" / "weights.bin"));
  // Resuming with another architecture is refused.
  auto other = part;
  other.resume = true;
  other.card.arch.dim = 32;
  CHECK_THROWS_WITH(train::run_train(other, {}, {}),
                    "cannot resume '" + (tmp / "part").string() + "': the checkpoint was made with another architecture, input size or classes");
  part.resume = true;
  std::vector<int> epochs_run;
  std::vector<std::string> notices;
  train::run_train(part, [&](const train::EpochReport& r) { epochs_run.push_back(r.epoch); },
                   [&](const std::string& n) { notices.push_back(n); });
  CHECK(epochs_run == std::vector<int>{3});
  const bool announced = std::any_of(notices.begin(), notices.end(), [](const std::string& n) {
    return n.rfind("resuming after epoch 2 (best so far: epoch ", 0) == 0;
  });
  CHECK(announced);
  CHECK(read_file((tmp / "full" / "weights.bin").string()) == read_file((tmp / "part" / "weights.bin").string()));

  // The checkpoint has served its purpose once the run is complete.
  CHECK_FALSE(fs::exists(tmp / "part" / "checkpoint"));
  fs::remove_all(tmp);
  fs::remove_all(data);
}

TEST_CASE("the same seed gives the same model", "[train]") {
  set_threads(1);
  const fs::path data = phantom_set("seed", 24, 64);
  const fs::path tmp = testing::scratch_dir("train_test_seed_models");
  train::run_train(tiny_options(data, tmp / "a", 1), {}, {});
  train::run_train(tiny_options(data, tmp / "b", 1), {}, {});
  CHECK(read_file((tmp / "a" / "weights.bin").string()) == read_file((tmp / "b" / "weights.bin").string()));
  auto c = tiny_options(data, tmp / "c", 1);
  c.seed = 2;
  train::run_train(c, {}, {});
  CHECK(read_file((tmp / "a" / "weights.bin").string()) != read_file((tmp / "c" / "weights.bin").string()));
  fs::remove_all(tmp);
  fs::remove_all(data);
}

TEST_CASE("train --select last keeps the end of the schedule, whatever validation says", "[train]") {
  set_threads(1);
  const fs::path data = phantom_set("select", 24, 64);
  const fs::path tmp = testing::scratch_dir("train_test_select_models");
  auto o = tiny_options(data, tmp / "last", 3);
  o.select = "last";
  std::vector<bool> kept;
  std::string last_net;
  const auto result = train::run_train(o, [&](const train::EpochReport& r) {
    kept.push_back(r.best);
    // The checkpoint is written before the report: it holds this epoch's network.
    if (r.epoch == 3) last_net = read_file((tmp / "last" / "checkpoint" / "net.bin").string());
  }, {});
  CHECK(kept == std::vector<bool>{true, true, true});
  CHECK(result.best_epoch == 3);
  CHECK(result.card.training.at("selection") == "last epoch");
  CHECK(read_file((tmp / "last" / "weights.bin").string()) == last_net);
  // Early stopping watches the best AUC, so it cannot go with --select last; unknown rules are named.
  o.patience = 2;
  CHECK_THROWS_WITH(train::run_train(o, {}, {}), "--patience stops on the best validation AUC, so it needs --select best-auc");
  o.patience = 0;
  o.select = "best-loss";
  CHECK_THROWS_WITH(train::run_train(o, {}, {}), "--select 'best-loss' is not one of best-auc, last");
  fs::remove_all(tmp);
  fs::remove_all(data);
}

TEST_CASE("an ensemble trains its members one after the other, resumes inside a member, and ships them all", "[train][ensemble]") {
  set_threads(1);
  const fs::path data = phantom_set("ensemble", 30, 64);
  const fs::path tmp = testing::scratch_dir("train_test_ensemble_models");
  auto single = tiny_options(data, tmp / "single", 2);
  train::run_train(single, {}, {});
  auto full = tiny_options(data, tmp / "full", 2);
  full.members = 2;
  std::vector<std::pair<int, int>> seen;  // (member, epoch)
  const auto result = train::run_train(full, [&](const train::EpochReport& r) {
    CHECK(r.members == 2);
    seen.emplace_back(r.member, r.epoch);
  }, {});
  CHECK((seen == std::vector<std::pair<int, int>>{{1, 1}, {1, 2}, {2, 1}, {2, 2}}));
  // The first member is the model the same command trains alone; the second differs (seed + 1).
  CHECK(read_file((tmp / "single" / "weights.bin").string()) == read_file((tmp / "full" / "weights.bin").string()));
  CHECK(read_file((tmp / "full" / "weights.bin").string()) != read_file((tmp / "full" / "member-2.bin").string()));
  const auto card = model::read_card((tmp / "full").string());
  REQUIRE(card.members.size() == 1);
  const auto& notes = card.training["ensemble"]["member_validation"];
  REQUIRE(notes.size() == 2);
  CHECK(notes[0]["seed"] == 1);
  CHECK(notes[1]["seed"] == 2);
  CHECK(card.training["ensemble"]["members"] == 2);
  CHECK_FALSE(fs::exists(tmp / "full" / "checkpoint-members"));
  CHECK_FALSE(fs::exists(tmp / "full" / "checkpoint"));
  // The card's validation figures are the ensemble's: evaluate on the same split agrees.
  CHECK(result.validation.accuracy == Approx(card.validation["accuracy"].get<double>()).margin(1e-6));

  // diagnose and evaluate use both networks: the ensemble's diagnoses are not its first member's.
  eval::EvaluateOptions e;
  e.data = (data / "images").string();
  e.model_dir = (tmp / "full").string();
  const auto by_ensemble = eval::run_evaluate(e, {});
  e.model_dir = (tmp / "single").string();
  const auto by_first = eval::run_evaluate(e, {});
  CHECK(by_ensemble.predictions.probabilities != by_first.predictions.probabilities);
  auto diagnose_probabilities = [&](const fs::path& model) {
    pipeline::DiagnoseOptions d;
    d.model_dir = model.string();
    d.inputs = {e.data};
    d.heatmap_dir = (tmp / ("maps-" + model.filename().string())).string();
    fs::create_directories(d.heatmap_dir);
    std::vector<std::vector<std::pair<std::string, double>>> probabilities;
    std::string id;
    pipeline::run_diagnose(d, [&](const std::vector<std::string>&, const std::string& model_id) { id = model_id; },
                           [&](const report::DiagnosisRecord& r) {
                             REQUIRE(r.ok);
                             probabilities.push_back(r.probabilities);
                           }, {});
    CHECK(id == model::model_id(model.string()));
    return probabilities;
  };
  CHECK(diagnose_probabilities(tmp / "full") != diagnose_probabilities(tmp / "single"));

  // Interrupted in the second member's first epoch, then resumed: the same two networks.
  auto part = tiny_options(data, tmp / "part", 2);
  part.members = 2;
  struct Crash {};
  CHECK_THROWS_AS(train::run_train(part, [](const train::EpochReport& r) { if (r.member == 2 && r.epoch == 1) throw Crash{}; }, {}), Crash);
  CHECK(fs::exists(tmp / "part" / "checkpoint-members" / "member-1.bin"));
  CHECK_FALSE(fs::exists(tmp / "part" / "weights.bin"));
  part.resume = true;
  std::vector<std::pair<int, int>> resumed;
  std::vector<std::string> notices;
  train::run_train(part, [&](const train::EpochReport& r) { resumed.emplace_back(r.member, r.epoch); },
                   [&](const std::string& n) { notices.push_back(n); });
  CHECK((resumed == std::vector<std::pair<int, int>>{{2, 2}}));
  CHECK(std::find(notices.begin(), notices.end(), "1 of 2 ensemble members already trained") != notices.end());
  CHECK(read_file((tmp / "full" / "weights.bin").string()) == read_file((tmp / "part" / "weights.bin").string()));
  CHECK(read_file((tmp / "full" / "member-2.bin").string()) == read_file((tmp / "part" / "member-2.bin").string()));
  CHECK_FALSE(fs::exists(tmp / "part" / "checkpoint-members"));
  fs::remove_all(tmp);
  fs::remove_all(data);
}

TEST_CASE("the card keeps the test-time and heatmap flips, and evaluate applies them by default", "[train][tta]") {
  set_threads(1);
  const fs::path data = phantom_set("tta", 24, 64);
  const fs::path tmp = testing::scratch_dir("train_test_tta_models");
  auto o = tiny_options(data, tmp / "m", 1);
  o.hflip = o.vflip = true;
  o.tta = "hflip";
  const auto result = train::run_train(o, {}, {});
  const auto card = model::read_card((tmp / "m").string());
  CHECK((card.tta == std::vector<std::string>{"hflip"}));
  CHECK((card.heatmap_flips == std::vector<std::string>{"hflip", "vflip"}));  // the training flips
  CHECK((result.card.tta == card.tta));

  eval::EvaluateOptions e;
  e.model_dir = (tmp / "m").string();
  e.data = (data / "images").string();
  const auto by_card = eval::run_evaluate(e, {});
  e.tta = "hflip";
  const auto explicit_flip = eval::run_evaluate(e, {});
  e.tta = "none";
  const auto plain = eval::run_evaluate(e, {});
  CHECK((by_card.tta == std::vector<std::string>{"hflip"}));
  CHECK(plain.tta.empty());
  CHECK(by_card.predictions.probabilities == explicit_flip.predictions.probabilities);
  CHECK(by_card.predictions.probabilities != plain.predictions.probabilities);
  fs::remove_all(tmp);
  fs::remove_all(data);
}
