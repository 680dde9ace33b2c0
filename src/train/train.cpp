#include "train/train.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "io/dataset.h"
#include "io/image.h"
#include "model/net.h"
#include "preprocess/preprocess.h"

namespace medattn::train {
namespace {

namespace F = torch::nn::functional;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Prepared inputs of a dataset: x [N,1,S,S] normalised, y [N] int64.
struct Tensors {
  torch::Tensor x, y;
  std::vector<std::string> groups;
  int64_t size() const { return x.defined() ? x.size(0) : 0; }
};

// Reads and preprocesses every sample with the card's preprocessing, in parallel over the
// torch thread count. Unreadable samples are reported and left out.
Tensors prepare_samples(const io::Dataset& data, const preprocess::PreprocessConfig& config,
                        const NoticeCallback& on_notice) {
  const int64_t n = static_cast<int64_t>(data.samples.size());
  const int S = config.image_size;
  auto x = torch::empty({n, 1, S, S}, torch::kFloat32);
  std::vector<char> ok(n, 0);
  std::vector<std::string> errors(n);
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i = next++; i < n; i = next++) {
      const auto& s = data.samples[i];
      try {
        cv::Mat grey;
        if (!s.pixels.empty()) {
          s.pixels.convertTo(grey, CV_32F, 1.0 / 255.0);
        } else {
          grey = preprocess::to_grey(io::to_display(io::read_image(s.path)));
        }
        cv::Mat in = preprocess::prepare_display(grey, config);
        std::memcpy(x[i].data_ptr<float>(), in.ptr<float>(), sizeof(float) * S * S);
        ok[i] = 1;
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
  };
  const int threads = std::max(1, at::get_num_threads());
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();

  std::vector<int64_t> keep;
  std::vector<int64_t> labels;
  Tensors out;
  for (int64_t i = 0; i < n; ++i) {
    if (!ok[i]) {
      if (on_notice) on_notice("skipped sample: " + errors[i]);
      continue;
    }
    keep.push_back(i);
    labels.push_back(data.samples[i].label);
    out.groups.push_back(data.samples[i].group);
  }
  out.x = x.index_select(0, torch::tensor(keep, torch::kInt64));
  out.y = torch::tensor(labels, torch::kInt64);
  return out;
}

// Stratified split: for each class, a seeded shuffle of its units (patient groups when the
// samples carry one, else single samples) and the first `fraction` of them to validation.
std::pair<std::vector<int64_t>, std::vector<int64_t>> split_indices(const Tensors& t, double fraction,
                                                                     uint64_t seed) {
  std::map<std::string, std::vector<int64_t>> units;
  std::map<std::string, int64_t> unit_label;
  std::vector<std::string> order;
  auto y = t.y.accessor<int64_t, 1>();
  for (int64_t i = 0; i < t.size(); ++i) {
    const std::string key = t.groups[i].empty() ? "#" + std::to_string(i) : "g:" + t.groups[i];
    if (!units.count(key)) {
      order.push_back(key);
      unit_label[key] = y[i];
    }
    units[key].push_back(i);
  }
  std::map<int64_t, std::vector<std::string>> by_label;
  for (const auto& key : order) by_label[unit_label[key]].push_back(key);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> train, val;
  for (auto& [label, keys] : by_label) {
    std::shuffle(keys.begin(), keys.end(), rng);
    size_t total = 0;
    for (const auto& k : keys) total += units[k].size();
    const size_t want = static_cast<size_t>(std::lround(fraction * static_cast<double>(total)));
    size_t taken = 0;
    for (const auto& k : keys) {
      auto& dst = taken < want ? val : train;
      if (taken < want) taken += units[k].size();
      dst.insert(dst.end(), units[k].begin(), units[k].end());
    }
  }
  std::sort(train.begin(), train.end());
  std::sort(val.begin(), val.end());
  return {train, val};
}

// Random affine (rotation +-7 deg, scale 0.9-1.1, shift +-6%) and brightness/contrast/gamma
// jitter, applied in windowed [0,1] space. x: [B,1,S,S] normalised -> same.
torch::Tensor augment(const torch::Tensor& x, const preprocess::PreprocessConfig& config) {
  const auto B = x.size(0);
  auto u = [&](double lo, double hi) { return torch::rand({B}) * (hi - lo) + lo; };
  auto img = x * config.std + config.mean;
  const auto angle = u(-7, 7) * (M_PI / 180.0);
  const auto scale = u(0.9, 1.1);
  auto cos = torch::cos(angle) / scale, sin = torch::sin(angle) / scale;
  auto theta = torch::stack({torch::stack({cos, -sin, u(-0.06, 0.06)}, 1),
                             torch::stack({sin, cos, u(-0.06, 0.06)}, 1)}, 1);  // [B,2,3]
  auto grid = F::affine_grid(theta, img.sizes().vec(), /*align_corners=*/false);
  img = F::grid_sample(img, grid, F::GridSampleFuncOptions().padding_mode(torch::kZeros).align_corners(false));
  auto contrast = u(0.8, 1.2).view({B, 1, 1, 1});
  auto brightness = u(-0.08, 0.08).view({B, 1, 1, 1});
  auto gamma = torch::exp(u(-0.25, 0.25)).view({B, 1, 1, 1});
  img = (img.clamp(0, 1).pow(gamma) - 0.5) * contrast + 0.5 + brightness;
  return (img.clamp(0, 1) - config.mean) / config.std;
}

// Logits of every row of x, in eval mode: [N][K].
std::vector<std::vector<double>> logits_of(model::AttnNet& net, const torch::Tensor& x, int batch_size) {
  torch::NoGradGuard no_grad;
  net->eval();
  std::vector<std::vector<double>> out;
  for (int64_t s = 0; s < x.size(0); s += batch_size) {
    const int64_t e = std::min<int64_t>(x.size(0), s + batch_size);
    auto logits = net->forward(x.slice(0, s, e)).logits.to(torch::kFloat64).contiguous();
    for (int64_t i = 0; i < e - s; ++i) {
      auto row = logits[i];
      out.emplace_back(row.data_ptr<double>(), row.data_ptr<double>() + row.size(0));
    }
  }
  return out;
}

std::vector<int> labels_of(const torch::Tensor& y) {
  std::vector<int> labels;
  auto ya = y.accessor<int64_t, 1>();
  for (int64_t i = 0; i < y.size(0); ++i) labels.push_back(static_cast<int>(ya[i]));
  return labels;
}

std::string describe_split(double fraction, uint64_t seed) {
  std::ostringstream s;
  s << "stratified " << fraction << " of the training data, seed " << seed;
  return s.str();
}

}  // namespace

TrainResult run_train(const TrainOptions& options, const EpochCallback& on_epoch,
                      const NoticeCallback& on_notice) {
  const auto t0 = Clock::now();
  if (options.out.empty()) throw Error(ErrorKind::kInvalidArgument, "--out MODEL is required");
  if (options.epochs < 1 || options.batch_size < 1) throw Error(ErrorKind::kInvalidArgument, "--epochs and --batch-size must be at least 1");
  if (options.val_fraction <= 0 || options.val_fraction >= 1) throw Error(ErrorKind::kInvalidArgument, "--val-fraction must be in (0, 1)");
  torch::manual_seed(options.seed);

  io::DatasetOptions dopt;
  dopt.classes = options.classes;
  dopt.split = options.split;
  const io::Dataset train_set = io::load_dataset(options.data, dopt);
  for (const auto& n : train_set.notices) if (on_notice) on_notice(n);
  model::ModelCard card = options.card;
  card.classes = train_set.classes;
  if (card.classes.size() < 2) throw file_error(ErrorKind::kInvalidArgument, "cannot train on", options.data, "needs at least 2 classes");
  // Validate the architecture against the image size before the expensive preparation.
  card = model::card_from_json(model::card_to_json(card), "train options");

  Tensors all = prepare_samples(train_set, card.preprocess, on_notice);
  Tensors tr, va;
  if (!options.val_data.empty() || !options.val_split.empty()) {
    io::DatasetOptions vopt;
    vopt.classes = card.classes;
    vopt.split = options.val_split;
    const io::Dataset val_set = io::load_dataset(options.val_data.empty() ? options.data : options.val_data, vopt);
    tr = all;
    va = prepare_samples(val_set, card.preprocess, on_notice);
  } else {
    auto [ti, vi] = split_indices(all, options.val_fraction, options.seed);
    auto tt = torch::tensor(ti, torch::kInt64), vt = torch::tensor(vi, torch::kInt64);
    tr.x = all.x.index_select(0, tt);
    tr.y = all.y.index_select(0, tt);
    va.x = all.x.index_select(0, vt);
    va.y = all.y.index_select(0, vt);
  }
  if (tr.size() == 0 || va.size() == 0) throw file_error(ErrorKind::kInvalidArgument, "cannot train on", options.data, "the training or validation split is empty");

  const int K = static_cast<int>(card.classes.size());
  // Inverse-frequency class weights, normalised to mean 1.
  auto counts = torch::bincount(tr.y, {}, K).to(torch::kFloat32).clamp_min(1);
  auto class_weights = (counts.sum() / counts) / K;

  model::AttnNet net = model::build_net(card);
  torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(options.lr).weight_decay(options.weight_decay));
  const int64_t n = tr.size();
  const int64_t steps_per_epoch = (n + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = steps_per_epoch * options.epochs;
  const int64_t warmup_steps = steps_per_epoch * std::min(options.warmup_epochs, options.epochs);

  TrainResult result;
  result.train_count = static_cast<int>(tr.size());
  result.val_count = static_cast<int>(va.size());
  std::vector<torch::Tensor> best_state;
  double best_auc = -1, best_acc = -1;
  int64_t step = 0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto te = Clock::now();
    net->train();
    auto perm = torch::randperm(n, torch::kInt64);
    double loss_sum = 0;
    for (int64_t s = 0; s < n; s += options.batch_size) {
      const int64_t e = std::min(n, s + options.batch_size);
      if (e - s < 2) continue;  // BatchNorm needs two samples
      auto idx = perm.slice(0, s, e);
      auto xb = tr.x.index_select(0, idx);
      if (options.augment) xb = augment(xb, card.preprocess);
      auto yb = tr.y.index_select(0, idx);
      const double lr = step < warmup_steps
          ? options.lr * static_cast<double>(step + 1) / warmup_steps
          : options.lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step - warmup_steps) /
                                             std::max<int64_t>(1, total_steps - warmup_steps)));
      for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      optimizer.zero_grad();
      auto loss = F::cross_entropy(net->forward(xb).logits, yb, F::CrossEntropyFuncOptions().weight(class_weights));
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(e - s);
      ++step;
    }
    const auto metrics = eval::compute_metrics(eval::apply_temperature(logits_of(net, va.x, 128), labels_of(va.y), 1.0));
    EpochReport report;
    report.epoch = epoch;
    report.epochs = options.epochs;
    report.train_loss = loss_sum / static_cast<double>(n);
    report.val_accuracy = metrics.accuracy;
    report.val_auc = metrics.auc;
    report.seconds = seconds_since(te);
    report.images_per_second = static_cast<double>(n) / std::max(1e-9, report.seconds);
    report.eta_seconds = report.seconds * (options.epochs - epoch);
    const double auc = std::isnan(metrics.auc) ? 0.0 : metrics.auc;
    if (auc > best_auc || (auc == best_auc && metrics.accuracy > best_acc)) {
      best_auc = auc;
      best_acc = metrics.accuracy;
      result.best_epoch = epoch;
      result.validation = metrics;
      best_state.clear();
      for (const auto& p : net->parameters()) best_state.push_back(p.detach().clone());
      for (const auto& b : net->buffers()) best_state.push_back(b.detach().clone());
      report.best = true;
    }
    if (on_epoch) on_epoch(report);
  }
  {
    torch::NoGradGuard no_grad;
    size_t i = 0;
    for (auto& p : net->parameters()) p.copy_(best_state[i++]);
    for (auto& b : net->buffers()) b.copy_(best_state[i++]);
  }
  net->eval();
  // Calibration: temperature scaling fitted on the validation logits.
  const auto val_logits = logits_of(net, va.x, 128);
  const auto val_labels = labels_of(va.y);
  const auto uncalibrated = eval::apply_temperature(val_logits, val_labels, 1.0);
  card.temperature = options.calibrate ? eval::fit_temperature(val_logits, val_labels) : 1.0;
  const auto calibrated = eval::apply_temperature(val_logits, val_labels, card.temperature);
  if (!options.operating_point.empty()) {
    card.threshold = eval::choose_threshold(calibrated, options.operating_point);
    card.operating_point = options.operating_point;
  }
  result.validation = eval::compute_metrics(calibrated, card.threshold);
  result.ece_before = eval::expected_calibration_error(uncalibrated);
  result.seconds = seconds_since(t0);
  card.training["data"] = {{"train", options.data}, {"split", options.split},
                           {"validation", options.val_data.empty() && options.val_split.empty()
                                              ? describe_split(options.val_fraction, options.seed)
                                              : (options.val_data.empty() ? options.data : options.val_data) + (options.val_split.empty() ? "" : " split " + options.val_split)},
                           {"train_images", result.train_count}, {"val_images", result.val_count}};
  card.training["command"] = options.command;
  card.training["epochs"] = options.epochs;
  card.training["best_epoch"] = result.best_epoch;
  card.training["batch_size"] = options.batch_size;
  card.training["optimizer"] = {{"name", "AdamW"}, {"lr", options.lr}, {"weight_decay", options.weight_decay},
                                {"schedule", "linear warm-up " + std::to_string(options.warmup_epochs) + " epoch(s), cosine decay"}};
  card.training["augment"] = options.augment;
  card.training["seed"] = options.seed;
  card.training["seconds"] = std::round(result.seconds);
  card.training["threads"] = at::get_num_threads();
  card.validation = eval::metrics_to_json(result.validation, card.classes);
  card.validation["ece_before_calibration"] = std::round(result.ece_before * 1e6) / 1e6;
  model::save_model(options.out, card, net);
  result.card = card;
  return result;
}

EvaluateResult run_evaluate(const EvaluateOptions& options, const NoticeCallback& on_notice) {
  auto model = model::load_model(options.model_dir);
  io::DatasetOptions dopt;
  dopt.classes = model.card.classes;
  dopt.split = options.split;
  const io::Dataset data = io::load_dataset(options.data, dopt);
  for (const auto& n : data.notices) if (on_notice) on_notice(n);
  Tensors t = prepare_samples(data, model.card.preprocess, on_notice);
  EvaluateResult result;
  result.classes = model.card.classes;
  result.skipped = static_cast<int>(data.samples.size() - t.size());
  if (t.size() == 0) throw file_error(ErrorKind::kInvalidArgument, "cannot evaluate on", options.data, "no readable samples");
  result.predictions = eval::apply_temperature(logits_of(model.net, t.x, options.batch_size), labels_of(t.y),
                                               model.card.temperature);
  result.threshold = model.card.threshold;
  result.metrics = eval::compute_metrics(result.predictions, result.threshold);
  return result;
}

}  // namespace medattn::train
