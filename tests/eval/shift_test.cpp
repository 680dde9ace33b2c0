// The shift benchmark's corruptions (eval/shift.h): identity at severity 0, a hand-checked
// statistic per corruption that grows with severity, seeds, the sets and the summary.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "core/error.h"
#include "eval/shift.h"

using namespace medattn;
using eval::corrupt;
using eval::find_corruption;

namespace {

// A grey test image: values in [lo, hi], a smooth ramp plus a seeded fine texture and a disc
// with a sharp edge, so that blur, resolution and sharpening all have something to act on.
cv::Mat test_image(double lo, double hi, int w = 96, int h = 80) {
  cv::Mat img(h, w, CV_32FC1);
  cv::RNG rng(7);
  for (int r = 0; r < h; ++r) {
    for (int c = 0; c < w; ++c) {
      const double ramp = 0.5 * c / (w - 1) + 0.2 * r / (h - 1);
      const double disc = std::hypot(c - w / 2.0, r - h / 2.0) < h / 4.0 ? 0.3 : 0.0;
      const double texture = rng.uniform(0.0, 0.2);
      img.at<float>(r, c) = static_cast<float>(ramp + disc + texture);
    }
  }
  cv::normalize(img, img, lo, hi, cv::NORM_MINMAX);
  return img;
}

cv::Mat colour_image(double lo, double hi) {
  cv::Mat g = test_image(lo, hi);
  cv::Mat out;
  cv::merge(std::vector<cv::Mat>{g * 0.9, g, g * 0.95}, out);
  return out;
}

double mean_of(const cv::Mat& m) { return cv::mean(m)[0]; }

double std_of(const cv::Mat& m) {
  cv::Scalar mean, sd;
  cv::meanStdDev(m, mean, sd);
  return sd[0];
}

double gradient_energy(const cv::Mat& m) {
  cv::Mat gx, gy;
  cv::Sobel(m, gx, CV_32F, 1, 0);
  cv::Sobel(m, gy, CV_32F, 0, 1);
  return mean_of(cv::abs(gx)) + mean_of(cv::abs(gy));
}

double laplacian_energy(const cv::Mat& m) {
  cv::Mat l;
  cv::Laplacian(m, l, CV_32F);
  return mean_of(cv::abs(l));
}

double rmse(const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_L2) / std::sqrt(static_cast<double>(a.total() * a.channels())); }

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) { return mean_of(cv::abs(a - b)); }

int distinct_values(const cv::Mat& m) {
  std::set<float> values;
  for (int r = 0; r < m.rows; ++r) {
    for (int c = 0; c < m.cols; ++c) values.insert(m.at<float>(r, c));
  }
  return static_cast<int>(values.size());
}

// The statistic that each corruption must move, the image it is checked on, and the direction:
// +1 grows with severity, -1 falls.
struct Check {
  std::function<cv::Mat()> image;
  std::function<double(const cv::Mat& clean, const cv::Mat& shifted)> stat;
  int direction;
};

std::map<std::string, Check> checks() {
  auto grey = [] { return test_image(0.1, 0.9); };
  auto dim = [] { return test_image(0.2, 0.4); };
  auto flat_texture = [] { return test_image(0.45, 0.55); };
  return {
      {"exposure", {grey, [](const cv::Mat&, const cv::Mat& y) { return mean_of(y); }, -1}},
      {"quantum_noise", {grey, [](const cv::Mat& x, const cv::Mat& y) { return std_of(y - x); }, +1}},
      {"blur", {grey, [](const cv::Mat&, const cv::Mat& y) { return gradient_energy(y); }, -1}},
      {"downsample", {grey, [](const cv::Mat&, const cv::Mat& y) { return laplacian_energy(y); }, -1}},
      {"edge_enhancement", {flat_texture, [](const cv::Mat&, const cv::Mat& y) { return gradient_energy(y); }, +1}},
      {"jpeg", {grey, [](const cv::Mat& x, const cv::Mat& y) { return rmse(x, y); }, +1}},
      {"window", {grey, [](const cv::Mat&, const cv::Mat& y) { return std_of(y); }, -1}},
      {"bit_depth", {grey, [](const cv::Mat&, const cv::Mat& y) { return distinct_values(y); }, -1}},
      {"grid_lines", {grey, [](const cv::Mat&, const cv::Mat& y) { return mean_of(y); }, -1}},
      {"bias_field", {dim, [](const cv::Mat& x, const cv::Mat& y) { cv::Mat l; cv::log(y / x, l); double lo, hi; cv::minMaxLoc(l, &lo, &hi); return std::max(-lo, hi); }, +1}},
      {"rician_noise", {grey, [](const cv::Mat& x, const cv::Mat& y) { return std_of(y - x); }, +1}},
      {"ghosting", {grey, [](const cv::Mat& x, const cv::Mat& y) { return mean_abs_diff(x, y); }, +1}},
      {"contrast", {grey, [](const cv::Mat&, const cv::Mat& y) { return mean_of(y); }, +1}},
      {"speckle", {dim, [](const cv::Mat& x, const cv::Mat& y) { return std_of(y / x); }, +1}},
      {"gain", {grey, [](const cv::Mat&, const cv::Mat& y) { return mean_of(y); }, +1}},
      {"depth_attenuation", {grey, [](const cv::Mat&, const cv::Mat& y) { return mean_of(y); }, -1}},
      {"colour_cast", {[] { return colour_image(0.2, 0.6); },
                       [](const cv::Mat&, const cv::Mat& y) { const auto m = cv::mean(y); return m[2] - m[0]; }, +1}},
      {"uneven_illumination", {grey, [](const cv::Mat&, const cv::Mat& y) { return mean_of(y); }, -1}},
  };
}

}  // namespace

TEST_CASE("every corruption is the identity at severity 0 and grows with severity on a test image", "[eval][shift]") {
  const auto table = checks();
  for (const auto& c : eval::corruption_registry()) {
    INFO("corruption " << c.name);
    // A corruption added to the registry without a check here fails this test.
    REQUIRE(table.count(c.name) == 1);
    const auto& check = table.at(c.name);
    const cv::Mat x = check.image();
    const cv::Mat same = corrupt(x, c, 0, 1.0, 42);
    CHECK(cv::norm(same, x, cv::NORM_INF) == 0.0);
    double last = check.stat(x, same);
    for (int s = 1; s <= eval::kShiftSeverities; ++s) {
      const cv::Mat y = corrupt(x, c, s, 1.0, 42);
      REQUIRE(y.type() == x.type());
      REQUIRE(y.size() == x.size());
      double lo, hi;
      cv::minMaxLoc(y.reshape(1), &lo, &hi);
      CHECK(lo >= 0.0);
      CHECK(hi <= 1.0);
      const double v = check.stat(x, y);
      INFO("severity " << s << ": " << v << " after " << last);
      CHECK((check.direction > 0 ? v > last : v < last));
      last = v;
    }
  }
}

TEST_CASE("corruptions with an exact law match it by hand", "[eval][shift]") {
  const cv::Mat grey = test_image(0.1, 0.9);
  SECTION("window scales the standard deviation by its factor") {
    const auto& c = find_corruption("window");
    for (int s = 1; s <= 5; ++s) CHECK(std_of(corrupt(grey, c, s, 1.0, 1)) == Approx(c.params[s - 1] * std_of(grey)).epsilon(1e-4));
  }
  SECTION("bit_depth keeps 2^bits levels of a full ramp") {
    cv::Mat ramp(4, 1024, CV_32FC1);
    for (int col = 0; col < 1024; ++col) ramp.col(col).setTo(col / 1023.0);
    const auto& c = find_corruption("bit_depth");
    for (int s = 1; s <= 5; ++s) CHECK(distinct_values(corrupt(ramp, c, s, 1.0, 1)) == (1 << static_cast<int>(c.params[s - 1])));
  }
  SECTION("bias_field's largest log-ratio is its strength") {
    const cv::Mat dim = test_image(0.2, 0.4);
    const auto& c = find_corruption("bias_field");
    for (int s = 1; s <= 5; ++s) {
      cv::Mat l;
      cv::log(corrupt(dim, c, s, 1.0, 9) / dim, l);
      double lo, hi;
      cv::minMaxLoc(l, &lo, &hi);
      CHECK(std::max(-lo, hi) == Approx(c.params[s - 1]).epsilon(1e-3));
    }
  }
  SECTION("depth_attenuation's last row is exp(-a (rows-1)/rows) of its first") {
    const cv::Mat flat(40, 30, CV_32FC1, cv::Scalar(0.8));
    const auto& c = find_corruption("depth_attenuation");
    for (int s = 1; s <= 5; ++s) {
      const cv::Mat y = corrupt(flat, c, s, 1.0, 1);
      CHECK(y.at<float>(0, 5) == Approx(0.8).epsilon(1e-6));
      CHECK(y.at<float>(39, 5) == Approx(0.8 * std::exp(-c.params[s - 1] * 39.0 / 40.0)).epsilon(1e-5));
    }
  }
  SECTION("ghosting moves each pixel by weight times its distance to the mean of its two ghosts") {
    const auto& c = find_corruption("ghosting");
    const double d1 = mean_abs_diff(grey, corrupt(grey, c, 1, 1.0, 1)) / c.params[0];
    for (int s = 2; s <= 5; ++s) CHECK(mean_abs_diff(grey, corrupt(grey, c, s, 1.0, 1)) / c.params[s - 1] == Approx(d1).epsilon(1e-4));
  }
  SECTION("exposure is x^gamma") {
    const auto& c = find_corruption("exposure");
    const cv::Mat y = corrupt(grey, c, 3, 1.0, 1);
    CHECK(y.at<float>(10, 20) == Approx(std::pow(grey.at<float>(10, 20), c.params[2])).epsilon(1e-5));
  }
  SECTION("colour_cast leaves grey images alone") {
    CHECK(cv::norm(corrupt(grey, find_corruption("colour_cast"), 5, 1.0, 1), grey, cv::NORM_INF) == 0.0);
  }
}

TEST_CASE("the same seed gives the same corrupted image, another seed another one", "[eval][shift]") {
  const cv::Mat grey = test_image(0.1, 0.9);
  const cv::Mat colour = colour_image(0.2, 0.6);
  for (const char* name : {"quantum_noise", "grid_lines", "bias_field", "rician_noise", "speckle", "uneven_illumination"}) {
    INFO(name);
    const auto& c = find_corruption(name);
    const cv::Mat a = corrupt(grey, c, 3, 1.0, eval::corruption_seed(1, name, 17));
    const cv::Mat b = corrupt(grey, c, 3, 1.0, eval::corruption_seed(1, name, 17));
    const cv::Mat other = corrupt(grey, c, 3, 1.0, eval::corruption_seed(2, name, 17));
    const cv::Mat next_image = corrupt(grey, c, 3, 1.0, eval::corruption_seed(1, name, 18));
    CHECK(cv::norm(a, b, cv::NORM_INF) == 0.0);
    CHECK(cv::norm(a, other, cv::NORM_INF) > 0.0);
    CHECK(cv::norm(a, next_image, cv::NORM_INF) > 0.0);
  }
  // Deterministic ones do not depend on the seed at all.
  const auto& jpeg = find_corruption("jpeg");
  CHECK(cv::norm(corrupt(colour, jpeg, 4, 1.0, 1), corrupt(colour, jpeg, 4, 1.0, 99), cv::NORM_INF) == 0.0);
  CHECK(eval::corruption_seed(1, "blur", 3) != eval::corruption_seed(1, "jpeg", 3));
}

TEST_CASE("sizes are in model pixels: the same blur of a 4x larger image is 4x wider", "[eval][shift]") {
  const auto& c = find_corruption("blur");
  cv::Mat small(64, 64, CV_32FC1, cv::Scalar(0)), large(256, 256, CV_32FC1, cv::Scalar(0));
  small.at<float>(32, 32) = 1.0f;
  large.at<float>(128, 128) = 1.0f;
  const cv::Mat a = corrupt(small, c, 5, 1.0, 1), b = corrupt(large, c, 5, 4.0, 1);
  // The spread (second moment along a row) scales with the square of the size.
  auto spread = [](const cv::Mat& m, int centre) {
    double w = 0, v = 0;
    for (int col = 0; col < m.cols; ++col) {
      w += m.at<float>(centre, col);
      v += m.at<float>(centre, col) * (col - centre) * (col - centre);
    }
    return v / w;
  };
  CHECK(spread(b, 128) == Approx(16 * spread(a, 32)).epsilon(0.02));
}

TEST_CASE("the set follows the card's modalities and unknown names are refused", "[eval][shift]") {
  CHECK(eval::shift_set_for({"CR", "DX"}, 1) == "radiograph");
  CHECK(eval::shift_set_for({"MR"}, 1) == "mri");
  CHECK(eval::shift_set_for({"US"}, 1) == "ultrasound");
  CHECK(eval::shift_set_for({"XC", "DMS"}, 3) == "dermoscopy");
  CHECK(eval::shift_set_for({}, 3) == "dermoscopy");
  CHECK(eval::shift_set_for({"OT"}, 1) == "radiograph");
  for (const auto& set : eval::shift_sets()) {
    for (const char* name : set.corruptions) CHECK_NOTHROW(find_corruption(name));
  }
  CHECK_THROWS_WITH(find_corruption("fog"), Catch::Contains("unknown corruption 'fog' (known: exposure, quantum_noise"));
  CHECK_THROWS_WITH(eval::find_shift_set("ct"), "unknown shift set 'ct' (known: radiograph, mri, ultrasound, dermoscopy)");
  CHECK_THROWS_WITH(corrupt(test_image(0, 1), find_corruption("blur"), 6, 1.0, 1), "severity must be 0..5 (got 6)");
}

TEST_CASE("seen families come from the training augmentation's description", "[eval][shift]") {
  const std::string shipped =
      "rotation +-7 deg, scale 0.9-1.1, shift +-6%, contrast 0.8-1.2, brightness +-0.08, gamma 0.78-1.28, per-channel gain "
      "0.9-1.1, blur (p=0.25), resolution jitter 0.5-1 (p=0.25), Gaussian noise sd 0-0.03";
  CHECK(eval::seen_families(shipped) == std::set<std::string>{"intensity", "colour", "blur", "resolution", "noise"});
  CHECK(eval::seen_families("false").empty());
  CHECK(eval::seen_families("").empty());
  CHECK(eval::seen_families("rotation +-7 deg, horizontal flips").empty());
}

TEST_CASE("the summary that chooses recipes leaves seen corruptions out", "[eval][shift]") {
  eval::ShiftResult r;
  r.clean.accuracy = 0.9;
  r.clean.balanced_accuracy = 0.8;
  auto row = [](const char* name, bool seen, double acc, double coverage) {
    eval::ShiftRow row;
    row.name = name;
    row.seen = seen;
    for (int s = 1; s <= 5; ++s) {
      eval::ShiftCell c;
      c.severity = s;
      c.accuracy = acc - 0.01 * s;  // mean over severities: acc - 0.03
      c.balanced_accuracy = acc - 0.1;
      c.auc = 0.5;
      c.ece = 0.1 * s;
      c.coverage = coverage;
      row.cells.push_back(c);
    }
    return row;
  };
  r.rows = {row("a", true, 0.93, 1.0), row("b", false, 0.73, 0.5), row("c", false, 0.63, 0.7)};
  const auto unseen = eval::summarise(r, true);
  CHECK(unseen.corruptions == 2);
  CHECK(unseen.accuracy == Approx((0.70 + 0.60) / 2));
  CHECK(unseen.balanced_accuracy == Approx((0.63 + 0.53) / 2));
  CHECK(unseen.ece == Approx(0.3));
  CHECK(unseen.coverage == Approx(0.6));
  CHECK(unseen.relative_accuracy_drop == Approx((0.9 - 0.65) / 0.9));
  CHECK(unseen.relative_balanced_accuracy_drop == Approx((0.8 - 0.58) / 0.8));
  const auto all = eval::summarise(r, false);
  CHECK(all.corruptions == 3);
  CHECK(all.accuracy == Approx((0.90 + 0.70 + 0.60) / 3));
  r.rows[1].cells[2].coverage = -1;  // a cell without a gate: no coverage mean
  CHECK(eval::summarise(r, true).coverage == -1);
  r.rows.resize(1);
  CHECK(eval::summarise(r, true).corruptions == 0);
  CHECK(eval::summarise(r, true).accuracy == 0);

  r.unseen = eval::summarise(r, true);
  const auto j = eval::shift_to_json(r);
  CHECK(j["corruptions"].size() == 1);
  CHECK(j["corruptions"][0]["seen"] == true);
  CHECK(j["summary"]["unseen"]["corruptions"] == 0);
}

TEST_CASE("the card's shift sentence names the mean over unseen corruptions and the worst one, and replaces an old one", "[eval][shift]") {
  eval::ShiftResult r;
  r.set = "ultrasound";
  r.clean.n = 78;
  r.clean.accuracy = 0.885;
  r.clean.auc = 0.906;
  auto row = [](const char* name, bool seen, double acc5) {
    eval::ShiftRow row;
    row.name = name;
    row.seen = seen;
    for (int s = 1; s <= 5; ++s) {
      eval::ShiftCell c;
      c.severity = s;
      c.accuracy = s == 5 ? acc5 : 0.8;
      c.auc = s == 5 ? 0.59 : 0.8;
      row.cells.push_back(c);
    }
    return row;
  };
  // "gain" is worse at severity 5 but seen: the sentence is about the unseen ones.
  r.rows = {row("gain", true, 0.5), row("speckle", false, 0.65), row("blur", false, 0.75)};
  r.unseen = eval::summarise(r, true);
  r.unseen.auc = 0.75;
  const std::string sentence = eval::shift_limitation(r);
  CHECK(sentence ==
        "Shift benchmark (ultrasound set, 78 images): under acquisition changes its training never applied, accuracy 0.885 -> "
        "0.780 and AUC 0.906 -> 0.750 on average; worst: speckle (accuracy 0.650, AUC 0.590 at severity 5).");
  CHECK(eval::replace_shift_limitation("", sentence) == sentence);
  CHECK(eval::replace_shift_limitation("One hospital.", sentence) == "One hospital. " + sentence);
  // A rerun replaces the old sentence and keeps what stood before and after it.
  const std::string old = "One hospital. Shift benchmark (ultrasound set, 10 images): accuracy 0.5 -> 0.4. Not for clinical use.";
  CHECK(eval::replace_shift_limitation(old, sentence) == "One hospital. " + sentence + " Not for clinical use.");
  CHECK(eval::replace_shift_limitation("Shift benchmark (x set, 1 images): a.", sentence) == sentence);

  const auto j = eval::shift_card_record(r, "val.npz --split val");
  CHECK(j["data"] == "val.npz --split val");
  CHECK(j["n"] == 78);
  CHECK(j["corruptions"]["speckle"]["seen"] == false);
  CHECK(j["corruptions"]["speckle"]["accuracy_at_5"] == Approx(0.65));
  CHECK(j["corruptions"]["speckle"]["mean_accuracy"] == Approx((4 * 0.8 + 0.65) / 5).margin(1e-4));
  CHECK(j["summary"]["unseen"]["corruptions"] == 2);
}
