// Warnings for a model that failed to learn, and the class map of evaluate --class-map.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/error.h"
#include "eval/model_checks.h"

using namespace medattn;

namespace {

bool mentions(const std::vector<std::string>& lines, const std::string& text) {
  for (const auto& l : lines) {
    if (l.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("chance AUC bound is 0.5 plus 1.645 Hanley-McNeil standard errors", "[eval][checks]") {
  // 10 positives, 10 negatives: se = sqrt(21 / 1200).
  std::vector<int> labels(20, 0);
  for (int i = 10; i < 20; ++i) labels[i] = 1;
  CHECK(eval::chance_auc_bound(labels, 2) == Approx(0.5 + 1.645 * std::sqrt(21.0 / 1200.0)));
  CHECK(std::isnan(eval::chance_auc_bound(std::vector<int>(5, 0), 2)));  // one class only
}

TEST_CASE("a model that predicts one class for everything is warned about", "[eval][checks]") {
  // 100 images, the same probabilities for every one: AUC exactly 0.5, class 1 never predicted.
  eval::Predictions p;
  for (int i = 0; i < 100; ++i) {
    p.probabilities.push_back({0.6, 0.4});
    p.labels.push_back(i % 4 == 0 ? 1 : 0);
  }
  const auto m = eval::compute_metrics(p);
  REQUIRE(m.auc == 0.5);
  const auto w = eval::model_warnings(p, m, {"normal", "nodule"}, 20.0, "validation");
  REQUIRE(w.size() == 3);
  CHECK(mentions(w, "no better than chance on validation: AUC 0.500"));
  CHECK(mentions(w, "class 'nodule' is never predicted on validation (25 of its images"));
  CHECK(mentions(w, "temperature hit its bound (20.000"));
  CHECK(eval::class_counts(m) == std::vector<int>{75, 25});
}

TEST_CASE("a model that separates the classes gets no warning", "[eval][checks]") {
  eval::Predictions p;
  for (int i = 0; i < 40; ++i) {
    const int y = i % 2;
    p.labels.push_back(y);
    p.probabilities.push_back(y ? std::vector<double>{0.2, 0.8} : std::vector<double>{0.9, 0.1});
  }
  const auto m = eval::compute_metrics(p);
  CHECK(eval::model_warnings(p, m, {"a", "b"}, 1.3, "validation").empty());
  // Nor a temperature check when none was fitted.
  CHECK(eval::model_warnings(p, m, {"a", "b"}, -1.0, "validation").empty());
}

TEST_CASE("class map sums the model's probabilities into the data's classes", "[eval][checks]") {
  const std::vector<std::string> model = {"glioma", "meningioma", "notumor", "pituitary"};
  const auto map = eval::parse_class_map("no=notumor, yes=Glioma+meningioma+pituitary", model);
  CHECK(map.data_classes == std::vector<std::string>{"no", "yes"});
  CHECK(map.data_of_model == std::vector<int>{1, 1, 0, 1});
  eval::Predictions p;
  p.probabilities = {{0.1, 0.2, 0.6, 0.1}, {0.5, 0.25, 0.125, 0.125}};
  p.labels = {0, 1};
  const auto merged = eval::merge_classes(p, map);
  CHECK(merged.labels == p.labels);
  CHECK(merged.probabilities[0][0] == Approx(0.6));
  CHECK(merged.probabilities[0][1] == Approx(0.4));
  CHECK(merged.probabilities[1][0] == 0.125);
  CHECK(merged.probabilities[1][1] == 0.875);
}

TEST_CASE("class map errors name the problem", "[eval][checks]") {
  const std::vector<std::string> model = {"a", "b", "c"};
  auto message = [&](const std::string& text) {
    try {
      eval::parse_class_map(text, model);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message("x=a+b") == "--class-map 'x=a+b': model class 'c' is not mapped (every class of the model goes to one data class)");
  CHECK(message("x=a,y=b+d") == "--class-map 'x=a,y=b+d': 'd' is not a class of the model (a, b, c)");
  CHECK(message("x=a+b,y=b+c") == "--class-map 'x=a+b,y=b+c': model class 'b' is mapped twice");
  CHECK(message("x=a,x=b+c") == "--class-map 'x=a,x=b+c': data class 'x' is named twice");
  CHECK(message("x") == "--class-map 'x': expected DATA_CLASS=MODEL_CLASS[+MODEL_CLASS...] (got 'x')");
  CHECK(message("x=a+b+c") == "--class-map 'x=a+b+c': at least two data classes are needed");
}
