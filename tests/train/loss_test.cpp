// The training loss's imbalance rules against hand computations.
// torch before Catch: a torch header defines its own CHECK, which Catch's must replace.
#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/threads.h"
#include "model/card.h"
#include "model/net.h"
#include "phantom/phantom.h"
#include "pipeline/diagnose.h"
#include "support/temp_dir.h"
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

// Options for one epoch of a tiny network on 24 phantoms written to DIR/data (DIR: a fresh
// testing::TempDir), the model to DIR/model.
train::TrainOptions one_epoch_on_phantoms(const fs::path& dir) {
  set_threads(1);
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

  const testing::TempDir tmp("loss");
  auto o = one_epoch_on_phantoms(tmp.path);
  o.balance = "logit-adjust";
  const auto result = train::run_train(o, {}, {});
  const auto& loss = result.card.training.at("loss");
  CHECK(loss.at("balance") == "logit-adjust");
  CHECK(loss.at("name") == train::describe_loss(Balance::kLogitAdjust));
  o.balance = "focal";
  CHECK_THROWS_WITH(train::run_train(o, {}, {}), "--balance 'focal' is not one of weights, logit-adjust, none");
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

TEST_CASE("a mixup batch is trained on its blended labels", "[train][loss][mixup]") {
  // Without balancing or smoothing, cross-entropy is linear in the target distribution, so the
  // mixup loss is the cross-entropy against lambda * onehot(y) + (1 - lambda) * onehot(y[partner]).
  torch::manual_seed(4);
  const auto x = torch::randn({6, 1, 2, 2});
  const auto logits = torch::randn({6, 3});
  const auto labels = torch::tensor({0, 1, 2, 2, 1, 0}, torch::kLong);
  const auto mix = train::mixup(x, 0.4);
  const auto onehot = [](const torch::Tensor& y) { return torch::one_hot(y, 3).to(torch::kFloat); };
  const auto soft = onehot(labels) * mix.lambda + onehot(labels.index_select(0, mix.partner)) * (1 - mix.lambda);
  const double expected = -(soft * torch::log_softmax(logits, 1)).sum(1).mean().item<double>();
  CHECK(train::mixup_loss(logits, labels, mix, torch::ones({3}), Balance::kNone, 0).item<double>() ==
        Approx(expected).epsilon(1e-6));
}

TEST_CASE("mixup's lambda follows the Beta(alpha, alpha) law, not only its mean and variance", "[train][loss][mixup]") {
  // Kolmogorov-Smirnov distance of 4000 draws from the exact CDF: Beta(1/2, 1/2) is the arcsine
  // law, F(l) = 2/pi asin(sqrt(l)); Beta(1, 1) is uniform. The 0.1% critical value is
  // 1.95 / sqrt(4000) = 0.031.
  const auto x = torch::zeros({4, 1, 1, 1});
  const double pi = std::acos(-1.0);
  for (double alpha : {0.5, 1.0}) {
    INFO("alpha " << alpha);
    torch::manual_seed(17);
    const int n = 4000;
    std::vector<double> l(n);
    for (auto& v : l) v = train::mixup(x, alpha).lambda;
    std::sort(l.begin(), l.end());
    double distance = 0;
    for (int i = 0; i < n; ++i) {
      const double cdf = alpha == 0.5 ? 2 / pi * std::asin(std::sqrt(l[i])) : l[i];
      distance = std::max({distance, std::abs(cdf - static_cast<double>(i) / n), std::abs(cdf - static_cast<double>(i + 1) / n)});
    }
    CHECK(distance < 0.031);
  }
}

TEST_CASE("train --mixup is recorded in the card, repeats under its seed, changes training and is refused with covariates", "[train][loss][mixup]") {
  const testing::TempDir tmp("mixup");
  auto o = one_epoch_on_phantoms(tmp.path);
  // Without augmentation mixup's own draws are the only random numbers of the epoch after its
  // shuffle: whatever differs from the run without mixup is mixup's doing.
  o.augment = false;
  struct Trained {
    double loss = -1;
    std::string weights;
  };
  // One epoch from the same seed (the same network, split and batch order) into OUT.
  auto trained = [&](double alpha, const std::string& out) {
    o.mixup = alpha;
    o.out = tmp / out;
    Trained t;
    const auto result = train::run_train(o, [&](const train::EpochReport& r) { t.loss = r.train_loss; }, {});
    CHECK(result.card.training.at("loss").at("mixup") == alpha);
    t.weights = read_file(tmp / (out + "/weights.bin"));
    return t;
  };
  const auto plain = trained(0, "plain");
  const auto mixed = trained(0.4, "mixed");
  const auto again = trained(0.4, "again");
  CHECK(std::isfinite(mixed.loss));
  // Repeatable: the same loss and the same weights, byte for byte.
  CHECK(again.loss == mixed.loss);
  const bool same_bytes = again.weights == mixed.weights;  // (a bool: Catch would print the bytes)
  CHECK(same_bytes);
  // And it does something: blended images and labels give another loss and other weights
  // than the same run without mixup.
  CHECK(plain.weights.size() == mixed.weights.size());
  CHECK(mixed.loss != plain.loss);
  const bool other_bytes = mixed.weights != plain.weights;
  CHECK(other_bytes);
  // Beta(alpha, alpha) with a tiny alpha puts lambda at 0 or 1 (within 1e-6 with probability
  // 0.87 per batch at alpha 0.01; seed 1 draws such lambdas only, 0 at least once, or the
  // checks below would not hold, or not fail without half of the blend): an image blended with
  // weight 1 is itself, with weight 0 its partner, which comes with its partner's label. The
  // batch is then a permutation of itself, and training is the same as without mixup up to
  // the order of the sums. Blending the images but not the labels, or the labels but not the
  // images, would pair images with wrong labels.
  const auto extreme = trained(0.01, "extreme");
  CHECK(extreme.loss == Approx(plain.loss).epsilon(1e-6));  // 1e-8 apart here; 6e-3 with either half of the blend missing
  CHECK(extreme.weights.size() == plain.weights.size());
  const auto plain_net = model::load_model(tmp / "plain").net, extreme_net = model::load_model(tmp / "extreme").net;
  double largest = 0;
  for (const auto& p : plain_net->named_parameters()) {
    largest = std::max(largest, (p.value() - extreme_net->named_parameters()[p.key()]).abs().max().item<double>());
  }
  INFO("largest " << largest << " loss difference " << extreme.loss - plain.loss);
  // AdamW's normalised steps make the rounding of near-zero gradients visible (2e-4 here;
  // 3e-3 with either half of the blend missing).
  CHECK(largest < 1e-3);
  o.mixup = -1;
  CHECK_THROWS_WITH(train::run_train(o, {}, {}), "--mixup must be 0 (off) or a positive Beta alpha");
  o.mixup = 0.4;
  o.clinical = "age:num";
  CHECK_THROWS_WITH(train::run_train(o, {}, {}), "--mixup cannot be combined with --clinical");
}
