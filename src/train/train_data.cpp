// train's data: the training set read, prepared with the card's preprocessing, and split into
// training and validation rows (covariates fitted on the training rows and encoded).
#include <filesystem>
#include <set>

#include "core/error.h"
#include "io/dataset.h"
#include "train/train_parts.h"

namespace fs = std::filesystem;

namespace medattn::train {

io::Dataset load_training_set(const TrainOptions& options, const std::optional<std::regex>& group_regex,
                              const NoticeCallback& on_notice) {
  io::DatasetOptions dopt;
  dopt.classes = options.classes;
  dopt.split = options.split;
  io::Dataset train_set = io::load_dataset(options.data, dopt);
  for (const auto& n : train_set.notices) if (on_notice) on_notice(n);
  if (group_regex) {
    // Patient groups from file names, e.g. "person(\d+)_" for the Kermany chest X-rays.
    for (auto& s : train_set.samples) {
      std::smatch m;
      const std::string name = fs::path(s.path).filename().string();
      if (std::regex_search(name, m, *group_regex)) s.group = m.size() > 1 ? m[1].str() : m[0].str();
    }
  }
  return train_set;
}

TrainData split_training_data(const TrainOptions& options, const io::Dataset& train_set, model::ModelCard& card,
                              const NoticeCallback& on_notice) {
  Tensors all = prepare_samples(train_set, card.preprocess, on_notice);
  TrainData d;
  Tensors& tr = d.tr;
  Tensors& va = d.va;
  io::Dataset val_set;
  const io::Dataset* val_source = &train_set;
  int64_t& duplicates = d.duplicates;
  int64_t& overlap = d.overlap;
  if (!options.val_data.empty() || !options.val_split.empty()) {
    io::DatasetOptions vopt;
    vopt.classes = card.classes;
    vopt.split = options.val_split;
    val_set = io::load_dataset(options.val_data.empty() ? options.data : options.val_data, vopt);
    val_source = &val_set;
    tr = all;
    va = prepare_samples(val_set, card.preprocess, on_notice);
    const std::set<uint64_t> in_train(tr.hashes.begin(), tr.hashes.end());
    for (auto h : va.hashes) overlap += in_train.count(h);
    if (overlap > 0 && on_notice) {
      on_notice(std::to_string(overlap) + " validation image(s) are exact copies of training images; validation figures are flattered by them");
    }
  } else {
    duplicates = count_duplicates(all.hashes);
    if (duplicates > 0 && on_notice) {
      on_notice(std::to_string(duplicates) + " training image(s) are exact copies of others; each set of copies is kept on one side of the validation split");
    }
    auto [ti, vi] = split_indices(all, options.val_fraction, options.seed);
    tr = select_rows(all, ti);
    va = select_rows(all, vi);
  }
  all = Tensors();
  if (!card.clinical.empty()) {
    // Normalisation and vocabularies from the training rows only.
    model::fit_clinical(card.clinical, clinical_rows(train_set, tr, card.clinical));
    card = model::card_from_json(model::card_to_json(card), "train options");
    encode_tensors(tr, train_set, card.clinical);
    const int unknown = encode_tensors(va, *val_source, card.clinical);
    if (unknown > 0 && on_notice) {
      on_notice(std::to_string(unknown) + " validation covariate value(s) are categories unseen in training or not numbers: treated as missing");
    }
  }
  if (tr.size() == 0 || va.size() == 0) throw file_error(ErrorKind::kInvalidArgument, "cannot train on", options.data, "the training or validation split is empty");
  return d;
}

}  // namespace medattn::train
