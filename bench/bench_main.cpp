// medattn_bench: prints throughput figures for the diagnose path (decode excluded):
// preprocessing, the forward pass alone, and forward + each heatmap method, per batch size
// and thread count.
// Usage: medattn_bench [MODEL_DIR] [IMAGES]   (defaults: models/phantom, 64)
#include <chrono>
#include <cstdio>
#include <string>

#include "core/threads.h"
#include "explain/methods.h"
#include "model/net.h"
#include "phantom/phantom.h"
#include "pipeline/diagnose.h"
#include "preprocess/preprocess.h"

using namespace medattn;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "models/phantom";
  const int n = argc > 2 ? std::stoi(argv[2]) : 64;
  auto model = model::load_model(dir);
  const auto& card = model.card;
  const int S = card.preprocess.image_size;

  std::vector<cv::Mat> images;
  for (int i = 0; i < n; ++i) {
    cv::Mat f;
    phantom::make_phantom(i % 3, 1000 + i).image.convertTo(f, CV_32F, 1.0 / 255.0);
    images.push_back(f);
  }
  auto t = Clock::now();
  auto x = torch::empty({n, 1, S, S});
  for (int i = 0; i < n; ++i) {
    cv::Mat in = preprocess::prepare_display(images[i], card.preprocess);
    std::memcpy(x[i].data_ptr<float>(), in.ptr<float>(), sizeof(float) * S * S);
  }
  std::printf("model %s: %dx%d input, %d images\n", dir.c_str(), S, S, n);
  std::printf("preprocess (256x256 -> %dx%d): %.0f images/s (1 thread)\n", S, S, n / since(t));
  for (int threads : {1, 2}) {
    set_threads(threads);
    for (int batch : {1, 8, 32}) {
      for (const char* method : {"none", "saliency", "rollout", "attn-grad", "gradcam"}) {
        explain::ExplainOptions opt;
        const bool plain = std::string(method) == "none";
        if (!plain) opt.method = explain::parse_method(method);
        auto run = [&](const torch::Tensor& xb) {
          if (plain) {
            torch::NoGradGuard no_grad;
            model::view_logits(model.nets, xb, {}, {});
          } else {
            explain::explain(model.nets, xb, opt);
          }
        };
        run(x.slice(0, 0, batch));  // warm-up
        t = Clock::now();
        for (int s = 0; s < n; s += batch) run(x.slice(0, s, std::min(n, s + batch)));
        std::printf("threads %d batch %2d %-22s %7.1f images/s\n", threads, batch,
                    plain ? "forward only" : (std::string("forward+") + method).c_str(), n / since(t));
      }
    }
  }
  return 0;
}
