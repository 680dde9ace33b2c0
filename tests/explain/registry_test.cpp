// The heatmap-method table (explain/registry.h): the one list every other list is derived from,
// and the contract every registered method keeps.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <set>

#include "core/error.h"
#include "explain/methods.h"
#include "explain/registry.h"
#include "support/quadrant_model.h"

using namespace medattn;

TEST_CASE("the method table lists each method once, with one function and known flags", "[explain][registry]") {
  CHECK(explain::method_names() ==
        std::vector<std::string>{"rollout", "gradcam", "attn-grad", "saliency", "occlusion", "contrast", "random", "centre"});
  std::set<std::string> flags;
  for (const auto& o : explain::method_options()) {
    CHECK(flags.insert(o.flag).second);  // each flag defined once
    CHECK((o.set != nullptr && o.get != nullptr));
  }
  CHECK(flags == std::set<std::string>{"--occlusion-patch", "--occlusion-stride", "--saliency-sigma", "--head-fusion", "--discard-ratio"});
  std::set<std::string> used;
  for (const auto& m : explain::methods()) {
    INFO(m.name);
    CHECK(std::string(m.description).size() > 5);
    CHECK(((m.one_view != nullptr) != (m.whole != nullptr)));
    for (const auto& f : m.options) {
      CHECK(flags.count(f) == 1);
      used.insert(f);
    }
    CHECK(&explain::find_method(m.name) == &m);
  }
  CHECK(used == flags);  // no flag without a method
  CHECK(explain::find_method(explain::kDefaultMethod).name == std::string("saliency"));
}

TEST_CASE("unknown methods and bad option values are usage errors with the table's words", "[explain][registry]") {
  CHECK_THROWS_WITH(explain::find_method("lime"),
                    "unknown heatmap method 'lime' (expected rollout, gradcam, attn-grad, saliency, occlusion, contrast, random or centre)");
  CHECK(explain::method_help().rfind("Heatmap method: rollout (attention rollout of the CLS token), gradcam (", 0) == 0);
  auto o = explain::options_for("occlusion");
  CHECK(o.method == "occlusion");
  CHECK_NOTHROW(explain::check_options(o, 32));
  o.occlusion_patch = 33;
  CHECK_THROWS_WITH(explain::check_options(o, 32), "--occlusion-patch and --occlusion-stride must be in [1, 32]");
  CHECK_NOTHROW(explain::check_options(o));  // input size not known yet: not checked
  o.method = "saliency";
  CHECK_NOTHROW(explain::check_options(o, 32));  // occlusion's flags do not bind saliency
  o.rollout.discard_ratio = 1.0;
  CHECK_THROWS_WITH(explain::check_options(o), "--discard-ratio must be in [0, 1)");
}

TEST_CASE("a method's flags read and write the options they name", "[explain][registry]") {
  explain::ExplainOptions o;
  for (const auto& f : explain::method_options()) {
    const std::string flag = f.flag;
    if (flag == "--head-fusion") {
      CHECK(f.get(o) == "mean");
      f.set(o, "max");
      CHECK(o.rollout.head_fusion == explain::HeadFusion::kMax);
      CHECK(f.choices == std::vector<std::string>{"mean", "max", "min"});
    } else if (flag == "--occlusion-patch") {
      CHECK(f.get(o) == "16");
      f.set(o, "7");
      CHECK(o.occlusion_patch == 7);
    } else if (flag == "--occlusion-stride") {
      f.set(o, "3");
      CHECK(o.occlusion_stride == 3);
    } else if (flag == "--saliency-sigma") {
      f.set(o, "2.5");
      CHECK(o.saliency_sigma == 2.5);
    } else if (flag == "--discard-ratio") {
      f.set(o, "0.25");
      CHECK(o.rollout.discard_ratio == 0.25);
      CHECK(f.get(o) == "0.25");
    }
  }
}

TEST_CASE("every registered method keeps explain()'s contract", "[explain][registry]") {
  // A new method is tested here as soon as it has its line: [B,S,S] maps in [0,1], the logits
  // of a plain forward pass, the predicted class as target, and the same map for an image alone
  // as in a batch.
  auto net = testing::quadrant_net(0, 0);
  const auto x = torch::cat({testing::image_with_blobs({{2, 2}}), testing::image_with_blobs({{10, 10}})});
  torch::Tensor plain;
  {
    torch::NoGradGuard no_grad;
    net->eval();
    plain = net->forward(x).logits;
  }
  for (const auto& name : explain::method_names()) {
    INFO(name);
    auto o = explain::options_for(name);
    o.occlusion_patch = 4;
    o.occlusion_stride = 4;
    const auto ex = explain::explain(net, x, o);
    REQUIRE(ex.maps.sizes().vec() == std::vector<int64_t>{2, 16, 16});
    CHECK(ex.maps.min().item<float>() >= 0.0f);
    CHECK(ex.maps.max().item<float>() <= 1.0f + 1e-6f);
    CHECK(torch::allclose(ex.logits, plain, 1e-5, 1e-6));
    CHECK(ex.targets == std::vector<int>{static_cast<int>(plain[0].argmax().item<int64_t>()),
                                          static_cast<int>(plain[1].argmax().item<int64_t>())});
    const auto alone = explain::explain(net, x.slice(0, 0, 1), o);
    CHECK(torch::allclose(alone.maps[0], ex.maps[0], 1e-5, 1e-6));
  }
}
