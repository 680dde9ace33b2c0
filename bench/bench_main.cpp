// medattn_bench: prints throughput figures for the diagnose path (decode excluded):
// preprocessing, the forward pass alone, and forward + each heatmap method, per batch size
// and thread count.
// Usage: medattn_bench [MODEL_DIR] [IMAGES]   (defaults: models/phantom, 64)
//        medattn_bench --figures MODEL_DIR [THREADS]   `key value` lines for bench/bench.py:
//        the forward pass at batch 64 against a measured sgemm at the same threads.
//        medattn_bench --train-halves MODEL_DIR   one batch on two threads against two halves
//        on one thread each (train_halves below).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <omp.h>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "core/threads.h"
#include "explain/methods.h"
#include "model/net.h"
#include "phantom/phantom.h"
#include "pipeline/diagnose.h"
#include "preprocess/preprocess.h"
#include "train/augment.h"

using namespace medattn;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Multiply-adds x2 of the convolutions, projections and attention products of one image (the
// matrix work; BatchNorm, GELU, LayerNorm and softmax are left out).
static double forward_flops(const model::ModelCard& card) {
  const auto& a = card.arch;
  double flops = 0;
  int side = card.preprocess.image_size, in = card.preprocess.channels;
  for (int out : a.stem_channels) {
    side = (side + 1) / 2;
    flops += 2.0 * in * out * 9 * side * side + 2.0 * out * out * 9 * side * side;
    in = out;
  }
  const double g = a.grid_size(card.preprocess.image_size), D = a.dim, T = 1 + g * g;
  const double H = static_cast<int>(a.dim * a.mlp_ratio);
  flops += 2.0 * in * D * g * g;
  flops += a.depth * (2.0 * T * D * 3 * D + 4.0 * T * T * D + 2.0 * T * D * D + 4.0 * T * D * H);
  return flops;
}

// Best rate over `seconds`-long windows, three times.
template <typename F>
static double best_rate(F&& f, double per_call) {
  double best = 0;
  for (int r = 0; r < 3; ++r) {
    int calls = 0;
    const auto t = Clock::now();
    while (since(t) < 1.0) {
      f();
      ++calls;
    }
    best = std::max(best, calls * per_call / since(t));
  }
  return best;
}

static int figures(const std::string& dir, int threads) {
  set_threads(threads);
  auto model = model::load_model(dir);
  const auto& card = model.card;
  const int S = card.preprocess.image_size;
  torch::NoGradGuard no_grad;
  auto forward_rate = [&](int batch) {
    const auto x = torch::randn({batch, card.preprocess.channels, S, S});
    model::view_logits(model.nets, x, {}, {});  // warm-up
    return best_rate([&] { model::view_logits(model.nets, x, {}, {}); }, batch);
  };
  const double images_per_s = forward_rate(64), images_per_s_8 = forward_rate(8);
  const int n = 1024;
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::mm(a, b);
  const double sgemm = best_rate([&] { torch::mm_out(c, a, b); }, 2.0 * n * n * n) / 1e9;
  const double per_image = forward_flops(card) / 1e9;
  std::printf("forward_images_per_s %.0f\n", images_per_s);
  std::printf("forward_gflop_per_image %.4f\n", per_image);
  std::printf("forward_gflops %.1f\n", images_per_s * per_image);
  std::printf("sgemm_gflops %.1f\n", sgemm);
  std::printf("forward_gemm_efficiency %.2f\n", images_per_s * per_image / sgemm);
  std::printf("forward_images_per_s_batch8 %.0f\n", images_per_s_8);
  std::printf("forward_gemm_efficiency_batch8 %.2f\n", images_per_s_8 * per_image / sgemm);
  return 0;
}

// --trace MODEL_DIR THREADS FILE: LibTorch's per-operator trace (Chrome format) of ten forward
// passes at batch 64.
static int trace(const std::string& dir, int threads, const std::string& file) {
  set_threads(threads);
  auto model = model::load_model(dir);
  const int S = model.card.preprocess.image_size;
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({64, model.card.preprocess.channels, S, S});
  for (int i = 0; i < 3; ++i) model::view_logits(model.nets, x, {}, {});
  torch::autograd::profiler::RecordProfile guard(file);
  for (int i = 0; i < 10; ++i) model::view_logits(model.nets, x, {}, {});
  return 0;
}

// --trace-train MODEL_DIR THREADS FILE: the same for ten training steps at batch 64 (a fresh
// network of the model's architecture, forward, backward and an AdamW step).
static int trace_train(const std::string& dir, int threads, const std::string& file) {
  set_threads(threads);
  auto card = model::load_model(dir).card;
  card.clinical.clear();
  auto net = model::build_net(card);
  net->train();
  torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0.05));
  const int S = card.preprocess.image_size;
  const auto x = torch::randn({64, card.preprocess.channels, S, S});
  const auto y = torch::randint(0, static_cast<int64_t>(card.classes.size()), {64});
  auto step = [&] {
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model::forward(net, x, false, {}).logits, y).backward();
    optimizer.step();
  };
  step();
  std::printf("train_step_images_per_s %.0f\n", best_rate(step, 64));
  torch::autograd::profiler::RecordProfile guard(file);
  for (int i = 0; i < 10; ++i) step();
  return 0;
}

// --train-halves MODEL_DIR: whether splitting a training batch between the two cores (each half
// on one thread) could beat one batch on a team of two threads. Prints the augmentation's rate,
// then three times: (A) forward+backward at batch 64 on 2 threads; (B) batch 32 on 1 thread alone;
// (C) two independent networks at batch 32, one thread each, at once: the most a split batch
// could reach, before synchronising BatchNorm and summing the gradients.
static int train_halves(const std::string& dir) {
  auto card = model::load_model(dir).card;
  card.clinical.clear();
  const int S = card.preprocess.image_size;
  auto make = [&](int64_t b) {
    auto net = model::build_net(card);
    net->train();
    auto x = torch::randn({b, card.preprocess.channels, S, S});
    auto y = torch::randint(0, 2, {b});
    return std::make_tuple(net, x, y);
  };
  auto fb = [](model::AttnNet& net, const torch::Tensor& x, const torch::Tensor& y) {
    torch::nn::functional::cross_entropy(model::forward(net, x, false, {}).logits, y).backward();
  };
  {
    set_threads(1);
    auto x = torch::rand({64, 1, S, S});
    train::AugmentOptions aug;
    train::augment(x, card.preprocess, aug);
    std::printf("augment 64 at 1 thread: %.0f img/s\n", best_rate([&] { train::augment(x, card.preprocess, aug); }, 64));
  }
  for (int rep = 0; rep < 3; ++rep) {
    {
      set_threads(2);
      auto [net, x, y] = make(64);
      fb(net, x, y);
      std::printf("A full 64, 2 threads: %.0f img/s\n", best_rate([&] { fb(net, x, y); }, 64));
    }
    {
      set_threads(1);
      auto [net, x, y] = make(32);
      fb(net, x, y);
      std::printf("B half 32, 1 thread alone: %.0f img/s\n", best_rate([&] { fb(net, x, y); }, 32));
    }
    {
      std::atomic<int> count{0};
      std::atomic<bool> stop{false};
      auto body = [&] {
        omp_set_num_threads(1);
        auto [net, x, y] = make(32);
        while (!stop) { fb(net, x, y); count += 32; }
      };
      std::thread t1(body), t2(body);
      std::this_thread::sleep_for(std::chrono::milliseconds(1000));
      const int c0 = count;
      std::this_thread::sleep_for(std::chrono::milliseconds(2000));
      const int c1 = count;
      stop = true;
      t1.join(); t2.join();
      std::printf("C two halves at once, independent: %.0f img/s\n", (c1 - c0) / 2.0);
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  tune_allocator();
  if (argc > 2 && std::string(argv[1]) == "--train-halves") return train_halves(argv[2]);
  if (argc > 4 && std::string(argv[1]) == "--trace-train") return trace_train(argv[2], std::stoi(argv[3]), argv[4]);
  if (argc > 4 && std::string(argv[1]) == "--trace") return trace(argv[2], std::stoi(argv[3]), argv[4]);
  if (argc > 2 && std::string(argv[1]) == "--figures") return figures(argv[2], argc > 3 ? std::stoi(argv[3]) : 2);
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
