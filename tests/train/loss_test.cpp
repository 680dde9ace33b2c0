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

  pipeline::set_threads(1);
  const fs::path dir = fs::temp_directory_path() / "medattn_loss_test";
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
  o.balance = "logit-adjust";
  testing::make_tiny(o.card);
  const auto result = train::run_train(o, {}, {});
  const auto& loss = result.card.training.at("loss");
  CHECK(loss.at("balance") == "logit-adjust");
  CHECK(loss.at("name") == train::describe_loss(Balance::kLogitAdjust));
  o.balance = "focal";
  CHECK_THROWS_WITH(train::run_train(o, {}, {}), "--balance 'focal' is not one of weights, logit-adjust, none");
  fs::remove_all(dir);
}
