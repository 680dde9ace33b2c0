// The training loss's imbalance rules against hand computations.
// torch before Catch: a torch header defines its own CHECK, which Catch's must replace.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "model/card.h"
#include "phantom/phantom.h"
#include "pipeline/diagnose.h"
#include "support/tiny_model.h"
#include "train/loss.h"
#include "train/train.h"

namespace fs = std::filesystem;
using namespace medattn;
using train::Balance;

namespace {

const torch::Tensor kLogits = torch::tensor({2.0f, 0.0f, 0.0f, 1.0f, 1.0f, 1.0f}).reshape({3, 2});
const torch::Tensor kLabels = torch::tensor({0, 1, 1}, torch::kLong);
const torch::Tensor kCounts = torch::tensor({1.0f, 3.0f});  // class prior 0.25, 0.75

double loss_of(Balance balance, double smoothing = 0) {
  return train::training_loss(kLogits, kLabels, kCounts, balance, smoothing).item<double>();
}

// Options for one epoch of a tiny network on 24 phantoms written to DIR/data (DIR is emptied first).
train::TrainOptions one_epoch_on_phantoms(const fs::path& dir) {
  pipeline::set_threads(1);
  fs::remove_all(dir);
  phantom::PhantomOptions ph;
  ph.count = 24;
  ph.size = 64;
  ph.seed = 5;
  phantom::write_phantoms((dir / "data").string(), ph);
  train::TrainOptions o;
  o.data = (dir / "data" / "images").string();
  o.out = (dir / "model").string();
  o.classes = {"normal", "nodule", "consolidation"};
  o.epochs = 1;
  o.batch_size = 8;
  testing::make_tiny(o.card);
  return o;
}

}  // namespace

TEST_CASE("plain cross-entropy is the mean negative log softmax", "[train][loss]") {
  const double e = std::exp(1.0);
  const double expected = (std::log(1 + 1 / (e * e)) + std::log(1 + 1 / e) + std::log(2.0)) / 3;
  CHECK(loss_of(Balance::kNone) == Approx(expected).epsilon(1e-6));
}

TEST_CASE("class weights are inverse frequencies normalised to mean one, and the batch mean is weighted", "[train][loss]") {
  // Weights 4/1/2 = 2 and 4/3/2 = 2/3; PyTorch divides by the sum of the batch's weights.
  const double e = std::exp(1.0);
  const double expected = (2 * std::log(1 + 1 / (e * e)) + 2.0 / 3 * std::log(1 + 1 / e) + 2.0 / 3 * std::log(2.0)) / (2 + 4.0 / 3);
  CHECK(loss_of(Balance::kWeights) == Approx(expected).epsilon(1e-6));
}

TEST_CASE("logit adjustment adds the log class prior to the logits before the softmax", "[train][loss]") {
  // Row 0: softmax(2 + log 1/4, log 3/4)[0] = e^2 / (e^2 + 3); row 1: 3e / (1 + 3e); row 2: 3/4.
  const double e = std::exp(1.0);
  const double expected = (std::log(1 + 3 / (e * e)) + std::log(1 + 1 / (3 * e)) + std::log(4.0 / 3)) / 3;
  CHECK(loss_of(Balance::kLogitAdjust) == Approx(expected).epsilon(1e-6));
  // Label smoothing 0.1 still applies, to the adjusted logits.
  const double p0 = e * e / (e * e + 3), p1 = 3 * e / (1 + 3 * e);
  const double smoothed = (-(0.95 * std::log(p0) + 0.05 * std::log(1 - p0)) - (0.95 * std::log(p1) + 0.05 * std::log(1 - p1)) -
                           (0.95 * std::log(0.75) + 0.05 * std::log(0.25))) / 3;
  CHECK(loss_of(Balance::kLogitAdjust, 0.1) == Approx(smoothed).epsilon(1e-6));
}

TEST_CASE("with balancing, a model that knows nothing is pushed to equal classes, not to the majority", "[train][loss]") {
  // Labels drawn at the training prior (one of class 0, three of class 1) and equal logits:
  // plain cross-entropy pulls the logits toward the majority class, both balancing rules
  // leave equal logits where they are (zero gradient).
  const auto labels = torch::tensor({0, 1, 1, 1}, torch::kLong);
  auto gradient = [&](Balance balance) {
    auto logits = torch::zeros({4, 2}, torch::requires_grad());
    train::training_loss(logits, labels, kCounts, balance, 0).backward();
    return logits.grad().sum(0);
  };
  const auto plain = gradient(Balance::kNone);
  CHECK(plain[0].item<float>() == Approx(0.25));  // descent lowers class 0's logit
  CHECK(plain[1].item<float>() == Approx(-0.25));
  CHECK(gradient(Balance::kWeights).abs().max().item<float>() < 1e-6f);
  CHECK(gradient(Balance::kLogitAdjust).abs().max().item<float>() < 1e-6f);
}

TEST_CASE("a class absent from training counts as one image, so the loss stays finite", "[train][loss]") {
  const auto counts = torch::tensor({0.0f, 3.0f});
  for (auto balance : {Balance::kWeights, Balance::kLogitAdjust, Balance::kNone}) {
    CHECK(std::isfinite(train::training_loss(kLogits, kLabels, counts, balance, 0).item<double>()));
  }
}

TEST_CASE("train --balance names its rule in the card and refuses an unknown one", "[train][loss]") {
  CHECK(train::parse_balance("logit-adjust") == Balance::kLogitAdjust);
  CHECK(train::balance_name(train::parse_balance("none")) == "none");
  CHECK_THROWS_WITH(train::parse_balance("focal"), "--balance 'focal' is not one of weights, logit-adjust, none");

  const fs::path dir = fs::temp_directory_path() / "medattn_loss_test";
  auto o = one_epoch_on_phantoms(dir);
  o.balance = "logit-adjust";
  const auto result = train::run_train(o, {}, {});
  const auto& loss = result.card.training.at("loss");
  CHECK(loss.at("balance") == "logit-adjust");
  CHECK(loss.at("name") == train::describe_loss(Balance::kLogitAdjust));
  o.balance = "focal";
  CHECK_THROWS_WITH(train::run_train(o, {}, {}), "--balance 'focal' is not one of weights, logit-adjust, none");
  fs::remove_all(dir);
}

TEST_CASE("the mixup loss weighs the two labels of a blended image by lambda", "[train][loss][mixup]") {
  // Partners 2, 0, 1 give second labels 1, 0, 1. Plain cross-entropy of those:
  // row 0 log(1 + e^2), row 1 log(1 + e), row 2 log 2.
  const double e = std::exp(1.0);
  const double first = (std::log(1 + 1 / (e * e)) + std::log(1 + 1 / e) + std::log(2.0)) / 3;
  const double second = (std::log(1 + e * e) + std::log(1 + e) + std::log(2.0)) / 3;
  train::Mixed mix;
  mix.lambda = 0.3;
  mix.partner = torch::tensor({2, 0, 1}, torch::kLong);
  CHECK(train::mixup_loss(kLogits, kLabels, mix, kCounts, Balance::kNone, 0).item<double>() ==
        Approx(0.3 * first + 0.7 * second).epsilon(1e-6));
  // lambda 1 is the plain loss, under every balance rule.
  mix.lambda = 1.0;
  for (auto balance : {Balance::kWeights, Balance::kLogitAdjust, Balance::kNone}) {
    CHECK(train::mixup_loss(kLogits, kLabels, mix, kCounts, balance, 0.1).item<double>() ==
          Approx(loss_of(balance, 0.1)).epsilon(1e-6));
  }
}

TEST_CASE("mixup blends each image with a partner, lambda ~ Beta(alpha, alpha), repeatably", "[train][loss][mixup]") {
  torch::manual_seed(3);
  const auto x = torch::arange(8, torch::kFloat).reshape({8, 1, 1, 1});
  const auto mix = train::mixup(x, 0.4);
  CHECK(mix.lambda > 0.0);
  CHECK(mix.lambda < 1.0);
  // The partners are a permutation of the batch, and the images are blended with them.
  CHECK(std::get<0>(mix.partner.sort()).equal(torch::arange(8, torch::kLong)));
  CHECK(torch::allclose(mix.x, x * mix.lambda + x.index_select(0, mix.partner) * (1 - mix.lambda)));
  torch::manual_seed(3);
  const auto again = train::mixup(x, 0.4);
  CHECK(again.lambda == mix.lambda);
  CHECK(again.partner.equal(mix.partner));

  // Beta(a, a) has mean 1/2 and variance 1 / (4 (2a + 1)): 0.1786 at a = 0.2, 1/12 at a = 1.
  for (double alpha : {0.2, 1.0}) {
    torch::manual_seed(11);
    double sum = 0, sum2 = 0;
    const int n = 4000;
    for (int i = 0; i < n; ++i) {
      const double l = train::mixup(x, alpha).lambda;
      sum += l;
      sum2 += l * l;
    }
    const double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK(mean == Approx(0.5).margin(0.02));
    CHECK(var == Approx(1 / (4 * (2 * alpha + 1))).epsilon(0.06));
  }
  CHECK_THROWS_WITH(train::mixup(x, 0.0), "mixup alpha must be positive");
}

TEST_CASE("train --mixup is recorded in the card, repeats under its seed and is refused with covariates", "[train][loss][mixup]") {
  const fs::path dir = fs::temp_directory_path() / "medattn_mixup_test";
  auto o = one_epoch_on_phantoms(dir);
  o.mixup = 0.4;
  auto train_loss = [&] {
    double loss = -1;
    const auto result = train::run_train(o, [&](const train::EpochReport& r) { loss = r.train_loss; }, {});
    CHECK(result.card.training.at("loss").at("mixup") == 0.4);
    return loss;
  };
  const double first = train_loss();
  CHECK(std::isfinite(first));
  CHECK(train_loss() == first);
  o.mixup = -1;
  CHECK_THROWS_WITH(train::run_train(o, {}, {}), "--mixup must be 0 (off) or a positive Beta alpha");
  o.mixup = 0.4;
  o.clinical = "age:num";
  CHECK_THROWS_WITH(train::run_train(o, {}, {}), "--mixup cannot be combined with --clinical");
  fs::remove_all(dir);
}
