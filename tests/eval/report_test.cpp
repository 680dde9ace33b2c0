// The evaluate report (eval/report.h) without the binary: the JSON contract, the table, the
// --compare pairing, the ROC series and the chance-level ECE, on predictions made by hand.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "eval/report.h"

using namespace medattn;
using namespace medattn::eval;

namespace {

// Four images, two per class, predicted with certainty and right: every bootstrap resample
// scores 1, and a perfectly calibrated model shows an ECE of 0.
EvaluateResult perfect_binary() {
  EvaluateResult r;
  r.classes = {"no", "yes"};
  r.model_classes = r.classes;
  r.predictions.probabilities = {{1, 0}, {1, 0}, {0, 1}, {0, 1}};
  r.predictions.labels = {0, 0, 1, 1};
  r.metrics = compute_metrics(r.predictions);
  return r;
}

}  // namespace

TEST_CASE("evaluate JSON: intervals, chance-level ECE, decision and positive class", "[eval][report]") {
  const auto report = make_report(perfect_binary(), EvaluateOptions{});
  const auto j = report_json(report);
  CHECK(j["n"] == 4);
  CHECK(j["auc_ci95"] == nlohmann::json({1.0, 1.0}));
  CHECK(j["accuracy_ci95"] == nlohmann::json({1.0, 1.0}));
  CHECK(j["ece_if_calibrated"] == nlohmann::json({{"mean", 0.0}, {"p95", 0.0}}));
  CHECK(j["decision"] == "argmax");
  CHECK(j["positive_class"] == "yes");
  CHECK(j["tta"] == nlohmann::json::array());
  CHECK(j["warnings"] == nlohmann::json::array());
  CHECK_FALSE(j.contains("comparison"));
  CHECK_FALSE(j.contains("model_classes"));  // no class map
  CHECK_FALSE(j.contains("method"));         // no heatmap metrics
  CHECK_FALSE(j.contains("coverage"));       // no gate
  CHECK_FALSE(j.contains("skipped"));

  auto thresholded = perfect_binary();
  thresholded.threshold = 0.25;
  EvaluateOptions mapped;
  mapped.class_map = "no=no,yes=yes";
  const auto t = report_json(make_report(thresholded, mapped));
  CHECK(t["decision"] == "threshold 0.250000 on yes");
  CHECK(t["model_classes"] == nlohmann::json({"no", "yes"}));
}

TEST_CASE("evaluate JSON: gate, heatmap and skipped keys, rounded to 4 decimals, missing values null", "[eval][report]") {
  auto r = perfect_binary();
  r.skipped = 2;
  r.gate.enabled = true;
  r.gate.n = 4;
  r.gate.coverage = 0.123456;
  r.gate.aurc = 0.05;
  r.heatmaps.method = "saliency";
  r.heatmaps.images = 4;
  r.heatmaps.deletion_auc = 0.123449;
  // insertion_auc not computed
  EvaluateOptions options;
  options.masks = "masks";
  const auto j = report_json(make_report(r, options));
  CHECK(j["skipped"] == 2);
  CHECK(j["coverage"] == 0.1235);
  CHECK(j["aurc"] == 0.05);
  CHECK_FALSE(j.contains("ood_sets"));  // no --ood sets
  CHECK(j["method"] == "saliency");
  CHECK(j["heatmap_images"] == 4);
  CHECK(j["deletion_auc"] == 0.1234);
  CHECK(j["insertion_auc"].is_null());
  // --masks given: the mask keys are there even when no image had a lesion.
  CHECK(j["masked_images"] == 0);
  CHECK(j["pointing_game"].is_null());
  CHECK(j["heatmap_iou"].is_null());
  CHECK_FALSE(j.contains("randomization"));
}

TEST_CASE("the chance-level ECE has one JSON form, rounded to 4 decimals", "[eval][report]") {
  CalibratedEce chance;
  chance.mean = 0.0123456;
  chance.p95 = 0.98765;
  CHECK(calibrated_ece_to_json(chance) == nlohmann::json({{"mean", 0.0123}, {"p95", 0.9877}}));
}

TEST_CASE("evaluate table as printed", "[eval][report]") {
  const std::string expected =
      "model decision: argmax\n"
      "positive     yes (auc, sensitivity and f1 are for it)\n"
      "n            4\n"
      "accuracy     1.0000  (95% CI 1.0000-1.0000)\n"
      "auc          1.0000  (95% CI 1.0000-1.0000)\n"
      "balanced acc 1.0000\n"
      "sensitivity  1.0000\n"
      "specificity  1.0000\n"
      "f1           1.0000\n"
      "macro f1     1.0000\n"
      "ece          0.0000  (a perfectly calibrated model would show 0.0000 on these 4 images, up to 0.0000 in 95% of draws)\n"
      "\n"
      "class                 n precision    recall       auc\n"
      "no                    2    1.0000    1.0000    1.0000\n"
      "yes                   2    1.0000    1.0000    1.0000\n"
      "\n"
      "confusion (rows: true, columns: predicted)\n"
      "                     no    yes\n"
      "no                    2      0\n"
      "yes                   0      2\n";
  CHECK(report_table(make_report(perfect_binary(), EvaluateOptions{})) == expected);
}

TEST_CASE("evaluate --compare pairs two models on the same samples and refuses different ones", "[eval][report]") {
  const auto r = perfect_binary();
  const auto same = compare_with(r, r, "other");
  CHECK(same.other_model == "other");
  CHECK(same.paired.resamples == 1000);
  CHECK(same.paired.auc.difference == 0.0);
  CHECK(same.paired.accuracy.ci.low == 0.0);
  CHECK(same.paired.accuracy.ci.high == 0.0);
  const auto j = report_json(make_report(r, EvaluateOptions{}, same));
  CHECK(j["comparison"]["other_model"] == "other");
  CHECK(j["comparison"]["auc"] == nlohmann::json({{"this", 1.0}, {"other", 1.0}, {"difference", 0.0}, {"difference_ci95", {0.0, 0.0}}}));
  const auto table = report_table(make_report(r, EvaluateOptions{}, same));
  CHECK(table.find("\ncompared with other (paired bootstrap, 1000 resamples)\n") != std::string::npos);
  CHECK(table.find("\nauc                  1.0000   1.0000    +0.0000    +0.0000 to  +0.0000\n") != std::string::npos);

  auto shuffled = r;
  shuffled.predictions.labels = {0, 1, 0, 1};
  CHECK_THROWS_WITH(compare_with(r, shuffled, "models/other"),
                    "--compare models/other: the two models did not read the same samples, so they cannot be paired");
}

TEST_CASE("ROC series: the positive class of a binary model, every class otherwise, with the operating point", "[eval][report]") {
  auto r = perfect_binary();
  const auto binary = roc_series(r);
  REQUIRE(binary.size() == 1);
  CHECK(binary[0].label == "yes (AUC 1.000)");
  CHECK(binary[0].op_tpr == 1.0);
  CHECK(binary[0].op_fpr == 0.0);

  // Three classes; class 2 is predicted for one image of class 0: its false positive rate is
  // 1 of the 3 images of other classes.
  EvaluateResult m;
  m.classes = {"a", "b", "c"};
  m.predictions.probabilities = {{0.8, 0.1, 0.1}, {0.2, 0.1, 0.7}, {0.1, 0.8, 0.1}, {0.1, 0.1, 0.8}};
  m.predictions.labels = {0, 0, 1, 2};
  m.metrics = compute_metrics(m.predictions);
  const auto three = roc_series(m);
  REQUIRE(three.size() == 3);
  CHECK(three[0].label == "a (AUC 1.000)");
  CHECK(three[0].op_tpr == 0.5);
  CHECK(three[2].op_fpr == Approx(1.0 / 3.0));
  CHECK(three[2].op_tpr == 1.0);
}

TEST_CASE("the evaluate command refuses an unknown format before reading anything", "[eval][report]") {
  EvaluateCommand c;
  c.format = "xml";
  CHECK_THROWS_WITH(run_evaluate_command(c, {}), "--format 'xml' is not one of table, json");
}
