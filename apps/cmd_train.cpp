// `medattn train` and `medattn pretrain`: bind the flags to the training options and print
// each epoch's figures.
#include "cli.h"

#include <spdlog/spdlog.h>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "core/threads.h"
#include "model/card.h"
#include "train/pretrain.h"
#include "train/train.h"

namespace fs = std::filesystem;

namespace medattn::cli {
namespace {

// Fault injection for the tests: MEDATTN_TEST_KILL_AFTER_EPOCH=N kills the process with
// SIGKILL right after epoch N's checkpoint is on disk, a crash at a known point (0: never).
int test_kill_epoch() {
  const char* kill_after = std::getenv("MEDATTN_TEST_KILL_AFTER_EPOCH");
  return kill_after != nullptr ? std::atoi(kill_after) : 0;
}

struct TrainArgs {
  train::TrainOptions options;
  std::string classes;
  std::string modalities;
  std::string stem = "16,32,64";
  int image_size = 96;
  int threads = 0;
  std::string name;
};

int run_train_command(TrainArgs& args, const std::string& command) {
  auto& opt = args.options;
  const int threads = set_threads(args.threads);
  opt.classes = split_list(args.classes);
  opt.card.intended_use.modalities = model::parse_upper_list(args.modalities);
  opt.card.preprocess.image_size = args.image_size;
  opt.card.arch.stem_channels = parse_stem(args.stem);
  opt.card.name = args.name.empty() ? fs::path(opt.out).filename().string() : args.name;
  opt.command = command;
  spdlog::info("training on {} with {} thread(s)", opt.data, threads);
  const int kill_epoch = test_kill_epoch();
  const auto result = train::run_train(
      opt,
      [kill_epoch](const train::EpochReport& r) {
        if (kill_epoch > 0 && r.member == 1 && r.epoch == kill_epoch) ::raise(SIGKILL);
        const std::string member = r.members > 1 ? fmt::format("member {}/{}  ", r.member, r.members) : "";
        spdlog::info("{}epoch {:>3}/{}  loss {:.4f}  val_auc {:.4f}  val_acc {:.4f}  {:.0f} img/s  {}  eta {}{}", member, r.epoch,
                     r.epochs, r.train_loss, r.val_auc, r.val_accuracy, r.images_per_second,
                     format_seconds(r.seconds), format_seconds(r.eta_seconds), r.best ? "  *best" : "");
      },
      [](const std::string& notice) { spdlog::warn("{}", notice); });
  spdlog::info("calibration: temperature {:.3f}, validation ECE {:.4f} -> {:.4f}", result.card.temperature,
               result.ece_before, result.validation.ece);
  if (result.card.threshold >= 0) {
    spdlog::info("operating point {}: {} when its probability >= {:.4f}", result.card.operating_point,
                 result.card.classes[1], result.card.threshold);
  }
  for (const auto& w : result.warnings) spdlog::warn("{}", w);
  spdlog::info("wrote {} ({}: val_auc {:.4f}, val_acc {:.4f}; {} train / {} val images; {})", opt.out,
               opt.members > 1 ? fmt::format("ensemble of {} networks", opt.members) : fmt::format("kept epoch {}", result.best_epoch), result.validation.auc, result.validation.accuracy, result.train_count,
               result.val_count, format_seconds(result.seconds));
  return kExitOk;
}

struct PretrainArgs {
  train::PretrainOptions options;
  std::string stem = "16,32,64";
  int image_size = 96;
  int threads = 0;
};

int run_pretrain_command(PretrainArgs& args, const std::string& command) {
  auto& opt = args.options;
  const int threads = set_threads(args.threads);
  opt.card.preprocess.image_size = args.image_size;
  opt.card.arch.stem_channels = parse_stem(args.stem);
  opt.card.name = fs::path(opt.out).filename().string();
  opt.command = command;
  spdlog::info("pretraining ({}) with {} thread(s)", opt.objective, threads);
  const int kill_epoch = test_kill_epoch();
  const auto r = train::run_pretrain(
      opt,
      [kill_epoch](const train::PretrainEpoch& e) {
        if (kill_epoch > 0 && e.epoch == kill_epoch) ::raise(SIGKILL);
        spdlog::info("epoch {:>3}/{}  loss {:.4f}  {:.0f} img/s  {}  eta {}", e.epoch, e.epochs, e.loss, e.images_per_second,
                     format_seconds(e.seconds), format_seconds(e.eta_seconds));
      },
      [](const std::string& n) { spdlog::warn("{}", n); });
  spdlog::info("wrote {}/{} and {} ({} images; loss {:.4f} -> {:.4f}; {})", opt.out, train::kEncoderFile, train::kPretrainCard,
               r.images, r.losses.front(), r.losses.back(), format_seconds(r.seconds));
  return kExitOk;
}

}  // namespace

Command add_train(CLI::App& app) {
  auto t = std::make_shared<TrainArgs>();
  auto* trainc = app.add_subcommand("train", "Train a model on labelled data (class folders, CSV or MedMNIST npz)");
  trainc->add_option("data", t->options.data, "Training DATA: class folders, a CSV (path,label) or a .npz")->required();
  trainc->add_option("--out", t->options.out, "Model directory to write")->required();
  trainc->add_option("--val", t->options.val_data, "Separate validation DATA");
  trainc->add_option("--val-fraction", t->options.val_fraction, "Stratified share of DATA held out for validation")
      ->check(in_range(0.01, 0.9))->capture_default_str();
  trainc->add_option("--split", t->options.split, "npz: arrays NAME_images/NAME_labels (default train); CSV: rows with split == NAME");
  trainc->add_option("--val-split", t->options.val_split, "Validation split of DATA (or of --val), e.g. val for MedMNIST");
  trainc->add_option("--classes", t->classes, "Class names in label order, comma-separated (npz labels 0..K-1)");
  trainc->add_option("--epochs", t->options.epochs, "Epochs")->check(in_range(1, 100000))->capture_default_str();
  trainc->add_option("--batch-size", t->options.batch_size, "Batch size")->check(in_range(2, 4096))->capture_default_str();
  trainc->add_option("--lr", t->options.lr, "Peak learning rate (AdamW)")->capture_default_str();
  trainc->add_option("--weight-decay", t->options.weight_decay, "AdamW weight decay")->capture_default_str();
  trainc->add_option("--image-size", t->image_size, "Input size S (S x S); a multiple of 2^stages")->capture_default_str();
  trainc->add_option("--stem", t->stem, "CNN stem channels per stage (each stage halves the resolution)")->capture_default_str();
  trainc->add_option("--dim", t->options.card.arch.dim, "Token width")->capture_default_str();
  trainc->add_option("--depth", t->options.card.arch.depth, "Transformer blocks")->capture_default_str();
  trainc->add_option("--heads", t->options.card.arch.heads, "Attention heads")->capture_default_str();
  // A flag (--clahe, or --clahe=true/false as before) rather than an option that shows BOOLEAN in --help.
  trainc->add_flag("--clahe", t->options.card.preprocess.clahe, "Apply CLAHE after windowing (stored in the card)");
  trainc->add_option("--seed", t->options.seed, "Random seed (split, initialisation, shuffling)")->capture_default_str();
  trainc->add_flag_callback("--no-augment", [t] { t->options.augment = false; }, "Disable augmentation");
  trainc->add_flag("--hflip", t->options.hflip, "Also flip images horizontally when augmenting (off: anatomy has a side)");
  trainc->add_flag("--vflip", t->options.vflip, "Also flip images vertically when augmenting (e.g. dermoscopy)");
  trainc->add_option("--intensity", t->options.card.preprocess.intensity,
                     "Intensity standardisation stored in the card: none, or percentile (each image stretched so that its "
                     "1st percentile is black and its 99th white: takes exposure, window and gain differences out)")
      ->check(CLI::IsMember({"none", "percentile"}))->capture_default_str();
  trainc->add_option("--colour-constancy", t->options.card.preprocess.colour_constancy,
                     "Colour constancy stored in the card (colour models): none, or shades-of-grey (each image's channels "
                     "scaled so that its estimated illuminant is grey: takes camera and light colour out)")
      ->check(CLI::IsMember({"none", "shades-of-grey"}))->capture_default_str();
  trainc->add_option("--channels", t->options.card.preprocess.channels, "Input channels: 1 (grey) or 3 (colour, BGR)")
      ->check(CLI::IsMember({1, 3}))->capture_default_str();
  trainc->add_option("--clinical", t->options.clinical,
                     "Clinical covariates of a CSV dataset, one token each: NAME:num or NAME:cat, comma-separated, "
                     "e.g. age:num,sex:cat,localization:cat, or a schema file with one NAME:TYPE per line");
  trainc->add_option("--fusion", t->options.fusion,
                     "How covariates meet the image: joint (their tokens join the image's in every block) or cross "
                     "(gated cross-attention from CLS and the image tokens to them after every block)")
      ->check(CLI::IsMember({"joint", "cross"}))->capture_default_str();
  trainc->add_option("--clinical-dropout", t->options.clinical_dropout,
                     "Share of covariate values hidden during training, so the model copes when one is missing")
      ->check(in_range(0.0, 0.95))->capture_default_str();
  trainc->add_option("--label-smoothing", t->options.label_smoothing, "Cross-entropy label smoothing")
      ->check(in_range(0.0, 0.5))->capture_default_str();
  trainc->add_option("--erase", t->options.erase,
                     "Random erasing: the share of training images in which one rectangle (2-25% of the area) is replaced "
                     "by random values; 0 = off, 0.25-0.5 typical")
      ->check(in_range(0.0, 1.0))->capture_default_str();
  trainc->add_option("--multires", t->options.multires,
                     "Multi-resolution training: the share of training images seen at a lower resolution (one size per "
                     "batch, 0.35-1 of --image-size, then back up), so the model cannot rely on the finest detail; 0 = off, "
                     "0.5 typical")
      ->check(in_range(0.0, 1.0))->capture_default_str();
  trainc->add_option("--mixup", t->options.mixup,
                     "Blend pairs of training images (and their labels) with weight ~ Beta(A, A); 0 = off, 0.2-0.4 typical")
      ->check(in_range(0.0, 10.0))->capture_default_str();
  trainc->add_option("--balance", t->options.balance,
                     "Class imbalance: weights (inverse-frequency loss weights), logit-adjust (train on logits + log class "
                     "prior, predict with the plain logits: aims at balanced accuracy) or none")
      ->check(CLI::IsMember({"weights", "logit-adjust", "none"}))->capture_default_str();
  trainc->add_option("--ema", t->options.ema, "Keep an exponential moving average of the weights with this decay (0 = off)")
      ->check(in_range(0.0, 0.99999))->capture_default_str();
  trainc->add_option("--warmup-epochs", t->options.warmup_epochs, "Epochs of linear learning-rate warm-up")
      ->check(in_range(0, 100000))->capture_default_str();
  trainc->add_option("--select", t->options.select,
                     "Which epoch is kept: best-auc (best validation AUC) or last (the end of the schedule; validation "
                     "then only measures, it does not choose)")
      ->check(CLI::IsMember({"best-auc", "last"}))->capture_default_str();
  trainc->add_option("--patience", t->options.patience, "Stop after N epochs without a better validation AUC (0 = never)")
      ->check(in_range(0, 100000))->capture_default_str();
  trainc->add_option("--group-regex", t->options.group_regex,
                     "Patient id from the file name (first capture group) so validation is split by patient, e.g. 'person(\\d+)_'");
  trainc->add_flag("--resume", t->options.resume, "Continue from MODEL/checkpoint (same optimizer and random state)");
  trainc->add_option("--init", t->options.init,
                     "Start from a pretrained encoder: DIR of medattn pretrain (encoder.bin) or a model of the same "
                     "architecture (weights.bin); the head is trained afresh");
  trainc->add_option("--members", t->options.members,
                     "Train an ensemble of N networks, one after the other (seeds SEED, SEED+1, ...), on the same split; "
                     "the model's logits are the mean of theirs")
      ->check(in_range(1, 16))->capture_default_str();
  trainc->add_flag("!--no-calibrate", t->options.calibrate, "Do not fit a softmax temperature on validation");
  trainc->add_option("--operating-point", t->options.operating_point,
                     "Binary models: choose the decision threshold on validation: balanced or sensitivity=X");
  trainc->add_option("--tta", t->options.tta,
                     "Test-time flips stored in the card: hflip, vflip or hflip,vflip; validation, calibration and diagnoses "
                     "average the logits over the flipped views (default: none)")
      ->check(kFlips);
  trainc->add_option("--name", t->name, "Model name for the card (default: the --out folder name)");
  trainc->add_option("--modalities", t->modalities, "Intended use: DICOM Modality codes the model takes, e.g. CR,DX (others abstain)");
  trainc->add_option("--body-part", t->options.card.intended_use.body_part,
                     "Intended use: DICOM BodyPartExamined values the model takes, e.g. CHEST (others abstain)");
  trainc->add_option("--view", t->options.card.intended_use.view, "Intended use: the view, e.g. 'frontal chest radiograph'");
  trainc->add_option("--population", t->options.card.intended_use.population, "Intended use: who the training images came from");
  trainc->add_option_function<std::string>(
            "--age-range", [t](const std::string& text) { t->options.card.intended_use.age_years = model::parse_age_range(text); },
            "Intended use: the patients' ages in years, MIN-MAX (e.g. 1-5); DICOM files whose PatientAge (or birth and "
            "study dates) falls outside abstain")
      ->type_name("MIN-MAX")
      ->check([](const std::string& text) {
        try {
          model::parse_age_range(text);
          return std::string();
        } catch (const std::exception& e) {
          return std::string(e.what());
        }
      });
  trainc->add_option("--intended-use", t->options.card.intended_use.description, "Intended use: what the model does, one sentence");
  trainc->add_option("--limitations", t->options.card.intended_use.limitations, "Intended use: what it was not shown or does badly");
  trainc->add_option("--ood-percentile", t->options.ood_percentile,
                     "OOD gate threshold: this percentile of the validation images' Mahalanobis scores (0 = no gate)")
      ->check(in_range(0.0, 100.0))->capture_default_str();
  trainc->add_option("--threads", t->threads, "Threads (default: all cores; at most 256)")->check(in_range(0, kMaxThreads));
  trainc->footer("Example:\n  medattn phantom --out ph --count 600 && medattn train ph/images --out models/mine --epochs 12");
  return {trainc, [t](const std::string& command) { return run_train_command(*t, command); }};
}

Command add_pretrain(CLI::App& app) {
  auto pt = std::make_shared<PretrainArgs>();
  auto* pretrainc = app.add_subcommand("pretrain", "Self-supervised pretraining of the encoder on unlabelled images, for train --init");
  pretrainc->add_option("data", pt->options.data, "Image folders (any images; labels ignored), MedMNIST .npz or CSV (path column)")
      ->required()->expected(1, -1);
  pretrainc->add_option("--out", pt->options.out, "Directory to write (encoder.bin, pretrain.json)")->required();
  pretrainc->add_option("--objective", pt->options.objective,
                        "mim (masked image modelling) or dino (self-distillation of two views with a momentum teacher; "
                        "it collapsed at small budgets in our measurement)")
      ->check(CLI::IsMember({"dino", "mim"}))->capture_default_str();
  pretrainc->add_option("--split", pt->options.split, "npz arrays NAME_images and CSV rows with split == NAME (\"\" = all CSV rows)")
      ->capture_default_str();
  pretrainc->add_option("--limit", pt->options.limit, "At most this many images per DATA, spread evenly (0 = all)")
      ->check(in_range(0, 100000000))->capture_default_str();
  pretrainc->add_option("--epochs", pt->options.epochs, "Epochs")->check(in_range(1, 100000))->capture_default_str();
  pretrainc->add_option("--batch-size", pt->options.batch_size, "Batch size")->check(in_range(2, 4096))->capture_default_str();
  pretrainc->add_option("--lr", pt->options.lr, "Peak learning rate (AdamW)")->check(in_range(1e-7, 1.0))->capture_default_str();
  pretrainc->add_option("--weight-decay", pt->options.weight_decay, "AdamW weight decay")->check(in_range(0.0, 10.0))->capture_default_str();
  pretrainc->add_option("--warmup-epochs", pt->options.warmup_epochs, "Epochs of linear learning-rate warm-up")
      ->check(in_range(0, 100000))->capture_default_str();
  pretrainc->add_option("--mask-ratio", pt->options.mask_ratio, "mim: share of the token grid masked")
      ->check(in_range(0.05, 0.95))->capture_default_str();
  pretrainc->add_option("--prototypes", pt->options.prototypes, "dino: prototypes of the projection head")
      ->check(in_range(8, 65536))->capture_default_str();
  pretrainc->add_option("--image-size", pt->image_size, "Input size S (S x S): the architecture train --init will use")->capture_default_str();
  pretrainc->add_option("--stem", pt->stem, "CNN stem channels per stage")->capture_default_str();
  pretrainc->add_option("--dim", pt->options.card.arch.dim, "Token width")->capture_default_str();
  pretrainc->add_option("--depth", pt->options.card.arch.depth, "Transformer blocks")->capture_default_str();
  pretrainc->add_option("--heads", pt->options.card.arch.heads, "Attention heads")->capture_default_str();
  pretrainc->add_option("--channels", pt->options.card.preprocess.channels, "Input channels: 1 (grey) or 3 (colour, BGR)")
      ->check(CLI::IsMember({1, 3}))->capture_default_str();
  pretrainc->add_option("--seed", pt->options.seed, "Random seed")->capture_default_str();
  pretrainc->add_flag("--resume", pt->options.resume, "Continue from OUT/checkpoint (same data and options)");
  pretrainc->add_option("--threads", pt->threads, "Threads (default: all cores; at most 256)")->check(in_range(0, kMaxThreads));
  pretrainc->footer("Example:\n  medattn pretrain ../shared/data/chest_xray_224/train --out pre/cxr64 --image-size 64 --epochs 20\n"
                    "  medattn train ../shared/data/chest_xray_224/train --out models/mine --image-size 64 --init pre/cxr64");
  return {pretrainc, [pt](const std::string& command) { return run_pretrain_command(*pt, command); }};
}

}  // namespace medattn::cli
