// Abstention as users see it: a phantom model trained here abstains on a blank image and on
// images that are not phantoms, and not on phantoms; the records, the table, the HTML report,
// the exit codes, --resume, --shard and merge carry the abstentions.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/sha256.h"
#include "core/threads.h"
#include "eval/evaluate.h"
#include "model/card.h"
#include "model/ood.h"
#include "phantom/phantom.h"
#include "pipeline/batch.h"
#include "pipeline/diagnose.h"
#include "report/html_report.h"
#include "report/record.h"
#include "support/cli.h"
#include "support/helpers.h"
#include "support/tiny_model.h"
#include "train/fit_ood.h"
#include "train/train.h"

namespace fs = std::filesystem;
using namespace medattn;

namespace {

// A tiny phantom model trained once per process (its gate fitted at the end of train), fresh
// phantoms it has never seen, and images that are not phantoms.
struct AbstainFixture {
  fs::path dir;
  AbstainFixture() : dir(fs::temp_directory_path() / ("medattn_abstain_test_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    set_threads(2);
    phantom::PhantomOptions ph;
    ph.count = 300;
    ph.size = 64;
    ph.seed = 11;
    phantom::write_phantoms((dir / "train").string(), ph);
    ph.count = 24;
    ph.seed = 12;
    phantom::write_phantoms((dir / "fresh").string(), ph);
    train::TrainOptions o;
    o.data = (dir / "train/images").string();
    o.out = (dir / "model").string();
    o.classes = {"normal", "nodule", "consolidation"};
    o.epochs = 4;
    o.batch_size = 16;
    o.card.name = "tiny-phantom";
    o.card.intended_use.modalities = {"OT"};
    o.card.intended_use.description = "test model";
    testing::make_tiny(o.card);
    train::run_train(o, {}, {});
    fs::create_directories(dir / "other");
    cv::imwrite((dir / "other/blank.png").string(), cv::Mat(64, 64, CV_8UC1, cv::Scalar(0)));
    cv::Mat checker(64, 64, CV_8UC1);
    for (int y = 0; y < 64; ++y) {
      for (int x = 0; x < 64; ++x) checker.at<uint8_t>(y, x) = ((x / 8 + y / 8) % 2) ? 255 : 0;
    }
    cv::imwrite((dir / "other/checker.png").string(), checker);
    cv::Mat noise(64, 64, CV_8UC1);
    cv::randu(noise, 0, 256);
    cv::imwrite((dir / "other/noise.png").string(), noise);
  }
  ~AbstainFixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

const fs::path& fixture() {
  static const AbstainFixture f;
  return f.dir;
}

std::vector<report::DiagnosisRecord> diagnose(const std::vector<std::string>& inputs, bool ignore_scope = false,
                                              bool no_abstain = false) {
  pipeline::DiagnoseOptions o;
  o.model_dir = (fixture() / "model").string();
  o.inputs = inputs;
  o.ignore_scope = ignore_scope;
  o.no_abstain = no_abstain;
  o.count_total = false;
  std::vector<report::DiagnosisRecord> out;
  pipeline::run_diagnose(o, {}, [&](const report::DiagnosisRecord& r) { out.push_back(r); }, {});
  return out;
}

using clitest::q;

}  // namespace

TEST_CASE("train fits the gate: the card names the sidecar, its digest and the 98th percentile", "[ood][abstain]") {
  const auto card = model::read_card((fixture() / "model").string());
  REQUIRE(card.ood.enabled());
  CHECK(card.ood.file == "ood.bin");
  CHECK(card.ood.sha256 == sha256_file((fixture() / "model/ood.bin").string()));
  CHECK(card.ood.percentile == 98);
  CHECK(card.ood.feature == model::kDefaultOodFeature);
  CHECK(card.ood.fit["val_images"] == 60);
  CHECK(card.ood.fit["train_images"] == 240);
  // 98th percentile of 60 scores: at most two validation images lie above it.
  CHECK(card.ood.fit["val_coverage"].get<double>() >= 58.0 / 60.0 - 1e-9);
  CHECK(card.intended_use.colour == "grey");
  CHECK(card.intended_use.modalities == std::vector<std::string>{"OT"});
}

TEST_CASE("a phantom model abstains on blank and non-phantom images and not on phantoms", "[ood][abstain]") {
  const auto fresh = diagnose({(fixture() / "fresh/images").string()});
  REQUIRE(fresh.size() == 24);
  int abstained = 0;
  const auto gate = model::read_card((fixture() / "model").string()).ood;
  for (const auto& r : fresh) {
    INFO(r.file << ": " << r.abstained << " (threshold " << gate.threshold << ")");
    CHECK(r.ok);
    REQUIRE(r.ood_score.has_value());
    abstained += r.abstained.empty() ? 0 : 1;
    if (r.abstained.empty()) CHECK_FALSE(r.diagnosis.empty());
  }
  // The threshold is the 98th percentile of 60 validation phantoms' scores, so about 2% of new
  // phantoms lie above it; a gate that refuses phantoms as such would refuse most of them.
  CHECK(abstained <= 2);

  const auto other = diagnose({(fixture() / "other").string()});
  REQUIRE(other.size() == 3);  // blank, checker, noise (walk order is sorted)
  CHECK(other[0].file.find("blank.png") != std::string::npos);
  CHECK(other[0].abstained == "out of scope: near-constant image after windowing (standard deviation 0.0000, minimum 0.01)");
  const auto card = model::read_card((fixture() / "model").string());
  for (const auto& r : other) {
    INFO(r.file << ": " << r.abstained << " score " << *r.ood_score << " threshold " << card.ood.threshold);
    CHECK(r.ok);
    CHECK(r.error.empty());
    CHECK(r.diagnosis.empty());
    CHECK(r.probabilities.size() == 3);  // kept for whoever wants them
    CHECK_FALSE(r.abstained.empty());
  }
  char line[200];
  std::snprintf(line, sizeof(line), "out of distribution: Mahalanobis score %.2f above the threshold %.2f (98th percentile of validation)",
                *other[1].ood_score, card.ood.threshold);
  CHECK(other[1].abstained == line);
  CHECK(*other[1].ood_score > card.ood.threshold);
  CHECK(*other[2].ood_score > card.ood.threshold);

  // --ignore-scope: the blank image's scope failure becomes a warning, and the gate still decides.
  const auto ignored = diagnose({(fixture() / "other/blank.png").string()}, /*ignore_scope=*/true);
  CHECK(ignored[0].warning ==
        "out of scope: near-constant image after windowing (standard deviation 0.0000, minimum 0.01) (ignored: --ignore-scope)");
  // --no-abstain: every image gets its diagnosis, flagged.
  const auto kept = diagnose({(fixture() / "other").string()}, false, /*no_abstain=*/true);
  for (const auto& r : kept) {
    CHECK(r.abstained.empty());
    CHECK_FALSE(r.diagnosis.empty());
    CHECK(r.warning.find(" (not abstained: --no-abstain)") != std::string::npos);
  }
}

TEST_CASE("a non-phantom radiograph from the shared data is out of distribution for the phantom model", "[ood][abstain][shared]") {
  const std::string root = testdeps::shared_data_dir();
  MEDATTN_NEEDS(!root.empty(), "the shared data (" MEDATTN_SHARED_DATA ")");
  const auto r = diagnose({root + "/chest_xray_224/train/NORMAL/IM-0115-0001.jpeg", root + "/dicom/pydicom/CT_small.dcm"});
  REQUIRE(r.size() == 2);
  CHECK(r[0].abstained.rfind("out of distribution: Mahalanobis score ", 0) == 0);
  CHECK(r[1].abstained == "out of scope: DICOM Modality 'CT' (model 'tiny-phantom' takes OT)");
}

TEST_CASE("a changed sidecar stops the run like changed weights", "[ood][abstain]") {
  const fs::path copy = fixture() / "tampered";
  fs::remove_all(copy);
  fs::copy(fixture() / "model", copy);
  std::string bytes = read_file((copy / "ood.bin").string());
  bytes[100] ^= 0x10;
  write_file_atomic((copy / "ood.bin").string(), bytes);
  pipeline::DiagnoseOptions o;
  o.model_dir = copy.string();
  o.inputs = {(fixture() / "other/noise.png").string()};
  try {
    pipeline::run_diagnose(o, {}, {}, {});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kModel);
    CHECK(std::string(e.what()).find("cannot load model '" + copy.string() + "': ood.bin does not match the card's SHA-256") == 0);
  }
  CHECK(clitest::medattn("diagnose -m " + q(copy) + " " + q(fixture() / "other/noise.png")).code == 3);
}

TEST_CASE("json, csv, table and html carry abstained and ood_score", "[ood][abstain]") {
  const auto records = diagnose({(fixture() / "other/checker.png").string(), (fixture() / "fresh/images/normal").string()});
  REQUIRE(records.size() == 9);
  const auto& abst = records[0];
  REQUIRE_FALSE(abst.abstained.empty());
  int n_abstained = 0;
  for (const auto& r : records) n_abstained += r.abstained.empty() ? 0 : 1;
  const auto good = *std::find_if(records.begin(), records.end(), [](const auto& r) { return r.abstained.empty(); });
  const auto j = report::record_to_json(abst);
  CHECK(j["diagnosis"].is_null());
  CHECK(j["probability"].is_null());
  CHECK(j["error"].is_null());
  CHECK(j["abstained"] == abst.abstained);
  CHECK(j["probabilities"].size() == 3);
  CHECK(j["ood_score"].get<double>() == Approx(*abst.ood_score).margin(1e-4));
  const auto g = report::record_to_json(good);
  CHECK(g["abstained"].is_null());
  CHECK(g["diagnosis"].is_string());
  CHECK(g["ood_score"].is_number());
  CHECK_FALSE(g.contains("warning"));
  // A model without a gate: ood_score null.
  report::DiagnosisRecord plain = good;
  plain.ood_score.reset();
  CHECK(report::record_to_json(plain)["ood_score"].is_null());

  std::ostringstream csv, table;
  auto w = report::make_writer(report::Format::kCsv, csv, {"normal", "nodule", "consolidation"});
  w->write(abst);
  w->write(good);
  w->finish();
  std::istringstream lines(csv.str());
  std::string header, row1;
  std::getline(lines, header);
  std::getline(lines, row1);
  CHECK(header == "file,diagnosis,probability,p_normal,p_nodule,p_consolidation,heatmap,error,model,abstained,ood_score,warning,study_uid,series_uid,sop_uid,patient_id,accession_number,modality,dicom_sc,dicom_sr");
  CHECK(row1.find("," + report::csv_field(abst.abstained) + ",") != std::string::npos);
  CHECK(row1.rfind(abst.file + ",,,", 0) == 0);  // no diagnosis, no probability
  auto t = report::make_writer(report::Format::kTable, table, {});
  t->write(abst);
  t->write(good);
  t->finish();
  CHECK(table.str().find("ABSTAINED  -       " + abst.abstained) != std::string::npos);

  const std::string page = (fixture() / "report.html").string();
  {
    report::ReportInfo info;
    info.classes = {"normal", "nodule", "consolidation"};
    report::HtmlReport html(page, info);
    for (const auto& r : records) html.add(r);
    html.finish({});
  }
  const std::string text = read_file(page);
  CHECK(text.find("<th>abstained</th><th>ood_score</th>") != std::string::npos);
  CHECK(text.find(std::to_string(9 - n_abstained) + " diagnosed, " + std::to_string(n_abstained) + " abstained, 0 failed") !=
        std::string::npos);
  CHECK(text.find("<tr class=\"abstained\">") != std::string::npos);
  CHECK(text.find(report::html_escape(abst.abstained)) != std::string::npos);
}

TEST_CASE("abstentions exit 0, failures still exit 1, resume, shards and merge keep them", "[ood][abstain][cli]") {
  const fs::path d = fixture();
  const std::string model = "-m " + q(d / "model") + " --threads 1 --quiet ";
  const std::string inputs = q(d / "other") + " " + q(d / "fresh/images/nodule");
  const auto all = clitest::medattn("diagnose " + model + "--format json " + inputs);
  CHECK(all.code == 0);
  const auto records = nlohmann::json::parse(all.out);
  REQUIRE(records.size() == 11);
  int abstained = 0;
  for (const auto& r : records) {
    CHECK(r.contains("abstained"));
    CHECK(r["ood_score"].is_number());
    abstained += r["abstained"].is_string() ? 1 : 0;
  }
  CHECK(records[0]["abstained"].is_string());  // blank, checker, noise; the 8 nodule phantoms mostly not
  CHECK(records[1]["abstained"].is_string());
  CHECK(records[2]["abstained"].is_string());
  CHECK(abstained <= 5);
  // One broken file among them: exit 1, and the abstentions are still there.
  std::ofstream(d / "broken.png") << "not a png";
  const auto mixed = clitest::medattn("diagnose " + model + "--format json " + inputs + " " + q(d / "broken.png"));
  CHECK(mixed.code == 1);
  CHECK(nlohmann::json::parse(mixed.out).size() == 12);
  // The table says how many abstained, apart from the failures.
  const fs::path err = d / "summary.txt";
  CHECK(clitest::medattn("diagnose " + model + inputs, err.string()).code == 0);
  const std::string summary = clitest::slurp(err);
  CHECK(summary.find("diagnosed " + std::to_string(11 - abstained) + " of 11 image(s), 0 failed, " + std::to_string(abstained) +
                     " abstained") != std::string::npos);
  CHECK(summary.find("abstained, out of scope: near-constant image after windowing: 1") != std::string::npos);
  CHECK(summary.find("abstained, out of distribution: Mahalanobis score: " + std::to_string(abstained - 1)) != std::string::npos);
  // --no-abstain: diagnoses for all, flagged.
  const auto kept = nlohmann::json::parse(clitest::medattn("diagnose " + model + "--no-abstain --format json " + q(d / "other")).out);
  for (const auto& r : kept) {
    CHECK(r["diagnosis"].is_string());
    CHECK(r["warning"].is_string());
  }

  // --resume: a second run over the same inputs records nothing new; csv read-back takes the new columns.
  for (const char* ext : {"jsonl", "csv"}) {
    INFO(ext);
    const fs::path out = d / (std::string("resume.") + ext);
    fs::remove(out);
    CHECK(clitest::medattn("diagnose " + model + "-o " + q(out) + " --resume " + inputs).code == 0);
    const std::string first = read_file(out.string());
    CHECK(clitest::medattn("diagnose " + model + "-o " + q(out) + " --resume " + inputs).code == 0);
    CHECK(read_file(out.string()) == first);
    const auto rec = pipeline::read_recorded(out.string(), std::string(ext) == "csv", model::model_id((d / "model").string()));
    CHECK(rec.records == 11);
    CHECK(rec.files.size() == 11);
  }
  // Shards, merged: every input once, abstentions included.
  for (int k = 0; k < 2; ++k) {
    const fs::path part = d / ("part-" + std::to_string(k) + ".jsonl");
    fs::remove(part);
    CHECK(clitest::medattn("diagnose " + model + "--shard " + std::to_string(k) + "/2 -o " + q(part) + " " + inputs).code == 0);
  }
  const fs::path merged = d / "merged.jsonl";
  CHECK(clitest::medattn("merge " + q(d / "part-0.jsonl") + " " + q(d / "part-1.jsonl") + " -o " + q(merged) + " --inputs " + inputs)
            .code == 0);
  int lines = 0, merged_abstained = 0;
  std::ifstream f(merged);
  for (std::string line; std::getline(f, line); ++lines) merged_abstained += nlohmann::json::parse(line)["abstained"].is_string();
  CHECK(lines == 11);
  CHECK(merged_abstained == abstained);
}

TEST_CASE("fit-ood refits the gate of an existing model without touching its weights", "[ood][abstain]") {
  const fs::path copy = fixture() / "refit";
  fs::remove_all(copy);
  fs::copy(fixture() / "model", copy);
  const std::string weights = sha256_file((copy / "weights.bin").string());
  train::FitOodOptions o;
  o.model_dir = copy.string();
  o.data = (fixture() / "train/images").string();
  o.percentile = 90;
  o.feature = "cls";
  const auto r = train::run_fit_ood(o, {});
  CHECK(r.train_count == 240);  // the split of train: stratified 0.2, seed 1
  CHECK(r.val_count == 60);
  CHECK(r.val_coverage >= 54.0 / 60.0 - 1e-9);
  const auto card = model::read_card(copy.string());
  CHECK(card.ood.percentile == 90);
  CHECK(card.ood.feature == "cls");
  CHECK(card.ood.threshold == Approx(r.gate.threshold));
  CHECK(card.ood.sha256 == sha256_file((copy / "ood.bin").string()));
  CHECK(sha256_file((copy / "weights.bin").string()) == weights);
  CHECK(card.weights_sha256 == weights);
  CHECK(model::model_id(copy.string()) == model::model_id((fixture() / "model").string()));
}

TEST_CASE("a percentile needs enough validation images to mean anything", "[ood][abstain]") {
  // 24 phantoms: 6 validation images, and the 98th percentile of 6 scores is a guess.
  const fs::path d = fixture() / "few";
  phantom::PhantomOptions ph;
  ph.count = 24;
  ph.size = 64;
  phantom::write_phantoms((d / "ph").string(), ph);
  train::TrainOptions o;
  o.data = (d / "ph/images").string();
  o.out = (d / "model").string();
  o.classes = {"normal", "nodule", "consolidation"};
  o.epochs = 1;
  o.batch_size = 8;
  testing::make_tiny(o.card);
  std::vector<std::string> notices;
  train::run_train(o, {}, [&](const std::string& n) { notices.push_back(n); });
  CHECK(std::find(notices.begin(), notices.end(),
                  "no OOD gate: 6 validation image(s) cannot set a threshold at the 98th percentile (at least 50 needed)") !=
        notices.end());
  CHECK_FALSE(model::read_card(o.out).ood.enabled());
  CHECK_FALSE(fs::exists(d / "model/ood.bin"));
  train::FitOodOptions f;
  f.model_dir = o.out;
  f.data = o.data;
  testing::require_error([&] { train::run_fit_ood(f, {}); }, ErrorKind::kInvalidArgument,
                         "cannot set the OOD threshold at the 98th percentile of 6 validation image(s) (at least 50 needed)");
  f.percentile = 80;  // 100 / 20 = 5: enough
  CHECK(train::run_fit_ood(f, {}).val_count == 6);
  CHECK(fs::exists(d / "model/ood.bin"));
  // Retrained without a gate: the old sidecar goes, and records carry "ood_score": null.
  train::run_train(o, {}, {});
  CHECK_FALSE(fs::exists(d / "model/ood.bin"));
  pipeline::DiagnoseOptions opt;
  opt.model_dir = o.out;
  opt.inputs = {(d / "ph/images/normal/normal_0000.png").string()};
  std::vector<report::DiagnosisRecord> records;
  pipeline::run_diagnose(opt, {}, [&](const report::DiagnosisRecord& r) { records.push_back(r); }, {});
  REQUIRE(records.size() == 1);
  CHECK_FALSE(records[0].ood_score.has_value());
  CHECK(report::record_to_json(records[0])["ood_score"].is_null());
  CHECK(records[0].abstained.empty());
}

TEST_CASE("evaluate's coverage and OOD separation agree with what diagnose does", "[ood][abstain]") {
  const auto fresh = diagnose({(fixture() / "fresh/images").string()});
  const auto other = diagnose({(fixture() / "other").string()});
  std::vector<double> in, out;
  int covered = 0, correct = 0;
  for (const auto& r : fresh) {
    in.push_back(*r.ood_score);
    if (!r.abstained.empty()) continue;
    ++covered;
    correct += fs::path(r.file).parent_path().filename().string() == r.diagnosis ? 1 : 0;
  }
  for (const auto& r : other) out.push_back(*r.ood_score);
  eval::EvaluateOptions o;
  o.model_dir = (fixture() / "model").string();
  o.data = (fixture() / "fresh/images").string();
  o.ood_data = {(fixture() / "other").string()};
  const auto e = eval::run_evaluate(o, {});
  const auto& g = e.gate;
  REQUIRE(g.enabled);
  CHECK(g.n == 24);
  CHECK(g.scope_abstained == 0);
  CHECK(g.coverage == Approx(covered / 24.0));
  CHECK(g.selective_accuracy == Approx(static_cast<double>(correct) / covered));
  CHECK(g.aurc >= 0.0);
  CHECK(g.aurc <= 1.0);
  REQUIRE(g.ood.size() == 1);
  CHECK(g.ood[0].n == 3);
  CHECK(g.ood[0].abstention == 1.0);  // blank (scope), checkerboard and noise (score)
  CHECK(g.ood[0].auroc == Approx(model::ood_auroc(in, out)));
  CHECK(g.ood[0].fpr95 == Approx(model::ood_fpr_at_95_tpr(in, out)));
  CHECK(g.pooled.auroc == g.ood[0].auroc);
  // A model without a gate cannot measure --ood.
  o.model_dir = (fixture() / "few/model").string();
  if (fs::exists(fixture() / "few/model/model.json") && !model::read_card(o.model_dir).ood.enabled()) {
    CHECK_THROWS_AS(eval::run_evaluate(o, {}), Error);
  }
}
