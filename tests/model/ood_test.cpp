// The OOD gate's arithmetic (model/ood.h), its sidecar file and card section, and the feature
// it scores (model/ood_features.h).
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "core/sha256.h"
#include "model/card.h"
#include "model/net.h"
#include "model/ood.h"
#include "model/ood_features.h"
#include "support/helpers.h"
#include "support/temp_dir.h"
#include "support/tiny_model.h"

using namespace medattn;

namespace {

// Features from two 2-D Gaussians with the same known covariance [[4, 1.2], [1.2, 1]] around
// (0, 0) and (5, -2): x = mean + L z with L the Cholesky factor.
void draw(int n, uint64_t seed, std::vector<std::vector<double>>* f, std::vector<int>* y) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z;
  const double l11 = 2.0, l21 = 0.6, l22 = std::sqrt(1.0 - 0.36);
  for (int i = 0; i < n; ++i) {
    const int k = i % 2;
    const double a = z(rng), b = z(rng);
    f->push_back({(k ? 5.0 : 0.0) + l11 * a, (k ? -2.0 : 0.0) + l21 * a + l22 * b});
    y->push_back(k);
  }
}

// The Mahalanobis distance to (mx, my) under covariance [[a, b], [b, d]], by the 2x2 inverse.
double by_hand(double x, double y, double mx, double my, double a, double b, double d) {
  const double det = a * d - b * b;
  const double dx = x - mx, dy = y - my;
  return std::sqrt((d * dx * dx - 2 * b * dx * dy + a * dy * dy) / det);
}

}  // namespace

TEST_CASE("the Mahalanobis score equals the distance computed by hand", "[ood]") {
  std::vector<std::vector<double>> f;
  std::vector<int> y;
  draw(4000, 7, &f, &y);
  const auto stats = model::fit_gaussians(f, y, 2, /*shrinkage=*/0.0);
  // The fitted means and the pooled covariance, by hand from the same samples.
  double m[2][2] = {{0, 0}, {0, 0}};
  int count[2] = {0, 0};
  for (size_t i = 0; i < f.size(); ++i) {
    m[y[i]][0] += f[i][0];
    m[y[i]][1] += f[i][1];
    ++count[y[i]];
  }
  for (int k = 0; k < 2; ++k) m[k][0] /= count[k], m[k][1] /= count[k];
  double a = 0, b = 0, d = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const double dx = f[i][0] - m[y[i]][0], dy = f[i][1] - m[y[i]][1];
    a += dx * dx, b += dx * dy, d += dy * dy;
  }
  a /= f.size(), b /= f.size(), d /= f.size();
  CHECK(stats.means[0] == Approx(m[0][0]).margin(1e-12));
  CHECK(stats.means[3] == Approx(m[1][1]).margin(1e-12));
  // The samples recover the known Gaussian.
  CHECK(a == Approx(4.0).epsilon(0.06));
  CHECK(b == Approx(1.2).epsilon(0.1));
  CHECK(d == Approx(1.0).epsilon(0.06));
  for (const auto& p : std::vector<std::pair<double, double>>{{0, 0}, {1, 3}, {5, -2}, {2.5, -1}, {-6, 8}, {30, 30}}) {
    const double want = std::min(by_hand(p.first, p.second, m[0][0], m[0][1], a, b, d),
                                 by_hand(p.first, p.second, m[1][0], m[1][1], a, b, d));
    INFO(p.first << "," << p.second);
    CHECK(model::mahalanobis_score(stats, {p.first, p.second}) == Approx(want).epsilon(1e-9));
  }
  // Against the true parameters: a point 3 standard deviations along x from class 0's mean.
  CHECK(model::mahalanobis_score(stats, {-6.0, -1.8}) == Approx(by_hand(-6, -1.8, 0, 0, 4, 1.2, 1)).epsilon(0.05));
  // Shrinkage pulls the covariance towards its diagonal: (1 - s) C + s diag(C).
  const auto shrunk = model::fit_gaussians(f, y, 2, 0.5);
  CHECK(model::mahalanobis_score(shrunk, {1, 3}) ==
        Approx(std::min(by_hand(1, 3, m[0][0], m[0][1], a, 0.5 * b, d), by_hand(1, 3, m[1][0], m[1][1], a, 0.5 * b, d)))
            .epsilon(1e-9));
  // ... which keeps the score independent of each dimension's unit.
  auto scaled = f;
  for (auto& row : scaled) row[1] *= 1000.0;
  CHECK(model::mahalanobis_score(model::fit_gaussians(scaled, y, 2, 0.5), {1, 3000}) ==
        Approx(model::mahalanobis_score(shrunk, {1, 3})).epsilon(1e-9));
}

TEST_CASE("the threshold is the stated percentile, AUROC and FPR at 95% TPR", "[ood]") {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // order does not matter
  CHECK(model::percentile(v, 98) == Approx(98.02));  // numpy: 1 + 0.98 * 99
  CHECK(model::percentile(v, 50) == Approx(50.5));
  CHECK(model::percentile(v, 100) == 100);
  CHECK(model::percentile({3.0}, 98) == 3.0);
  // Scores of in-distribution 1..100; OOD 91..190: 10 x 10 overlapping pairs, ties count half.
  std::vector<double> out;
  for (int i = 91; i <= 190; ++i) out.push_back(i);
  CHECK(model::ood_auroc(v, out) == Approx(1.0 - (45.0 + 5.0) / 10000.0));
  // The highest threshold keeping 95% of the OOD scores is 96 (96..190 are 95 of 100); the
  // in-distribution scores at or above it are 96..100: 5 of 100.
  CHECK(model::ood_fpr_at_95_tpr(v, out) == Approx(0.05));
  CHECK(model::ood_auroc(v, {1000.0}) == 1.0);
  CHECK(model::energy_score({0.0, 0.0}) == Approx(-std::log(2.0)));
  CHECK(model::energy_score({10.0, -10.0}) == Approx(-10.0).epsilon(1e-6));
}

TEST_CASE("bad fits are refused with a reason", "[ood]") {
  testing::require_error([] { model::fit_gaussians({}, {}, 2); }, ErrorKind::kInvalidArgument, "cannot fit the OOD gate: no features");
  testing::require_error([] { model::fit_gaussians({{1.0}, {2.0}}, {0, 0}, 2); }, ErrorKind::kInvalidArgument,
                         "cannot fit the OOD gate: class 1 has no sample");
  testing::require_error([] { model::fit_gaussians({{1.0, 1.0}, {2.0}}, {0, 1}, 2); }, ErrorKind::kInvalidArgument,
                         "cannot fit the OOD gate: features of different lengths");
  // Two identical features per class: zero covariance, singular without shrinkage.
  testing::require_error([] { model::fit_gaussians({{1.0, 1.0}, {1.0, 1.0}}, {0, 0}, 1, 0.0); }, ErrorKind::kInvalidArgument,
                         "cannot fit the OOD gate: the covariance is singular (use a positive shrinkage)");
}

TEST_CASE("the sidecar file round-trips and is checked against the card like the weights", "[ood]") {
  testing::TempDir dir("ood");
  std::vector<std::vector<double>> f;
  std::vector<int> y;
  draw(200, 3, &f, &y);
  const auto stats = model::fit_gaussians(f, y, 2);
  model::save_gaussians(dir / "ood.bin", stats);
  const auto back = model::load_gaussians(dir / "ood.bin");
  CHECK(back.means == stats.means);
  CHECK(back.precision == stats.precision);
  CHECK(back.shrinkage == 0.01);

  model::ModelCard card;
  card.name = "m";
  card.classes = {"a", "b"};
  card.ood.file = "ood.bin";
  card.ood.sha256 = sha256_file(dir / "ood.bin");
  card.ood.threshold = 3.5;
  CHECK(model::load_gate(dir.path.string(), card, 2).dim == 2);
  testing::require_error([&] { model::load_gate(dir.path.string(), card, 96); }, ErrorKind::kModel,
                         "cannot load model '" + dir.path.string() + "': ood.bin has 2 classes of dimension 2 (expected 2 of 96)");
  // One byte changed: refused before it is parsed.
  std::string bytes = read_file(dir / "ood.bin");
  bytes[40] ^= 1;
  write_file_atomic(dir / "ood.bin", bytes);
  const std::string got = sha256_file(dir / "ood.bin");
  testing::require_error([&] { model::load_gate(dir.path.string(), card, 2); }, ErrorKind::kModel,
                         "cannot load model '" + dir.path.string() + "': ood.bin does not match the card's SHA-256 (got " +
                             got.substr(0, 16) + "..., expected " + card.ood.sha256.substr(0, 16) + "...): corrupt or replaced");
  std::filesystem::remove(dir / "ood.bin");
  testing::require_error([&] { model::load_gate(dir.path.string(), card, 2); }, ErrorKind::kModel,
                         "cannot load model '" + dir.path.string() + "': missing ood.bin (the card's ood.file)");
  write_file_atomic(dir / "x.bin", "MDATTNO1\x01");
  testing::require_error([&] { model::load_gaussians(dir / "x.bin"); }, ErrorKind::kModel,
                         "cannot load OOD statistics '" + (dir / "x.bin") + "': truncated (9 bytes)");
}

TEST_CASE("cards carry intended_use and ood, cards without them still load", "[ood]") {
  model::ModelCard card;
  card.name = "m";
  card.classes = {"a", "b"};
  card.intended_use.modalities = {"CR", "DX"};
  card.intended_use.body_part = "CHEST";
  card.intended_use.colour = "grey";
  card.intended_use.population = "children, one hospital";
  card.intended_use.description = "pneumonia";
  card.intended_use.limitations = "frontal only";
  card.ood.file = "ood.bin";
  card.ood.sha256 = std::string(64, 'a');
  card.ood.threshold = 12.5;
  card.ood.percentile = 98;
  const auto j = model::card_to_json(card);
  CHECK(j["intended_use"]["modalities"] == nlohmann::json({"CR", "DX"}));
  CHECK(j["ood"]["percentile"] == 98.0);
  const auto back = model::card_from_json(j, "m/model.json");
  CHECK(back.intended_use.modalities == card.intended_use.modalities);
  CHECK(back.intended_use.limitations == "frontal only");
  CHECK(back.ood.threshold == 12.5);
  CHECK(back.ood.sha256 == card.ood.sha256);
  const auto text = model::describe_card(back);
  CHECK(text.find("modalities:    CR, DX (DICOM Modality)") != std::string::npos);
  CHECK(text.find("limitations:   frontal only") != std::string::npos);
  CHECK(text.find("abstains above 12.5 (98th percentile of validation)") != std::string::npos);

  auto old = j;
  old.erase("intended_use");
  old.erase("ood");
  const auto plain = model::card_from_json(old, "m/model.json");
  CHECK(plain.intended_use.empty());
  CHECK_FALSE(plain.ood.enabled());
  CHECK(model::describe_card(plain).find("ood gate:      none") != std::string::npos);

  auto bad = j;
  bad["ood"]["file"] = "../weights.bin";
  testing::require_error([&] { model::card_from_json(bad, "m/model.json"); }, ErrorKind::kModel,
                         "invalid model card 'm/model.json': ood.file '../weights.bin' is not a file name beside the card");
  bad = j;
  bad["ood"]["percentile"] = 120;
  testing::require_error([&] { model::card_from_json(bad, "m/model.json"); }, ErrorKind::kModel,
                         "invalid model card 'm/model.json': ood.percentile must be in (0, 100]");
  bad = j;
  bad["intended_use"]["colour"] = "sepia";
  testing::require_error([&] { model::card_from_json(bad, "m/model.json"); }, ErrorKind::kModel,
                         "invalid model card 'm/model.json': intended_use.colour 'sepia' is not grey or colour");
  bad = j;
  bad["intended_use"]["modalities"] = "CR";
  testing::require_error([&] { model::card_from_json(bad, "m/model.json"); }, ErrorKind::kModel,
                         "invalid model card 'm/model.json': intended_use.modalities has the wrong type (got string)");
}

TEST_CASE("every shipped model has its intended use and a gate whose sidecar matches", "[ood][models]") {
  for (const char* name : {"pneumonia-cxr", "pneumoniamnist", "breastmnist", "brain-mri", "skin-ham10000",
                           "skin-ham10000-image", "phantom"}) {
    INFO(name);
    const std::string dir = std::string(MEDATTN_SOURCE_DIR) + "/models/" + name;
    const auto card = model::read_card(dir);
    CHECK_FALSE(card.intended_use.description.empty());
    CHECK_FALSE(card.intended_use.modalities.empty());
    CHECK_FALSE(card.intended_use.limitations.empty());
    CHECK(card.intended_use.colour == (card.preprocess.channels == 3 ? "colour" : "grey"));
    REQUIRE(card.ood.enabled());
    CHECK(card.ood.percentile == 98);
    CHECK(model::load_gate(dir, card, model::gate_feature_dim(card, card.ood.feature)).classes == static_cast<int>(card.classes.size()));
    CHECK(sha256_file(dir + "/weights.bin") == card.weights_sha256);
  }
}

TEST_CASE("the gate's feature is what the head reads", "[ood]") {
  torch::manual_seed(3);
  for (const char* fusion : {"", "joint", "cross"}) {
    INFO(fusion);
    model::ModelCard card;
    card.classes = {"a", "b", "c"};
    testing::make_tiny(card);
    if (*fusion) {
      model::ClinicalField age;
      age.name = "age";
      card.clinical = {age};
      card.clinical_fusion = fusion;
    }
    auto net = model::build_net(card);
    net->eval();
    const auto x = torch::randn({3, 1, 32, 32});
    const auto c = *fusion ? torch::tensor({{0.5f}, {std::nanf("")}, {-1.0f}}) : torch::Tensor();
    const auto f = model::cls_features(net, x, c);
    CHECK(f.sizes() == torch::IntArrayRef({3, 16}));
    torch::NoGradGuard no_grad;
    CHECK(torch::allclose(net->head(f), net->forward(x, false, c).logits, 1e-5, 1e-6));
    // The layers feature: CLS, the mean image token, then each stem stage's mean (8 + 16).
    const auto layers = model::layer_features(net, x, c);
    CHECK(layers.size(1) == model::gate_feature_dim(card, "layers"));
    CHECK(layers.size(1) == 16 + 16 + 8 + 16);
    CHECK(torch::allclose(layers.slice(1, 0, 16), f));
    const auto stage2 = net->stem->forward(x).mean({2, 3});
    CHECK(torch::allclose(layers.slice(1, 40, 56), stage2, 1e-5, 1e-6));
    // An ensemble's feature is its networks' features side by side.
    auto second = model::build_net(card);
    const auto both = model::gate_features({net, second}, x, c, "cls");
    CHECK(both.size(1) == 32);
    CHECK(torch::allclose(both.slice(1, 16, 32), model::cls_features(second, x, c)));
    CHECK(model::gate_features({net, second}, x, c, "layers").size(1) == 2 * 56);
  }
}
