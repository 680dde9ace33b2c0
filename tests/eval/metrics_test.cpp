// Metrics against hand computations.
#include <catch2/catch.hpp>
#include <cmath>

#include "eval/metrics.h"
#include "eval/report.h"

using namespace medattn::eval;

TEST_CASE("binary AUC counts tied scores as one half", "[eval][metrics]") {
  // Positives {0.8, 0.4}, negatives {0.4, 0.2}: pairs (0.8>0.4) 1, (0.8>0.2) 1, (0.4=0.4) 0.5,
  // (0.4>0.2) 1 -> 3.5 / 4.
  CHECK(binary_auc({0.8, 0.4, 0.4, 0.2}, {true, true, false, false}) == Approx(0.875));
  CHECK(binary_auc({0.1, 0.9}, {true, false}) == 0.0);
  CHECK(binary_auc({0.5, 0.5, 0.5}, {true, false, true}) == Approx(0.5));
  CHECK(std::isnan(binary_auc({0.5, 0.7}, {true, true})));
}

TEST_CASE("binary metrics treat the second class as positive", "[eval][metrics]") {
  Predictions p;
  // true 0: predicted 0, 0, 1; true 1: predicted 1, 1, 0, 1.
  p.probabilities = {{0.9, 0.1}, {0.6, 0.4}, {0.3, 0.7}, {0.2, 0.8}, {0.45, 0.55}, {0.7, 0.3}, {0.1, 0.9}};
  p.labels = {0, 0, 0, 1, 1, 1, 1};
  const auto m = compute_metrics(p);
  CHECK(m.n == 7);
  CHECK(m.confusion == std::vector<std::vector<int>>{{2, 1}, {1, 3}});
  CHECK(m.accuracy == Approx(5.0 / 7.0));
  CHECK(m.sensitivity == Approx(3.0 / 4.0));
  CHECK(m.specificity == Approx(2.0 / 3.0));
  CHECK(m.balanced_accuracy == Approx((3.0 / 4.0 + 2.0 / 3.0) / 2));
  // Precision 3/4, recall 3/4 -> F1 0.75.
  CHECK(m.f1 == Approx(0.75));
  // Scores of class 1: positives {.8,.55,.3,.9} vs negatives {.1,.4,.7}: 9 + 0 ... count wins:
  // .8 beats .1,.4,.7 (3); .55 beats .1,.4 (2); .3 beats .1 (1); .9 beats all (3) -> 9/12.
  CHECK(m.auc == Approx(9.0 / 12.0));
}

TEST_CASE("expected calibration error over 15 bins", "[eval][metrics]") {
  Predictions p;
  // Two samples at confidence 0.9 (bin 14), one right, one wrong: |0.5 - 0.9| = 0.4, weight 2/3.
  // One sample at confidence 0.6 (bin 9), right: |1 - 0.6| = 0.4, weight 1/3. ECE = 0.4.
  p.probabilities = {{0.9, 0.1}, {0.9, 0.1}, {0.4, 0.6}};
  p.labels = {0, 1, 1};
  CHECK(expected_calibration_error(p) == Approx(0.4));
  Predictions perfect;
  perfect.probabilities = {{1.0, 0.0}, {0.0, 1.0}};
  perfect.labels = {0, 1};
  CHECK(expected_calibration_error(perfect) == 0.0);
}

TEST_CASE("the ECE a calibrated model shows by chance, against the binomial law", "[eval][metrics]") {
  // Four samples at confidence 0.5 share one bin, so ECE = |k/4 - 1/2| with k ~ Binomial(4, 1/2):
  // 1/2 with probability 2/16, 1/4 with 8/16, 0 with 6/16. Mean 3/16; 95th percentile 1/2.
  Predictions p;
  p.probabilities.assign(4, {0.5, 0.5});
  p.labels = {0, 1, 0, 1};
  const auto chance = ece_if_calibrated(p, 20000, 7);
  CHECK(chance.draws == 20000);
  CHECK(chance.mean == Approx(3.0 / 16).margin(0.005));
  CHECK(chance.p95 == 0.5);
  // Certain predictions are always right under calibration: no chance ECE at all.
  Predictions sure;
  sure.probabilities = {{1.0, 0.0}, {0.0, 1.0}, {0.0, 1.0}};
  sure.labels = {1, 1, 0};  // the labels themselves do not enter
  const auto none = ece_if_calibrated(sure);
  CHECK(none.mean == 0.0);
  CHECK(none.p95 == 0.0);
  // Fewer draws: each ECE is 0, 1/4 or 1/2, so the mean of 500 is a multiple of 1/2000, and
  // it lies within 4 standard deviations (sd of one draw 0.165, of the mean 0.0074) of 3/16.
  const auto few = ece_if_calibrated(p, 500, 3);
  CHECK(few.draws == 500);
  CHECK(few.mean * 2000 == std::round(few.mean * 2000));
  CHECK(few.mean == Approx(3.0 / 16).margin(0.03));
  CHECK(few.p95 == 0.5);
  // More samples, less chance ECE: E|k/400 - 1/2| = C(400,200) / 2^401 = 0.0199347 (sd of the
  // mean of 2000 draws 0.00034).
  Predictions many;
  many.probabilities.assign(400, {0.5, 0.5});
  many.labels.assign(400, 0);
  CHECK(ece_if_calibrated(many, 2000, 7).mean == Approx(0.0199347).margin(0.0015));
  CHECK(ece_if_calibrated(Predictions{}).draws == 0);
}

TEST_CASE("the chance ECE of samples whose ECE cannot vary is that ECE exactly", "[eval][metrics]") {
  // One sample at confidence 1/2: right or wrong, |correct - 1/2| = 1/2 in every draw.
  Predictions one;
  one.probabilities = {{0.5, 0.5}};
  one.labels = {0};
  const auto a = ece_if_calibrated(one, 50, 9);
  CHECK(a.draws == 50);
  CHECK(a.mean == 0.5);
  CHECK(a.p95 == 0.5);
  // A second sample, certain, in another bin: weights 1/2 each, 1/2 * 1/2 + 1/2 * 0 = 1/4.
  Predictions two;
  two.probabilities = {{0.5, 0.5}, {0.0, 1.0}};
  two.labels = {1, 1};
  const auto b = ece_if_calibrated(two, 50, 9);
  CHECK(b.mean == 0.25);
  CHECK(b.p95 == 0.25);
}

TEST_CASE("multi-class metrics are macro means", "[eval][metrics]") {
  Predictions p;
  p.probabilities = {{0.8, 0.1, 0.1}, {0.1, 0.8, 0.1}, {0.1, 0.1, 0.8}, {0.6, 0.3, 0.1}};
  p.labels = {0, 1, 2, 1};
  const auto m = compute_metrics(p);
  CHECK(m.accuracy == Approx(0.75));
  // Recalls: 1, 0.5, 1 -> 2.5/3.
  CHECK(m.sensitivity == Approx(2.5 / 3.0));
  CHECK(m.balanced_accuracy == Approx(2.5 / 3.0));
  const auto j = metrics_to_json(m, {"a", "b", "c"});
  CHECK(j["confusion"] == nlohmann::json::parse("[[1,0,0],[1,1,0],[0,0,1]]"));
  CHECK(j["per_class"]["a"]["precision"] == 0.5);
  // Per-class F1: a: precision 1/2, recall 1 -> 2/3; b: 1, 1/2 -> 2/3; c: 1, 1 -> 1.
  CHECK(m.macro_f1 == Approx((2.0 / 3 + 2.0 / 3 + 1.0) / 3));
  CHECK(j["macro_f1"] == Approx(0.777778));
  // Binary: macro-F1 averages both classes. Class 0 of the binary example above: precision
  // 2/3, recall 2/3; class 1: 3/4, 3/4.
  Predictions b;
  b.probabilities = {{0.9, 0.1}, {0.6, 0.4}, {0.3, 0.7}, {0.2, 0.8}, {0.45, 0.55}, {0.7, 0.3}, {0.1, 0.9}};
  b.labels = {0, 0, 0, 1, 1, 1, 1};
  CHECK(compute_metrics(b).macro_f1 == Approx((2.0 / 3 + 0.75) / 2));
}

TEST_CASE("the paired bootstrap of two models' difference", "[eval][metrics]") {
  // 3 classes, 270 samples; model a right on every sample, model b right on 2 of 3.
  Predictions a, b;
  for (int i = 0; i < 270; ++i) {
    const int y = i % 3;
    std::vector<double> pa(3, 0.1), pb(3, 0.1);
    pa[y] = 0.8;
    pb[i % 9 < 6 ? y : (y + 1) % 3] = 0.8;
    a.probabilities.push_back(pa);
    b.probabilities.push_back(pb);
    a.labels.push_back(y);
  }
  b.labels = a.labels;
  const auto d = paired_bootstrap(a, b, 200, 3);
  CHECK(d.balanced_accuracy.a == Approx(1.0));
  CHECK(d.balanced_accuracy.b == Approx(2.0 / 3));
  CHECK(d.balanced_accuracy.difference == Approx(1.0 / 3));
  CHECK(d.balanced_accuracy.ci.low > 0.2);
  CHECK(d.balanced_accuracy.ci.low <= d.balanced_accuracy.difference);
  CHECK(d.balanced_accuracy.difference <= d.balanced_accuracy.ci.high);
  CHECK(d.balanced_accuracy.ci.high > d.balanced_accuracy.ci.low);  // resampled: the interval has a width
  CHECK(d.accuracy.a == Approx(1.0));
  CHECK(d.accuracy.b == Approx(2.0 / 3));
  // Model b, per class: 60 of its 90 images found, 30 images of the previous class taken for it:
  // precision 2/3, recall 2/3, F1 2/3.
  CHECK(d.macro_f1.a == Approx(1.0));
  CHECK(d.macro_f1.b == Approx(2.0 / 3));
  CHECK(d.macro_f1.difference == Approx(1.0 / 3));
  // One-vs-rest AUC of b for a class: its 90 positives score 0.8 (60) or 0.1 (30), its 180
  // negatives 0.8 (30) or 0.1 (150). Wins 60 * 150, ties 60 * 30 + 30 * 150, of 90 * 180 pairs:
  // (9000 + 3150) / 16200 = 0.75 for each class.
  CHECK(d.auc.a == Approx(1.0));
  CHECK(d.auc.b == Approx(0.75));
  CHECK(d.auc.difference == Approx(0.25));
  // A model against itself: its own figures on both sides and every resample's difference 0.
  const auto same = paired_bootstrap(b, b, 100, 3);
  CHECK(same.balanced_accuracy.ci.low == 0.0);
  CHECK(same.balanced_accuracy.ci.high == 0.0);
  CHECK(same.auc.a == Approx(0.75));
  CHECK(same.auc.b == Approx(0.75));
  CHECK(same.auc.ci.low == 0.0);
  CHECK(same.auc.ci.high == 0.0);
}

TEST_CASE("ROC curve points and thresholds", "[eval][metrics]") {
  Predictions p;
  p.probabilities = {{0.2, 0.8}, {0.6, 0.4}, {0.6, 0.4}, {0.9, 0.1}};
  p.labels = {1, 1, 0, 0};
  const auto roc = roc_curve(p, 1);
  REQUIRE(roc.size() == 4);  // start, 0.8, 0.4 (tied pair), 0.1
  CHECK(roc[1].fpr == 0.0);
  CHECK(roc[1].tpr == 0.5);
  CHECK(roc[2].fpr == 0.5);
  CHECK(roc[2].tpr == 1.0);
  CHECK(roc[3].fpr == 1.0);
  CHECK(choose_threshold(p, "balanced") == Approx(0.8));       // J = 0.5 at 0.8 and at 0.4: first wins
  CHECK(choose_threshold(p, "sensitivity=0.9") == Approx(0.4));
  CHECK(choose_threshold(p, "sensitivity=0.5") == Approx(0.8));
  CHECK_THROWS_WITH(choose_threshold(p, "youden"), "unknown operating point 'youden' (expected balanced or sensitivity=X)");
  // A threshold changes the decision rule.
  CHECK(compute_metrics(p, 0.4).sensitivity == 1.0);
  CHECK(compute_metrics(p).sensitivity == 0.5);
}

TEST_CASE("temperature scaling lowers the ECE of an over-confident model", "[eval][metrics]") {
  // Logits that always claim ~99.3% confidence (margin 5) while being right 70% of the time.
  std::vector<std::vector<double>> logits;
  std::vector<int> labels;
  for (int i = 0; i < 100; ++i) {
    logits.push_back({5.0, 0.0});
    labels.push_back(i < 70 ? 0 : 1);
  }
  const double before = expected_calibration_error(apply_temperature(logits, labels, 1.0));
  const double t = fit_temperature(logits, labels);
  const double after = expected_calibration_error(apply_temperature(logits, labels, t));
  CHECK(before == Approx(0.993307 - 0.7).margin(1e-4));
  // The NLL optimum puts the confidence at the accuracy: sigmoid(5/T) = 0.7.
  CHECK(t == Approx(5.0 / std::log(0.7 / 0.3)).epsilon(1e-3));
  CHECK(after < 0.001);
}

TEST_CASE("bootstrap intervals bracket the point estimate", "[eval][metrics]") {
  Predictions p;
  for (int i = 0; i < 200; ++i) {
    const double s = (i % 10) / 10.0;
    p.probabilities.push_back({1 - s, s});
    p.labels.push_back((i % 10) >= 4 ? 1 : (i % 3 == 0));
  }
  const auto m = compute_metrics(p);
  // Wrong: the 40 positives at scores 0.4 and 0.5 (0.5 ties, the first class wins) and the 27
  // positives among the samples scored 0 to 0.3 (i % 10 < 4 and i % 3 == 0).
  CHECK(m.accuracy == Approx(133.0 / 200));
  const auto ci = bootstrap(p, 300, 7);
  CHECK(ci.resamples == 300);
  CHECK(ci.auc.low < m.auc);
  CHECK(m.auc < ci.auc.high);
  CHECK(ci.accuracy.low < m.accuracy);
  CHECK(m.accuracy < ci.accuracy.high);
  CHECK(ci.auc.high - ci.auc.low < 0.2);
  // The accuracy of a resample is binomial: the 95% interval spans about 2 * 1.96 *
  // sqrt(0.665 * 0.335 / 200) = 0.131 (the percentile estimate of 300 resamples varies by
  // about 0.005 at each end).
  CHECK(ci.accuracy.high - ci.accuracy.low == Approx(0.131).margin(0.02));
  const auto again = bootstrap(p, 300, 7);
  CHECK(again.auc.low == ci.auc.low);  // seeded: repeatable
}

TEST_CASE("bootstrap intervals of four samples span every value a resample can take", "[eval][metrics]") {
  // Positives score 0.9 (right) and 0.3 (wrong), negatives 0.6 (wrong) and 0.1 (right):
  // accuracy 1/2, AUC 3/4 (0.9 beats both negatives, 0.3 only 0.1).
  Predictions p;
  p.probabilities = {{0.1, 0.9}, {0.7, 0.3}, {0.4, 0.6}, {0.9, 0.1}};
  p.labels = {1, 1, 0, 0};
  const auto m = compute_metrics(p);
  REQUIRE(m.accuracy == 0.5);
  REQUIRE(m.auc == 0.75);
  const auto ci = bootstrap(p, 1000, 5);
  // A resample is all wrong (accuracy 0) with probability (1/2)^4 = 1/16 and all right with
  // 1/16, more than the 2.5% in each tail: the interval is [0, 1] exactly.
  CHECK(ci.accuracy.low == 0.0);
  CHECK(ci.accuracy.high == 1.0);
  // Among the resamples with both classes (7/8 of them), AUC 0 (only the wrong positive and
  // the wrong negative drawn) has probability (1/16 - 2/256) / (7/8) = 1/16, and AUC 1 more.
  CHECK(ci.auc.low == 0.0);
  CHECK(ci.auc.high == 1.0);
  // Four samples scored twice over, all right: every resample is right too.
  Predictions sure;
  sure.probabilities = {{0.1, 0.9}, {0.2, 0.8}, {0.6, 0.4}, {0.9, 0.1}};
  sure.labels = {1, 1, 0, 0};
  const auto all = bootstrap(sure, 200, 5);
  CHECK(all.accuracy.low == 1.0);
  CHECK(all.accuracy.high == 1.0);
  CHECK(all.auc.low == 1.0);
  CHECK(all.auc.high == 1.0);
}
