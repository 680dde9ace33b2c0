#include "train/fit_ood.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>

#include "core/error.h"
#include "core/sha256.h"
#include "model/ood.h"
#include "model/ood_features.h"
#include "train/samples.h"

namespace fs = std::filesystem;

namespace medattn::train {
namespace {

double round4(double v) { return std::round(v * 1e4) / 1e4; }

}  // namespace

int64_t min_gate_validation(double percentile) {
  return percentile >= 100 ? 1 : static_cast<int64_t>(std::ceil(100.0 / (100.0 - percentile) - 1e-9));
}

void fit_gate_on(const std::vector<model::AttnNet>& nets, model::ModelCard& card, const Tensors& tr, const Tensors& va,
                 double percentile, double shrinkage, const std::string& feature, const std::string& dir) {
  model::check_feature_kind(feature);
  if (!(percentile > 0 && percentile <= 100)) throw Error(ErrorKind::kInvalidArgument, "--ood-percentile must be in (0, 100]");
  if (va.size() < min_gate_validation(percentile)) {
    throw Error(ErrorKind::kInvalidArgument, "cannot set the OOD threshold at the " + std::to_string(static_cast<int>(percentile)) +
                                                 "th percentile of " + std::to_string(va.size()) + " validation image(s) (at least " +
                                                 std::to_string(min_gate_validation(percentile)) + " needed)");
  }
  const auto train_features = model::gate_feature_rows(nets, tr.x, tr.c, feature, 128);
  const auto stats = model::fit_gaussians(train_features, labels_of(tr.y), static_cast<int>(card.classes.size()), shrinkage);
  std::vector<double> train_scores, val_scores;
  for (const auto& f : train_features) train_scores.push_back(model::mahalanobis_score(stats, f));
  for (const auto& f : model::gate_feature_rows(nets, va.x, va.c, feature, 128)) val_scores.push_back(model::mahalanobis_score(stats, f));
  const std::string path = (fs::path(dir) / model::kOodFile).string();
  model::save_gaussians(path, stats);
  model::OodGate gate;
  gate.file = model::kOodFile;
  gate.feature = feature;
  gate.sha256 = sha256_file(path);
  gate.percentile = percentile;
  gate.threshold = model::percentile(val_scores, percentile);
  int covered = 0;
  for (double s : val_scores) covered += s <= gate.threshold ? 1 : 0;
  gate.fit = {{"train_images", tr.size()},
              {"val_images", va.size()},
              {"shrinkage", shrinkage},
              {"networks", static_cast<int>(nets.size())},
              {"feature_dim", stats.dim},
              {"train_scores", {{"median", round4(model::percentile(train_scores, 50))}, {"p98", round4(model::percentile(train_scores, 98))}}},
              {"val_scores", {{"median", round4(model::percentile(val_scores, 50))}, {"p98", round4(model::percentile(val_scores, 98))},
                              {"max", round4(*std::max_element(val_scores.begin(), val_scores.end()))}}},
              {"val_coverage", round4(static_cast<double>(covered) / static_cast<double>(val_scores.size()))}};
  card.ood = gate;
}

FitOodResult run_fit_ood(const FitOodOptions& options, const NoticeCallback& on_notice) {
  auto model = model::load_model(options.model_dir);
  model::ModelCard card = model.card;
  io::DatasetOptions dopt;
  dopt.classes = card.classes;
  dopt.split = options.split;
  io::Dataset train_set = io::load_dataset(options.data, dopt);
  for (const auto& n : train_set.notices) if (on_notice) on_notice(n);
  if (!options.group_regex.empty()) {
    std::regex re;
    try {
      re = std::regex(options.group_regex);
    } catch (const std::regex_error&) {
      throw Error(ErrorKind::kInvalidArgument, "--group-regex '" + options.group_regex + "' is not a valid regular expression");
    }
    for (auto& s : train_set.samples) {
      std::smatch m;
      const std::string name = fs::path(s.path).filename().string();
      if (std::regex_search(name, m, re)) s.group = m.size() > 1 ? m[1].str() : m[0].str();
    }
  }
  Tensors all = prepare_samples(train_set, card.preprocess, on_notice);
  Tensors tr, va;
  io::Dataset val_set;
  const io::Dataset* val_source = &train_set;
  std::string validation;
  if (!options.val_data.empty() || !options.val_split.empty()) {
    io::DatasetOptions vopt;
    vopt.classes = card.classes;
    vopt.split = options.val_split;
    const std::string source = options.val_data.empty() ? options.data : options.val_data;
    val_set = io::load_dataset(source, vopt);
    val_source = &val_set;
    tr = all;
    va = prepare_samples(val_set, card.preprocess, on_notice);
    validation = source + (options.val_split.empty() ? "" : " split " + options.val_split);
  } else {
    auto [ti, vi] = split_indices(all, options.val_fraction, options.seed);
    tr = select_rows(all, ti);
    va = select_rows(all, vi);
    validation = describe_split(options.val_fraction, options.seed) +
                 (options.group_regex.empty() ? "" : ", grouped by " + options.group_regex);
  }
  all = Tensors();
  if (tr.size() == 0 || va.size() == 0) {
    throw file_error(ErrorKind::kInvalidArgument, "cannot fit the OOD gate on", options.data, "the training or validation split is empty");
  }
  if (!card.clinical.empty()) {
    encode_tensors(tr, train_set, card.clinical);
    encode_tensors(va, *val_source, card.clinical);
  }
  fit_gate_on(model.nets, card, tr, va, options.percentile, options.shrinkage, options.feature, options.model_dir);
  card.ood.fit["train"] = options.data + (options.split.empty() ? "" : " split " + options.split);
  card.ood.fit["validation"] = validation;
  card.ood.fit["command"] = options.command;
  // The weights are untouched: the card keeps their digests and gains the gate.
  model::write_card(options.model_dir, card);
  FitOodResult result;
  result.gate = card.ood;
  result.train_count = static_cast<int>(tr.size());
  result.val_count = static_cast<int>(va.size());
  result.val_coverage = card.ood.fit.value("val_coverage", 0.0);
  return result;
}

}  // namespace medattn::train
