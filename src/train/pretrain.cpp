#include "train/pretrain.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/sha256.h"
#include "core/text.h"
#include "io/dataset.h"
#include "io/inputs.h"
#include "model/net.h"
#include "train/samples.h"

namespace medattn::train {
namespace {

namespace F = torch::nn::functional;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Two views must differ in what the encoder should ignore: framing (a random resized crop,
// area 35-100%, aspect 3/4-4/3), a horizontal flip, exposure (contrast 0.6-1.4, brightness
// +-0.15, gamma 0.7-1.4), blur (p=0.5) and noise (sd 0-0.05). In windowed [0,1] space.
// x: [B,C,S,S] normalised -> same.
torch::Tensor ssl_view(const torch::Tensor& x, const preprocess::PreprocessConfig& config) {
  torch::NoGradGuard no_grad;
  const auto B = x.size(0), C = x.size(1), S = x.size(2);
  auto u = [&](double lo, double hi) { return torch::rand({B}) * (hi - lo) + lo; };
  auto img = x * config.std + config.mean;
  const auto area = u(0.35, 1.0);
  const auto log_ratio = u(std::log(3.0 / 4.0), std::log(4.0 / 3.0));
  const auto sx = torch::sqrt(area * torch::exp(log_ratio)).clamp_max(1.0);
  const auto sy = torch::sqrt(area / torch::exp(log_ratio)).clamp_max(1.0);
  const auto tx = (torch::rand({B}) * 2 - 1) * (1 - sx);
  const auto ty = (torch::rand({B}) * 2 - 1) * (1 - sy);
  const auto flip = torch::where(torch::rand({B}) < 0.5, -torch::ones({B}), torch::ones({B}));
  const auto zero = torch::zeros({B});
  auto theta = torch::stack({torch::stack({sx * flip, zero, tx}, 1), torch::stack({zero, sy, ty}, 1)}, 1);  // [B,2,3]
  auto grid = F::affine_grid(theta, img.sizes().vec(), /*align_corners=*/false);
  img = F::grid_sample(img, grid, F::GridSampleFuncOptions().padding_mode(torch::kBorder).align_corners(false));
  auto contrast = u(0.6, 1.4).view({B, 1, 1, 1});
  auto brightness = u(-0.15, 0.15).view({B, 1, 1, 1});
  auto gamma = torch::exp(u(std::log(0.7), std::log(1.4))).view({B, 1, 1, 1});
  img = (img.clamp(0, 1).pow(gamma) - 0.5) * contrast + 0.5 + brightness;
  auto kernel = torch::tensor({1.f, 4.f, 6.f, 4.f, 1.f});
  kernel = (kernel.view({5, 1}) * kernel.view({1, 5})).div(256).view({1, 1, 5, 5});
  auto blurred = F::conv2d(F::pad(img.reshape({B * C, 1, S, S}), F::PadFuncOptions({2, 2, 2, 2}).mode(torch::kReplicate)), kernel)
                     .reshape({B, C, S, S});
  img = torch::where(torch::rand({B}).view({B, 1, 1, 1}) < 0.5, blurred, img);
  img = img + torch::randn_like(img) * u(0.0, 0.05).view({B, 1, 1, 1});
  return (img.clamp(0, 1) - config.mean) / config.std;
}

// DINO's projection head: MLP to a bottleneck, L2-normalised, then a linear layer onto the
// prototypes.
struct DinoHeadImpl : torch::nn::Module {
  DinoHeadImpl(int dim, int prototypes) {
    fc1 = register_module("fc1", torch::nn::Linear(dim, 256));
    fc2 = register_module("fc2", torch::nn::Linear(256, 128));
    last = register_module("last", torch::nn::Linear(torch::nn::LinearOptions(128, prototypes).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = fc2(F::gelu(fc1(x)));
    return last(F::normalize(h, F::NormalizeFuncOptions().dim(-1)));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, last{nullptr};
};
TORCH_MODULE(DinoHead);

// Everything an objective trains besides the encoder, and what it keeps between steps.
struct Objective {
  bool dino = true;
  model::AttnNet teacher{nullptr};
  DinoHead head{nullptr}, teacher_head{nullptr};
  torch::Tensor center;             // dino: [1,K]
  torch::nn::Linear decoder{nullptr};  // mim: token -> patch pixels
  int patch = 0;                    // mim: model-input pixels per token side
};

void ema_update(torch::nn::Module& teacher, torch::nn::Module& student, double m) {
  torch::NoGradGuard no_grad;
  auto t = teacher.parameters(), s = student.parameters();
  for (size_t i = 0; i < t.size(); ++i) t[i].mul_(m).add_(s[i].detach(), 1 - m);
  auto tb = teacher.buffers(), sb = student.buffers();
  for (size_t i = 0; i < tb.size(); ++i) tb[i].copy_(sb[i]);
}

// One step's loss. x: [B,C,S,S] normalised images of the batch.
torch::Tensor step_loss(model::AttnNet& net, Objective& obj, const torch::Tensor& x, const PretrainOptions& o) {
  const auto B = x.size(0);
  if (obj.dino) {
    const auto views = torch::cat({ssl_view(x, o.card.preprocess), ssl_view(x, o.card.preprocess)}, 0);  // [2B,...]
    auto student = obj.head->forward(net->forward(views).tokens.select(1, 0));  // [2B,K]
    torch::Tensor teacher_probs;
    {
      torch::NoGradGuard no_grad;
      auto t = obj.teacher_head->forward(obj.teacher->forward(views).tokens.select(1, 0));
      teacher_probs = torch::softmax((t - obj.center) / 0.04, 1);
      obj.center = obj.center * 0.9 + t.mean(0, true) * 0.1;
    }
    auto log_student = torch::log_softmax(student / 0.1, 1);
    // Each view's student against the other view's teacher.
    auto swapped = torch::cat({teacher_probs.slice(0, B, 2 * B), teacher_probs.slice(0, 0, B)}, 0);
    return -(swapped * log_student).sum(1).mean();
  }
  // Masked image modelling: mask_ratio of the token grid's patches set to the mean (0 after
  // normalisation); each masked token predicts its patch's pixels, normalised per patch.
  const auto view = ssl_view(x, o.card.preprocess);
  const int64_t g = net->grid_, P = obj.patch, C = x.size(1);
  auto mask = (torch::rand({B, 1, g, g}) < o.mask_ratio).to(torch::kFloat32);
  auto pixel_mask = mask.repeat_interleave(P, 2).repeat_interleave(P, 3);
  auto tokens = net->forward(view * (1 - pixel_mask)).tokens.slice(1, 1, 1 + g * g);  // [B,g*g,D]
  auto pred = obj.decoder->forward(tokens);                                           // [B,g*g,C*P*P]
  auto target = view.reshape({B, C, g, P, g, P}).permute({0, 2, 4, 1, 3, 5}).reshape({B, g * g, C * P * P});
  const auto mean = target.mean(-1, true), var = target.var(-1, /*unbiased=*/false, true);
  target = (target - mean) / torch::sqrt(var + 1e-6);
  auto per_token = (pred - target).abs().mean(-1);  // [B,g*g]
  auto m = mask.reshape({B, g * g});
  return (per_token * m).sum() / m.sum().clamp_min(1.0);
}

std::vector<torch::nn::Module*> trained_modules(model::AttnNet& net, Objective& obj) {
  std::vector<torch::nn::Module*> out = {net.get()};
  if (obj.dino) {
    out.push_back(obj.head.get());
  } else {
    out.push_back(obj.decoder.get());
  }
  return out;
}

struct State {
  int epoch = 0;
  std::vector<double> losses;
};

fs::path checkpoint_dir(const std::string& out) { return fs::path(out) / "checkpoint"; }

void save_checkpoint(const PretrainOptions& o, const State& st, model::AttnNet& net, Objective& obj, torch::optim::AdamW& opt) {
  write_checkpoint_dir(checkpoint_dir(o.out).string(), [&](const std::string& folder) {
    const fs::path tmp = folder;
    model::save_weights(*net, (tmp / "net.bin").string());
    if (obj.dino) {
      model::save_weights(*obj.teacher, (tmp / "teacher.bin").string());
      model::save_weights(*obj.head, (tmp / "head.bin").string());
      model::save_weights(*obj.teacher_head, (tmp / "teacher_head.bin").string());
      torch::save(obj.center, (tmp / "center.pt").string());
    } else {
      model::save_weights(*obj.decoder, (tmp / "decoder.bin").string());
    }
    torch::save(opt, (tmp / "optimizer.pt").string());
    save_rng_state((tmp / "rng.pt").string());
    write_file_atomic((tmp / "state.json").string(),
                      nlohmann::json{{"epoch", st.epoch}, {"losses", st.losses}, {"objective", o.objective}}.dump());
  });
}

State load_checkpoint(const PretrainOptions& o, model::AttnNet& net, Objective& obj, torch::optim::AdamW& opt) {
  const fs::path dir = checkpoint_dir(o.out);
  std::error_code ec;
  if (!fs::exists(dir / "state.json", ec)) {
    throw file_error(ErrorKind::kInvalidArgument, "cannot resume", o.out, "no checkpoint (pretrain without --resume first)");
  }
  const auto j = nlohmann::json::parse(read_file((dir / "state.json").string()));
  if (j.at("objective").get<std::string>() != o.objective) {
    throw file_error(ErrorKind::kInvalidArgument, "cannot resume", o.out,
                     "the checkpoint is of objective '" + j.at("objective").get<std::string>() + "', not '" + o.objective + "'");
  }
  State st;
  st.epoch = j.at("epoch").get<int>();
  st.losses = j.at("losses").get<std::vector<double>>();
  model::load_weights(*net, (dir / "net.bin").string());
  if (obj.dino) {
    model::load_weights(*obj.teacher, (dir / "teacher.bin").string());
    model::load_weights(*obj.head, (dir / "head.bin").string());
    model::load_weights(*obj.teacher_head, (dir / "teacher_head.bin").string());
    torch::load(obj.center, (dir / "center.pt").string());
  } else {
    model::load_weights(*obj.decoder, (dir / "decoder.bin").string());
  }
  torch::load(opt, (dir / "optimizer.pt").string());
  load_rng_state((dir / "rng.pt").string());
  return st;
}

}  // namespace

std::string describe_pretrain_augment() {
  return "random resized crop (area 0.35-1, aspect 3/4-4/3), horizontal flips, contrast 0.6-1.4, brightness +-0.15, "
         "gamma 0.7-1.4, blur (p=0.5), Gaussian noise sd 0-0.05";
}

PretrainResult run_pretrain(const PretrainOptions& o, const std::function<void(const PretrainEpoch&)>& on_epoch,
                            const NoticeCallback& on_notice) {
  const auto t0 = Clock::now();
  if (o.out.empty()) throw Error(ErrorKind::kInvalidArgument, "--out DIR is required");
  if (o.data.empty()) throw Error(ErrorKind::kInvalidArgument, "pretrain needs at least one DATA");
  if (o.objective != "dino" && o.objective != "mim") {
    throw Error(ErrorKind::kInvalidArgument, "--objective must be dino or mim (got '" + o.objective + "')");
  }
  if (o.epochs < 1 || o.batch_size < 2) throw Error(ErrorKind::kInvalidArgument, "--epochs must be at least 1 and --batch-size at least 2");
  if (!(o.mask_ratio > 0 && o.mask_ratio < 1)) throw Error(ErrorKind::kInvalidArgument, "--mask-ratio must be in (0, 1)");
  model::ModelCard card = o.card;
  card.classes = {"unlabelled_a", "unlabelled_b"};  // the head is never trained nor loaded
  card = model::card_from_json(model::card_to_json(card), "pretrain options");  // validates the architecture
  torch::manual_seed(o.seed);

  // Every image, prepared once at the model's size; the views are drawn from these.
  std::vector<torch::Tensor> parts;
  nlohmann::json sources = nlohmann::json::array();
  int64_t images = 0;
  for (const auto& spec : o.data) {
    const io::Dataset data = unlabelled_dataset(spec, o.split, o.limit, "cannot pretrain on", spec, on_notice);
    Tensors t = prepare_samples(data, card.preprocess, on_notice);
    if (t.size() == 0) throw file_error(ErrorKind::kInvalidArgument, "cannot pretrain on", spec, "no readable images");
    sources.push_back({{"data", spec}, {"images", t.size()}});
    images += t.size();
    parts.push_back(t.x);
  }
  const auto x_all = torch::cat(parts, 0);
  parts.clear();
  const int64_t n = x_all.size(0);

  model::AttnNet net = model::build_net(card);
  Objective obj;
  obj.dino = o.objective == "dino";
  if (obj.dino) {
    obj.teacher = model::build_net(card);
    model::copy_weights(*obj.teacher, *net);
    obj.head = DinoHead(card.arch.dim, o.prototypes);
    obj.teacher_head = DinoHead(card.arch.dim, o.prototypes);
    model::copy_weights(*obj.teacher_head, *obj.head);
    for (auto& p : obj.teacher->parameters()) p.set_requires_grad(false);
    for (auto& p : obj.teacher_head->parameters()) p.set_requires_grad(false);
    obj.center = torch::zeros({1, o.prototypes});
  } else {
    obj.patch = card.preprocess.image_size / net->grid_;
    if (obj.patch * net->grid_ != card.preprocess.image_size) {
      throw Error(ErrorKind::kInvalidArgument, "--objective mim needs an image size that the token grid divides (" +
                                                   std::to_string(card.preprocess.image_size) + " px, grid " + std::to_string(net->grid_) + ")");
    }
    obj.decoder = torch::nn::Linear(card.arch.dim, card.preprocess.channels * obj.patch * obj.patch);
  }
  std::vector<torch::Tensor> params;
  for (auto* m : trained_modules(net, obj)) {
    for (auto& p : m->parameters()) params.push_back(p);
  }
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  State st;
  if (o.resume) {
    st = load_checkpoint(o, net, obj, optimizer);
    if (on_notice) on_notice("resuming after epoch " + std::to_string(st.epoch));
  }

  const int64_t steps_per_epoch = n / o.batch_size + ((n % o.batch_size) >= 2 ? 1 : 0);
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup_steps = steps_per_epoch * std::min(o.warmup_epochs, o.epochs);
  for (int epoch = st.epoch + 1; epoch <= o.epochs; ++epoch) {
    const auto te = Clock::now();
    net->train();
    if (obj.dino) obj.teacher->train();
    auto perm = torch::randperm(n, torch::kInt64);
    double loss_sum = 0;
    int64_t seen = 0;
    int64_t step = static_cast<int64_t>(epoch - 1) * steps_per_epoch;
    for (int64_t s = 0; s + 2 <= n; s += o.batch_size, ++step) {
      const int64_t e = std::min(n, s + o.batch_size);
      const auto xb = x_all.index_select(0, perm.slice(0, s, e));
      const double progress = static_cast<double>(step) / std::max<int64_t>(1, total_steps);
      const double lr = step < warmup_steps ? o.lr * (step + 1) / warmup_steps
                                            : o.lr * 0.5 * (1 + std::cos(M_PI * (step - warmup_steps) / std::max<int64_t>(1, total_steps - warmup_steps)));
      for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      const double teacher_m = 1 - (1 - o.teacher_momentum) * 0.5 * (1 + std::cos(M_PI * progress));
      auto loss = step_loss(net, obj, xb, o);
      optimizer.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 3.0);
      optimizer.step();
      if (obj.dino) {
        ema_update(*obj.teacher, *net, teacher_m);
        ema_update(*obj.teacher_head, *obj.head, teacher_m);
      }
      loss_sum += loss.item<double>() * (e - s);
      seen += e - s;
      if (e - s < o.batch_size) break;
    }
    st.epoch = epoch;
    st.losses.push_back(loss_sum / std::max<int64_t>(1, seen));
    save_checkpoint(o, st, net, obj, optimizer);
    PretrainEpoch r;
    r.epoch = epoch;
    r.epochs = o.epochs;
    r.loss = st.losses.back();
    r.seconds = std::chrono::duration<double>(Clock::now() - te).count();
    r.images_per_second = seen / std::max(1e-9, r.seconds);
    r.eta_seconds = r.seconds * (o.epochs - epoch);
    if (on_epoch) on_epoch(r);
  }

  // The encoder that is kept: DINO's teacher (the momentum average, as the paper keeps), or
  // the MIM network itself.
  model::AttnNet& kept = obj.dino ? obj.teacher : net;
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) throw file_error(ErrorKind::kIOError, "cannot create", o.out, ec.message());
  const auto encoder = (fs::path(o.out) / kEncoderFile).string();
  model::save_weights(*kept, encoder);
  PretrainResult result;
  result.images = static_cast<int>(n);
  result.losses = st.losses;
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto cj = model::card_to_json(card);
  nlohmann::json pj = {{"format", "medattn pretrained encoder"},
                       {"version", 1},
                       {"name", card.name},
                       {"objective", o.objective},
                       {"objective_description", obj.dino ? "self-distillation of two views with a momentum teacher (DINO)"
                                                          : "masked image modelling: masked patches' pixels from the tokens (SimMIM)"},
                       {"preprocess", cj.at("preprocess")},
                       {"architecture", cj.at("architecture")},
                       {"data", sources},
                       {"split", o.split},
                       {"images", n},
                       {"epochs", o.epochs},
                       {"batch_size", o.batch_size},
                       {"lr", o.lr},
                       {"weight_decay", o.weight_decay},
                       {"seed", o.seed},
                       {"losses", st.losses},
                       {"augment", describe_pretrain_augment()},
                       {"encoder_sha256", sha256_file(encoder)},
                       {"command", o.command},
                       {"threads", at::get_num_threads()},
                       {"seconds", std::round(result.seconds)}};
  if (obj.dino) {
    pj["prototypes"] = o.prototypes;
    pj["teacher_momentum"] = o.teacher_momentum;
  } else {
    pj["mask_ratio"] = o.mask_ratio;
  }
  write_file_atomic((fs::path(o.out) / kPretrainCard).string(), pj.dump(2) + "\n");
  fs::remove_all(checkpoint_dir(o.out), ec);
  return result;
}

}  // namespace medattn::train
