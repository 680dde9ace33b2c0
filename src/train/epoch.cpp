// One training epoch: batches drawn in a random order, augmented on the run's batch thread
// while the previous batch trains, and AdamW steps on the warm-up + cosine schedule.
#include <algorithm>
#include <cmath>
#include <future>
#include <limits>
#include <optional>

#include "train/train_parts.h"

namespace medattn::train {
namespace {

// One training batch: augmented inputs, labels, covariates (undefined without).
struct Batch {
  torch::Tensor x, y, c;
  std::optional<Mixed> mix;  // set when the images were blended (--mixup)
};

}  // namespace

void update_ema(model::AttnNet& ema, model::AttnNet& net, double decay) {
  torch::NoGradGuard no_grad;
  auto e = ema->parameters(), p = net->parameters();
  for (size_t i = 0; i < e.size(); ++i) e[i].mul_(decay).add_(p[i], 1.0 - decay);
  auto eb = ema->buffers(), pb = net->buffers();
  for (size_t i = 0; i < eb.size(); ++i) eb[i].copy_(pb[i]);
}

EpochLoss train_epoch(const EpochSetup& setup, model::AttnNet& net, model::AttnNet* ema,
                      torch::optim::AdamW& optimizer, int64_t& step) {
  const TrainOptions& options = *setup.options;
  const Tensors& tr = *setup.tr;
  const int64_t n = tr.size();
  net->train();
  auto perm = torch::randperm(n, torch::kInt64);
  // The next batch is drawn and augmented on the batch thread while this one trains; one batch
  // at a time, in order, so the random stream is drawn as by a single thread.
  auto make_batch = [&](int64_t s) {
    const int64_t e = std::min(n, s + options.batch_size);
    auto idx = perm.slice(0, s, e);
    auto xb = tr.x.index_select(0, idx);
    if (options.augment) xb = augment(xb, *setup.preprocess, setup.augment);
    torch::Tensor cb;
    if (tr.c.defined()) {
      // Covariate dropout: some values are hidden, so that the model learns to do without
      // any of them at diagnosis time.
      cb = tr.c.index_select(0, idx);
      if (options.clinical_dropout > 0) {
        cb = torch::where(torch::rand(cb.sizes()) < options.clinical_dropout,
                          torch::full_like(cb, std::numeric_limits<float>::quiet_NaN()), cb);
      }
    }
    std::optional<Mixed> mix;
    if (options.mixup > 0) {
      // Drawn here, on the batch thread, so that the random stream stays in one order.
      mix = mixup(xb, options.mixup);
      xb = mix->x;
    }
    return Batch{xb, tr.y.index_select(0, idx), cb, mix};
  };
  EpochLoss out;
  auto submit = [&](int64_t s) { return setup.batches->submit([&make_batch, s] { return make_batch(s); }); };
  std::future<Batch> next = submit(0);
  // The job reads this frame (perm, make_batch): an exception here waits for it before unwinding.
  struct Drain {
    std::future<Batch>& pending;
    ~Drain() {
      if (pending.valid()) pending.wait();
    }
  } drain{next};
  for (int64_t s = 0; s < n; s += options.batch_size) {
    auto [xb, yb, cb, mix] = next.get();
    if (s + options.batch_size < n) next = submit(s + options.batch_size);
    if (xb.size(0) < 2) continue;  // BatchNorm needs two samples
    const double lr = step < setup.warmup_steps
        ? options.lr * static_cast<double>(step + 1) / setup.warmup_steps
        : options.lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step - setup.warmup_steps) /
                                           std::max<int64_t>(1, setup.total_steps - setup.warmup_steps)));
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    optimizer.zero_grad();
    const auto logits = net->forward(xb, false, cb).logits;
    auto loss = mix ? mixup_loss(logits, yb, *mix, setup.class_counts, setup.balance, options.label_smoothing)
                    : training_loss(logits, yb, setup.class_counts, setup.balance, options.label_smoothing);
    loss.backward();
    optimizer.step();
    if (ema != nullptr) {
      // Warm-up of the average: early steps use a smaller decay.
      update_ema(*ema, net, std::min(options.ema, (1.0 + step) / (10.0 + step)));
    }
    out.loss_sum += loss.item<double>() * static_cast<double>(xb.size(0));
    out.seen += xb.size(0);
    ++step;
  }
  return out;
}

}  // namespace medattn::train
