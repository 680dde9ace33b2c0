// Clinical covariates as tokens: their encoding in the card, the missing embedding, and a
// model that learns what only a covariate tells.
#include <algorithm>
// LibTorch (through glog) defines its own CHECK; its headers come before Catch's so that
// Catch's CHECK is the one in force.
#include "eval/evaluate.h"
#include "explain/methods.h"
#include "model/net.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "core/threads.h"
#include "model/card.h"
#include "pipeline/diagnose.h"
#include "support/temp_dir.h"
#include "support/tiny_model.h"
#include "train/train.h"

namespace fs = std::filesystem;
using namespace medattn;
using model::ClinicalField;

namespace {

model::ModelCard clinical_card() {
  model::ModelCard card;
  card.name = "c";
  card.classes = {"a", "b"};
  testing::make_tiny(card, /*channels=*/3);
  card.clinical = model::parse_clinical_spec("Age:num,sex:cat");
  model::fit_clinical(card.clinical, {{"40", "male"}, {"60", "Female"}, {"unknown", "male"}, {"", "unknown"}});
  return card;
}

// Noise images of 32 px in colour; the label is carried only by the CSV column `marker`
// (`noise` is a random number). Rows 0..119 are split train, 120..159 split val.
fs::path covariate_only_set() {
  const fs::path dir = testing::scratch_dir("clinical_test_set");
  fs::create_directories(dir / "images");
  cv::RNG rng(7);
  std::ofstream csv(dir / "data.csv");
  csv << "path,label,marker,noise,split\n";
  for (int i = 0; i < 160; ++i) {
    cv::Mat img(32, 32, CV_8UC3);
    rng.fill(img, cv::RNG::UNIFORM, 0, 256);
    const std::string name = "images/" + std::to_string(i) + ".png";
    REQUIRE(cv::imwrite((dir / name).string(), img));
    const bool positive = rng.uniform(0, 2) == 1;
    csv << name << "," << (positive ? "pos" : "neg") << "," << (positive ? "red" : "blue") << ","
        << rng.uniform(0.0, 100.0) << "," << (i < 120 ? "train" : "val") << "\n";
  }
  return dir;
}

train::TrainOptions tiny(const fs::path& data, const fs::path& out, const std::string& clinical) {
  train::TrainOptions o;
  o.data = (data / "data.csv").string();
  o.split = "train";
  o.val_split = "val";
  o.out = out.string();
  o.clinical = clinical;
  o.clinical_dropout = 0.1;
  o.epochs = 12;
  o.batch_size = 16;
  o.lr = 3e-3;
  o.seed = 3;
  testing::make_tiny(o.card, /*channels=*/3);
  return o;
}

}  // namespace

TEST_CASE("covariate encoding round-trips through the card", "[clinical]") {
  const auto card = clinical_card();
  REQUIRE(card.clinical.size() == 2);
  CHECK(card.clinical[0].name == "age");
  CHECK(card.clinical[0].type == ClinicalField::Type::kNumeric);
  CHECK(card.clinical[0].mean == Approx(50.0));
  CHECK(card.clinical[0].std == Approx(10.0));  // population std of 40 and 60
  CHECK((card.clinical[1].vocabulary == std::vector<std::string>{"female", "male"}));

  const auto back = model::card_from_json(model::card_to_json(card), "t");
  REQUIRE(back.clinical.size() == 2);
  CHECK(back.preprocess.channels == 3);
  CHECK(back.clinical[0].mean == card.clinical[0].mean);
  CHECK(back.clinical[0].std == card.clinical[0].std);
  CHECK(back.clinical[1].vocabulary == card.clinical[1].vocabulary);
  CHECK(back.clinical_fusion == "joint");
  auto cross = card;
  cross.clinical_fusion = "cross";
  CHECK(model::card_from_json(model::card_to_json(cross), "t").clinical_fusion == "cross");
  auto bad_mode = model::card_to_json(card);
  bad_mode["clinical"]["mode"] = "late";
  CHECK_THROWS_WITH(model::card_from_json(bad_mode, "t"),
                    "invalid model card 't': clinical.mode 'late' is not supported (expected joint or cross)");

  int unknown = 0;
  const auto v = model::encode_clinical(back.clinical, {"65", " MALE "}, &unknown);
  CHECK(v[0] == Approx(1.5));
  CHECK(v[1] == 1.0f);
  CHECK(unknown == 0);
  // Missing spellings are NaN and not counted; an unseen category or a non-number is NaN and counted.
  for (const std::string missing : {"", "unknown", "NA", "nan", "?"}) {
    CHECK(std::isnan(model::encode_clinical(back.clinical, {missing, missing})[0]));
  }
  const auto odd = model::encode_clinical(back.clinical, {"old", "other"}, &unknown);
  CHECK(std::isnan(odd[0]));
  CHECK(std::isnan(odd[1]));
  CHECK(unknown == 2);

  CHECK_THROWS_AS(model::parse_clinical_spec("age"), Error);
  CHECK_THROWS_AS(model::parse_clinical_spec("age:float"), Error);
  CHECK_THROWS_AS(model::parse_clinical_spec("age:num,age:cat"), Error);
  CHECK_THROWS_AS(model::parse_clinical_spec("label:cat"), Error);
  // A schema file: one entry per line, comments allowed; a path with ':' is read as a spec.
  const fs::path schema = testing::scratch_dir("clinical_schema") / "schema.txt";
  {
    std::ofstream f(schema);
    f << "# HAM10000\nage:num\n sex : cat   # m/f\n\nlocalization:cat\n";
  }
  const auto from_file = model::clinical_spec_from_argument(schema.string());
  REQUIRE(from_file.size() == 3);
  CHECK(from_file[1].name == "sex");
  CHECK(from_file[2].type == ClinicalField::Type::kCategorical);
  CHECK(model::clinical_spec_from_argument("age:num").size() == 1);
  CHECK_THROWS_AS(model::clinical_spec_from_argument("no-such-schema.txt"), Error);
  fs::remove(schema);
  auto bad = model::parse_clinical_spec("age:num");
  CHECK_THROWS_AS(model::fit_clinical(bad, {{"forty"}}), Error);
  auto j = model::card_to_json(card);
  j["clinical"]["fields"][0]["std"] = 0;
  CHECK_THROWS_AS(model::card_from_json(j, "t"), Error);
  j = model::card_to_json(card);
  j["input"]["channels"] = 2;
  CHECK_THROWS_AS(model::card_from_json(j, "t"), Error);
}

TEST_CASE("a missing covariate takes the learned missing embedding, never a zero", "[clinical]") {
  torch::manual_seed(1);
  const auto card = clinical_card();
  auto net = model::build_net(card);
  net->eval();
  auto& tokens = *net->clinical_tokens;
  torch::NoGradGuard no_grad;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto out = tokens.forward(torch::tensor({{nan, nan}, {0.0f, 1.0f}, {2.0f, nan}}));
  REQUIRE(out.sizes() == torch::IntArrayRef({3, 2, 16}));
  CHECK(torch::allclose(out[0][0], tokens.missing[0] + tokens.type[0]));
  CHECK(torch::allclose(out[0][1], tokens.missing[1] + tokens.type[1]));
  CHECK(torch::allclose(out[1][0], tokens.num_bias[0] + tokens.type[0]));  // value 0: the bias, not missing
  CHECK(!torch::allclose(out[1][0], out[0][0]));
  CHECK(torch::allclose(out[1][1], tokens.table[1] + tokens.type[1]));      // "male"
  CHECK(torch::allclose(out[2][0], tokens.num_weight[0] * 2 + tokens.num_bias[0] + tokens.type[0]));
  CHECK(torch::allclose(out[2][1], tokens.missing[1] + tokens.type[1]));
  // No covariates at all is the same as all missing.
  const auto x = torch::randn({2, 3, 32, 32});
  const auto none = net->forward(x).logits;
  const auto all_missing = net->forward(x, false, torch::full({2, 2}, nan)).logits;
  CHECK(torch::allclose(none, all_missing));
  CHECK(net->forward(x, true).attentions[0].size(2) == 1 + 64 + 2);
}

TEST_CASE("cross fusion: image tokens attend to the covariates through a gate that starts closed", "[clinical]") {
  torch::manual_seed(2);
  auto card = clinical_card();
  card.clinical_fusion = "cross";
  auto net = model::build_net(card);
  net->eval();
  REQUIRE(net->cross_fusion());
  torch::NoGradGuard no_grad;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto x = torch::randn({2, 3, 32, 32});
  const auto c1 = torch::tensor({{-1.0f, 0.0f}, {nan, 1.0f}});
  const auto c2 = torch::tensor({{2.0f, 1.0f}, {0.5f, nan}});
  const auto out = net->forward(x, true, c1);
  REQUIRE(out.attentions.size() == 1);
  CHECK(out.attentions[0].size(2) == 1 + 64);  // the covariates are not in the self-attention
  REQUIRE(out.cross_attentions.size() == 1);
  CHECK(out.cross_attentions[0].sizes() == torch::IntArrayRef({2, 2, 1 + 64, 2}));
  CHECK(torch::allclose(out.cross_attentions[0].sum(-1), torch::ones({2, 2, 65})));
  // A closed gate: the covariates cannot change the output yet.
  CHECK(torch::equal(out.logits, net->forward(x, false, c2).logits));
  for (auto& p : net->named_parameters()) {
    if (p.key().find("gate") != std::string::npos) p.value().fill_(1.0);
  }
  CHECK_FALSE(torch::allclose(net->forward(x, false, c1).logits, net->forward(x, false, c2).logits));
  // The clinical attention is the CLS query's cross-attention: it sums to 1 over the covariates.
  const auto shares = explain::clinical_attention(net, x, c1);
  CHECK(torch::allclose(shares.sum(1), torch::ones({2}), 1e-5, 1e-6));
}

TEST_CASE("a label carried only by a covariate is learned with covariates and not without", "[clinical][train]") {
  set_threads(1);
  const fs::path data = covariate_only_set();
  const fs::path models = testing::scratch_dir("clinical_test_models");

  const auto with = train::run_train(tiny(data, models / "with", "marker:cat,noise:num"), {}, {});
  const auto without = train::run_train(tiny(data, models / "without", ""), {}, {});
  auto cross_options = tiny(data, models / "cross", "marker:cat,noise:num");
  cross_options.fusion = "cross";
  const auto cross = train::run_train(cross_options, {}, {});
  INFO("with covariates: " << with.validation.accuracy << ", cross fusion: " << cross.validation.accuracy
                           << ", image only: " << without.validation.accuracy);
  CHECK(with.validation.accuracy >= 0.95);
  CHECK(cross.validation.accuracy >= 0.95);
  CHECK(cross.card.clinical_fusion == "cross");
  CHECK(without.validation.accuracy <= 0.75);
  CHECK(with.card.clinical.size() == 2);
  CHECK((with.card.clinical[0].vocabulary == std::vector<std::string>{"blue", "red"}));

  // evaluate reads the covariates from the CSV.
  eval::EvaluateOptions eo;
  eo.model_dir = (models / "with").string();
  eo.data = (data / "data.csv").string();
  eo.split = "val";
  const auto ev = eval::run_evaluate(eo, {});
  CHECK(ev.metrics.accuracy >= 0.95);
  // Hiding the marker takes the model back to chance; hiding the noise column changes little.
  REQUIRE(ev.clinical_ablation.size() == 3);
  CHECK(ev.clinical_ablation[0].first == "marker");
  CHECK(ev.clinical_ablation[0].second.accuracy <= 0.75);
  CHECK(ev.clinical_ablation[1].first == "noise");
  CHECK(ev.clinical_ablation[1].second.accuracy >= 0.9);
  CHECK(ev.clinical_ablation[2].first == "all");
  CHECK(ev.clinical_ablation[2].second.accuracy <= 0.75);
  REQUIRE(ev.clinical_attention.size() == 2);
  CHECK(ev.clinical_attention[0].second + ev.clinical_attention[1].second <= 1.0);

  // diagnose --clinical: the attention that reaches the covariates goes to the marker.
  pipeline::DiagnoseOptions d;
  d.model_dir = (models / "with").string();
  for (int i = 120; i < 160; ++i) d.inputs.push_back((data / "images" / (std::to_string(i) + ".png")).string());
  d.clinical_csv = (data / "data.csv").string();
  double marker = 0, noise = 0;
  int records = 0;
  pipeline::run_diagnose(d, {}, [&](const report::DiagnosisRecord& r) {
    REQUIRE(r.ok);
    REQUIRE(r.clinical_attention.size() == 2);
    CHECK(r.clinical_missing.empty());
    CHECK(r.clinical_attention[0].first == "marker");
    CHECK(r.clinical_attention[0].second + r.clinical_attention[1].second <= 1.0);
    CHECK(r.clinical_attention[0].second >= 0.0);
    marker += r.clinical_attention[0].second;
    noise += r.clinical_attention[1].second;
    ++records;
  }, {});
  CHECK(records == 40);
  CHECK(marker > noise);

  // With test-time flips, the pass that measures the covariates' attention is also the
  // identity view: the probabilities equal those of the heatmap path, which averages the
  // views through explain::explain.
  d.tta = "hflip";
  std::vector<std::vector<std::pair<std::string, double>>> plain, explained;
  pipeline::run_diagnose(d, {}, [&](const report::DiagnosisRecord& r) { plain.push_back(r.probabilities); }, {});
  d.preview = true;
  pipeline::run_diagnose(d, {}, [&](const report::DiagnosisRecord& r) { explained.push_back(r.probabilities); }, {});
  d.preview = false;
  d.tta.clear();
  std::vector<std::vector<std::pair<std::string, double>>> untransformed;
  pipeline::run_diagnose(d, {}, [&](const report::DiagnosisRecord& r) { untransformed.push_back(r.probabilities); }, {});
  REQUIRE(plain.size() == 40);
  REQUIRE(explained.size() == 40);
  REQUIRE(untransformed.size() == 40);
  double flips_change = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    for (size_t k = 0; k < 2; ++k) {
      // Relative: this model is sure of itself, and its small probabilities carry the difference.
      CHECK(plain[i][k].second == Approx(explained[i][k].second).epsilon(1e-3));
      flips_change = std::max(flips_change, std::abs(plain[i][k].second - untransformed[i][k].second));
    }
  }
  CHECK(flips_change > 1e-4);  // the flipped views were used

  // Without --clinical every covariate is missing, the run says so, and the records list them.
  d.clinical_csv.clear();
  std::vector<std::string> notices;
  pipeline::run_diagnose(d, {}, [&](const report::DiagnosisRecord& r) {
    CHECK((r.clinical_missing == std::vector<std::string>{"marker", "noise"}));
  }, [&](const std::string& n) { notices.push_back(n); });
  REQUIRE(!notices.empty());
  CHECK(notices[0].find("every covariate is treated as missing") != std::string::npos);
}
