// Heatmap methods and their metrics on a hand-made model whose logit depends only on one
// quadrant of the image, and against hand computations.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "core/error.h"
#include "explain/faithfulness.h"
#include "explain/methods.h"
#include "support/quadrant_model.h"
#include "support/tiny_model.h"

using namespace medattn;
using testing::image_with_blobs;
using testing::quadrant_card;
using testing::quadrant_net;

namespace {

// Where the map's maximum is: quadrant (row, col) of the 16x16 input.
std::pair<int, int> argmax_quadrant(const torch::Tensor& map) {
  const auto flat = map.reshape({-1}).argmax().item<int64_t>();
  return {static_cast<int>(flat / 16 / 8), static_cast<int>(flat % 16 / 8)};
}

}  // namespace

TEST_CASE("the hand-made model's logit depends only on its quadrant", "[explain][methods]") {
  auto net = quadrant_net(0, 0);
  torch::NoGradGuard no_grad;
  const auto base = net->forward(image_with_blobs({})).logits;
  const auto outside = net->forward(image_with_blobs({{10, 10}, {2, 10}, {10, 2}})).logits;
  const auto inside = net->forward(image_with_blobs({{2, 2}})).logits;
  CHECK(torch::equal(base, outside));
  CHECK(inside[0][1].item<float>() > base[0][1].item<float>() + 0.05f);
}

TEST_CASE("every method points at the quadrant the logit depends on", "[explain][methods]") {
  for (int q = 0; q < 4; ++q) {
    const int qy = q / 2, qx = q % 2;
    auto net = quadrant_net(qy, qx);
    // A bright blob in the quadrant and an equally bright distractor in the opposite one.
    const std::pair<int, int> in{qy * 8 + 2, qx * 8 + 2}, out{(1 - qy) * 8 + 2, (1 - qx) * 8 + 2};
    const auto with_distractor = image_with_blobs({in, out});
    const auto alone = image_with_blobs({in});
    for (const std::string m : {"rollout", "attn-grad", "saliency", "occlusion", "gradcam"}) {
      INFO("quadrant " << q << ", method " << m);
      explain::ExplainOptions opt;
      opt.method = m;
      opt.occlusion_patch = 4;
      opt.occlusion_stride = 2;
      // Grad-CAM pools its gradients over the whole grid, so by construction it cannot tell two
      // equally active regions apart; it is shown the blob alone.
      const auto x = m == "gradcam" ? alone : with_distractor;
      const auto ex = explain::explain(net, x, opt, {1});
      REQUIRE(ex.maps.sizes() == torch::IntArrayRef({1, 16, 16}));
      CHECK(ex.maps.min().item<float>() >= 0.0f);
      CHECK(ex.maps.max().item<float>() == 1.0f);
      CHECK(argmax_quadrant(ex.maps[0]) == std::make_pair(qy, qx));
    }
  }
}

TEST_CASE("saliency is the magnitude of the target logit's gradient, summed over colour channels", "[explain][methods]") {
  // A random tiny network (no structure to lean on): the map must be normalise(|d logit / d x|)
  // as autograd gives it here, per image, with the blur off.
  for (int channels : {1, 3}) {
    INFO(channels << " channel(s)");
    model::ModelCard card;
    card.classes = {"a", "b", "c"};
    testing::make_tiny(card, channels);
    torch::manual_seed(13);
    auto net = model::build_net(card);
    net->eval();
    const auto x = torch::randn({2, channels, 32, 32});
    explain::ExplainOptions opt;
    opt.method = "saliency";
    opt.saliency_sigma = 0;
    const auto ex = explain::explain(net, x, opt, {2, 0});
    REQUIRE(ex.targets == std::vector<int>{2, 0});
    REQUIRE(ex.maps.sizes() == torch::IntArrayRef({2, 32, 32}));

    auto input = x.clone().requires_grad_(true);
    const auto logits = net->forward(input).logits;
    const auto g = torch::autograd::grad({logits[0][2] + logits[1][0]}, {input})[0];
    const auto magnitude = g.abs().sum(1);  // [2,32,32]
    auto flat = magnitude.reshape({2, -1});
    const auto lo = std::get<0>(flat.min(1, true)), hi = std::get<0>(flat.max(1, true));
    const auto expected = ((flat - lo) / (hi - lo)).reshape({2, 32, 32});
    // The gradient has both signs, so its sign would show.
    REQUIRE(g.min().item<float>() < 0.0f);
    REQUIRE(g.max().item<float>() > 0.0f);
    CHECK((ex.maps - expected).abs().max().item<double>() < 1e-6);
    // A lone image gets the same map.
    const auto one = explain::explain(net, x.narrow(0, 1, 1), opt, {0});
    CHECK((one.maps[0] - expected[1]).abs().max().item<double>() < 1e-6);
  }
}

TEST_CASE("test-time flips: the views, their inverses and the averaged logits", "[explain][tta]") {
  CHECK((model::tta_views({}) == std::vector<int>{0}));
  CHECK((model::tta_views({"hflip"}) == std::vector<int>{0, 1}));
  CHECK((model::tta_views({"vflip"}) == std::vector<int>{0, 2}));
  CHECK((model::tta_views({"hflip", "vflip"}) == std::vector<int>{0, 1, 2, 3}));
  const auto x = torch::arange(6, torch::kFloat32).view({1, 1, 2, 3});  // [[0 1 2] [3 4 5]]
  CHECK(torch::equal(model::flip_view(x, 0), x));
  CHECK(torch::equal(model::flip_view(x, 1)[0][0], torch::tensor({2.f, 1.f, 0.f, 5.f, 4.f, 3.f}).view({2, 3})));
  CHECK(torch::equal(model::flip_view(x, 2)[0][0], torch::tensor({3.f, 4.f, 5.f, 0.f, 1.f, 2.f}).view({2, 3})));
  CHECK(torch::equal(model::flip_view(x, 3)[0][0], torch::tensor({5.f, 4.f, 3.f, 2.f, 1.f, 0.f}).view({2, 3})));
  for (int v = 0; v < 4; ++v) CHECK(torch::equal(model::flip_view(model::flip_view(x, v), v), x));

  auto net = quadrant_net(0, 0);
  torch::NoGradGuard no_grad;
  const auto img = image_with_blobs({{2, 2}});
  const auto plain = net->forward(img).logits;
  const auto mirrored = net->forward(model::flip_view(img, 1)).logits;
  CHECK(torch::allclose(model::view_logits(net, img, {}, {0}), plain));
  CHECK(torch::allclose(model::view_logits(net, img, {}, {0, 1}), (plain + mirrored) / 2));
  // The averaged model sees every flip of its input, so it gives a flipped image the same logits.
  const auto all = model::tta_views({"hflip", "vflip"});
  CHECK(torch::allclose(model::view_logits(net, img, {}, all), model::view_logits(net, model::flip_view(img, 3), {}, all), 1e-5, 1e-6));
}

TEST_CASE("with test-time flips the heatmap explains the averaged model", "[explain][tta]") {
  // The model reads the top-left quadrant; averaged with its mirror image it also reads the
  // top-right one. A blob there is invisible to the plain model but not to the averaged one.
  auto net = quadrant_net(0, 0);
  const auto x = image_with_blobs({{2, 10}});
  explain::ExplainOptions opt;
  opt.method = "saliency";
  const auto plain = explain::explain(net, x, opt, {1});
  const auto averaged = explain::explain(net, x, opt, {1}, {}, model::tta_views({"hflip"}));
  // The top-right quadrant, away from the blur's reach across the middle.
  const auto right = [](const torch::Tensor& map) { return map[0].narrow(0, 0, 8).narrow(1, 10, 6).max().item<float>(); };
  INFO("top right: plain " << right(plain.maps) << ", averaged " << right(averaged.maps));
  CHECK(right(plain.maps) < 0.05f);  // the plain model only reads its own quadrant
  CHECK(right(averaged.maps) > 0.9f);
  {
    torch::NoGradGuard no_grad;
    CHECK(torch::allclose(averaged.logits, model::view_logits(net, x, {}, {0, 1})));
  }
  // Explaining the flipped image gives the flipped map: the views form a group.
  const auto flipped = explain::explain(net, model::flip_view(x, 1), opt, {1}, {}, model::tta_views({"hflip"}));
  CHECK(torch::allclose(flipped.maps, model::flip_view(averaged.maps, 1), 1e-4, 1e-5));
  // The bottom half is not read by any view.
  CHECK(averaged.maps[0].narrow(0, 12, 4).max().item<float>() < 0.05f);
}

TEST_CASE("heatmap flips average the map but leave the prediction alone", "[explain][tta]") {
  auto net = quadrant_net(0, 0);
  const auto x = image_with_blobs({{2, 10}});
  explain::ExplainOptions opt;
  opt.method = "saliency";
  opt.flips = {"hflip"};
  const auto smoothed = explain::explain(net, x, opt, {1});
  {
    torch::NoGradGuard no_grad;
    CHECK(torch::equal(smoothed.logits, net->forward(x).logits));
  }
  CHECK(smoothed.maps[0].narrow(0, 0, 8).narrow(1, 10, 6).max().item<float>() > 0.9f);
  // With the prediction's own views as well, the map is the same mean over the two views.
  const auto both = explain::explain(net, x, opt, {1}, {}, model::tta_views({"hflip"}));
  CHECK(torch::allclose(both.maps, smoothed.maps));
}

TEST_CASE("an ensemble is explained by the mean of its members' maps, for the class of their mean logits", "[explain][ensemble]") {
  // One member reads the top-left quadrant, the other the bottom-right one: the ensemble reads both.
  const std::vector<model::AttnNet> nets{quadrant_net(0, 0), quadrant_net(1, 1)};
  const auto x = image_with_blobs({{2, 2}, {10, 10}});
  explain::ExplainOptions opt;
  opt.method = "saliency";
  const auto ex = explain::explain(nets, x, opt, {1});
  auto first = nets[0], second = nets[1];
  const auto a = explain::explain(first, x, opt, {1}), b = explain::explain(second, x, opt, {1});
  {
    torch::NoGradGuard no_grad;
    CHECK(torch::allclose(ex.logits, (first->forward(x).logits + second->forward(x).logits) / 2));
  }
  const auto sum = a.maps + b.maps;
  const auto expected = (sum - sum.min()) / (sum.max() - sum.min());
  CHECK(torch::allclose(ex.maps, expected, 1e-5, 1e-6));
  const auto peak = [&](int qy, int qx) { return ex.maps[0].narrow(0, qy * 8, 8).narrow(1, qx * 8, 8).max().item<float>(); };
  CHECK(peak(0, 0) > 0.5f);
  CHECK(peak(1, 1) > 0.5f);
  // The other two quadrants, away from the blur's reach across the middle, are read by neither.
  CHECK(ex.maps[0].narrow(0, 0, 6).narrow(1, 10, 6).max().item<float>() < 0.05f);
  CHECK(ex.maps[0].narrow(0, 10, 6).narrow(1, 0, 6).max().item<float>() < 0.05f);
  // With no target given, the class is the ensemble's prediction.
  CHECK(explain::explain(nets, x, opt).targets == std::vector<int>{static_cast<int>(ex.logits.argmax(1).item<int64_t>())});
  // A one-network ensemble is that network.
  const auto single = explain::explain(std::vector<model::AttnNet>{first}, x, opt, {1});
  CHECK(torch::equal(single.maps, a.maps));
  // Deletion/insertion of an ensemble of two copies measures the copy.
  const auto maps = a.maps.contiguous();
  const auto one = explain::deletion_insertion(first, x, maps, {1}, 1.0);
  const auto two = explain::deletion_insertion(std::vector<model::AttnNet>{first, first}, x, maps, {1}, 1.0);
  CHECK(two[0].deletion_auc == Approx(one[0].deletion_auc).epsilon(1e-6));
  CHECK(two[0].insertion_auc == Approx(one[0].insertion_auc).epsilon(1e-6));
}

TEST_CASE("pointing game and IoU against hand-made maps", "[explain][metrics]") {
  cv::Mat mask(4, 4, CV_8UC1, cv::Scalar(0));
  mask(cv::Rect(0, 0, 2, 2)).setTo(255);  // a 2x2 lesion in the top-left corner
  cv::Mat map(4, 4, CV_32FC1, cv::Scalar(0));
  map.at<float>(0, 0) = 1.0f;
  map.at<float>(0, 1) = 0.9f;
  map.at<float>(3, 3) = 0.8f;
  map.at<float>(2, 2) = 0.7f;
  CHECK(explain::pointing_game_hit(map, mask));
  // Top 4 pixels: (0,0), (0,1) inside; (3,3), (2,2) outside -> IoU 2 / (4 + 4 - 2).
  CHECK(explain::heatmap_iou(map, mask) == Approx(2.0 / 6.0));
  map.at<float>(3, 3) = 2.0f;
  CHECK_FALSE(explain::pointing_game_hit(map, mask));
}

TEST_CASE("trapezoid AUC and Spearman against hand computations", "[explain][metrics]") {
  CHECK(explain::trapezoid_auc({1.0, 0.5, 0.0}) == Approx(0.5));
  CHECK(explain::trapezoid_auc({1.0, 1.0, 0.0, 0.0}) == Approx(0.5));
  CHECK(explain::trapezoid_auc({0.0, 1.0}) == Approx(0.5));
  CHECK(explain::spearman({1, 2, 3, 4}, {10, 20, 30, 40}) == Approx(1.0));
  CHECK(explain::spearman({1, 2, 3, 4}, {4, 3, 2, 1}) == Approx(-1.0));
  // Ranks with ties: a = (1, 2.5, 2.5, 4) - 1, b = (1, 2, 3, 4) - 1 -> rho = 4.5 / sqrt(4.5 * 5).
  CHECK(explain::spearman({1, 2, 2, 3}, {1, 2, 3, 4}) == Approx(4.5 / std::sqrt(4.5 * 5.0)));
  CHECK(explain::spearman({1, 1, 1}, {1, 2, 3}) == 0.0);
}

TEST_CASE("deleting the relevant pixels first lowers the class probability faster", "[explain][metrics]") {
  auto net = quadrant_net(0, 0);
  const auto x = image_with_blobs({{2, 2}});
  auto right = torch::zeros({1, 16, 16});
  right[0].narrow(0, 2, 4).narrow(1, 2, 4).fill_(1.0f);  // the blob first
  const auto wrong = 1.0 - right;                         // everything else first
  const auto good = explain::deletion_insertion(net, x, right, {1}, 1.0)[0];
  const auto bad = explain::deletion_insertion(net, x, wrong, {1}, 1.0)[0];
  CHECK(good.deletion_auc < bad.deletion_auc);
  CHECK(good.insertion_auc > bad.insertion_auc);
}

TEST_CASE("randomising the weights destroys the attention map's structure", "[explain][metrics]") {
  torch::manual_seed(3);
  auto card = quadrant_card();
  auto net = quadrant_net(0, 0);
  explain::ExplainOptions opt;
  opt.method = "attn-grad";
  const auto x = torch::cat({image_with_blobs({{2, 2}}), image_with_blobs({{2, 2}, {10, 10}})});
  const auto original = explain::explain(net, x, opt);
  const auto steps = explain::randomization_check(card, net, x, opt, /*seed=*/5, /*draws=*/1);
  REQUIRE(steps.size() == 5);
  const std::vector<std::string> layers{"head", "norm", "blocks.0", "proj", "stem.0"};
  for (size_t i = 0; i < steps.size(); ++i) CHECK(steps[i].layer == layers[i]);
  // It works on copies: the network explains as before.
  CHECK(torch::equal(explain::explain(net, x, opt).maps, original.maps));
  // The first step by hand: the head replaced by a Linear(4, 2) freshly initialised from the
  // seed, the maps for the same classes, Spearman per image, averaged over the two images.
  auto by_hand = quadrant_net(0, 0);
  {
    torch::manual_seed(5);
    torch::nn::Linear fresh(4, 2);
    torch::NoGradGuard no_grad;
    by_hand->head->weight.copy_(fresh->weight);
    by_hand->head->bias.copy_(fresh->bias);
  }
  const auto maps = explain::explain(by_hand, x, opt, original.targets).maps.contiguous();
  const auto orig_maps = original.maps.contiguous();
  auto floats = [](const torch::Tensor& m) { return std::vector<float>(m.data_ptr<float>(), m.data_ptr<float>() + m.numel()); };
  const double head = (explain::spearman(floats(orig_maps[0]), floats(maps[0])) +
                       explain::spearman(floats(orig_maps[1]), floats(maps[1]))) / 2;
  CHECK(steps[0].spearman == Approx(head).epsilon(1e-12));
  CHECK(steps[0].spearman < 0.999);  // a new head already changes the map
  // LayerNorm starts at weight 1, bias 0, which the hand-made network already has: the second
  // step changes nothing.
  CHECK(steps[1].spearman == steps[0].spearman);
  // Two draws are the mean of the draws from seeds 5 and 6.
  const auto two = explain::randomization_check(card, net, x, opt, /*seed=*/5, /*draws=*/2);
  const auto six = explain::randomization_check(card, net, x, opt, /*seed=*/6, /*draws=*/1);
  REQUIRE(two.size() == 5);
  REQUIRE(six.size() == 5);
  for (size_t i = 0; i < steps.size(); ++i) {
    INFO(layers[i]);
    CHECK(two[i].spearman == Approx((steps[i].spearman + six[i].spearman) / 2).epsilon(1e-12));
  }
}

TEST_CASE("unknown methods are usage errors naming the choices", "[explain][methods]") {
  CHECK_THROWS_WITH(explain::parse_method("lime"),
                    "unknown heatmap method 'lime' (expected rollout, gradcam, attn-grad, saliency, occlusion, contrast, random or centre)");
  CHECK(explain::parse_method("attn-grad") == "attn-grad");
}
