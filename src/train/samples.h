// Prepared samples shared by train, evaluate (eval/) and fit-ood: a dataset read and preprocessed into
// tensors, the seeded stratified validation split, covariate encoding and batched logits.
// Internal to train/ (includes LibTorch through model/net.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "io/dataset.h"
#include "model/net.h"
#include "preprocess/preprocess.h"
#include "train/train.h"

namespace medattn::train {

// Prepared inputs of a dataset: x [N,C,S,S] normalised, y [N] int64, c [N,F] encoded
// clinical covariates (NaN = missing; undefined for image-only models).
struct Tensors {
  torch::Tensor x, y, c;
  std::vector<std::string> groups;
  std::vector<uint64_t> hashes;  // of the prepared pixels: exact duplicates share one
  std::vector<int64_t> index;  // row -> index into the dataset's samples
  int64_t size() const { return x.defined() ? x.size(0) : 0; }
};

// Samples whose prepared pixels equal an earlier sample's.
int64_t count_duplicates(const std::vector<uint64_t>& hashes);

// Reads and preprocesses every sample with the card's preprocessing, in parallel over the
// torch thread count. Unreadable samples are reported and left out.
Tensors prepare_samples(const io::Dataset& data, const preprocess::PreprocessConfig& config,
                        const NoticeCallback& on_notice);

// The raw covariate values of every row of `t` (the columns named by `fields`; a column the
// CSV lacks is read as missing).
std::vector<std::vector<std::string>> clinical_rows(const io::Dataset& data, const Tensors& t,
                                                    const std::vector<model::ClinicalField>& fields);

// Fills t.c from the dataset's columns. Returns how many values were unknown categories or
// non-numbers (encoded as missing).
int encode_tensors(Tensors& t, const io::Dataset& data, const std::vector<model::ClinicalField>& fields);

// Columns of the schema that the dataset (a CSV) does not have at all.
std::vector<std::string> absent_columns(const io::Dataset& data, const std::vector<model::ClinicalField>& fields);

// Rows of t selected by `idx`, all tensors included.
Tensors select_rows(const Tensors& t, const std::vector<int64_t>& idx);

// Stratified split (train, validation row indices) by `fraction` and `seed`; patient groups
// and exact duplicates stay on one side (see samples.cpp).
std::pair<std::vector<int64_t>, std::vector<int64_t>> split_indices(const Tensors& t, double fraction, uint64_t seed);

// Logits (mean over the networks and the test-time `views`; model::tta_views) of every row of
// x, in batches: [N][K].
std::vector<std::vector<double>> logits_of(const std::vector<model::AttnNet>& nets, const torch::Tensor& x, int batch_size,
                                           const torch::Tensor& c, const std::vector<int>& views);

std::vector<int> labels_of(const torch::Tensor& y);

// "stratified F of the training data, seed S, exact duplicates kept on one side".
std::string describe_split(double fraction, uint64_t seed);

// Writes a checkpoint folder atomically: `fill` writes every file into a fresh DIR.tmp, which
// then replaces DIR by rename (the previous one kept as DIR.old until then), so a kill at any
// moment leaves the previous or the new checkpoint. Throws Error(kIOError).
void write_checkpoint_dir(const std::string& dir, const std::function<void(const std::string& tmp)>& fill);

// The default CPU generator's state saved to / restored from `path` (torch::save format), so
// that a resumed run draws what an uninterrupted one would have.
void save_rng_state(const std::string& path);
void load_rng_state(const std::string& path);

// Every image of one DATA argument as unlabelled samples (label 0, class "unlabelled"): an npz
// or CSV through io::load_dataset (with `split`), anything else walked as image files (folders
// recursively). At most `limit` (> 0) of them, spread evenly over the walk, with the notice
// "<label>: N of M images". Throws Error(kInvalidArgument) "<what> '<spec>': no images".
io::Dataset unlabelled_dataset(const std::string& spec, const std::string& split, int limit, const std::string& what,
                               const std::string& label, const NoticeCallback& on_notice);

// The fewest validation images whose `percentile` is worth a threshold: 100 / (100 - p), so that
// at least one validation image lies above it (50 for the 98th percentile).
int64_t min_gate_validation(double percentile);

// Fits the OOD gate (model/ood.h) of a trained model on its training rows `tr` and sets the
// threshold at the `percentile` of the validation rows' scores; writes DIR/ood.bin and sets
// card.ood (the caller writes the card). Rows must be encoded (t.c) for covariate models.
// Throws medattn::Error(kInvalidArgument) when va has fewer than min_gate_validation() rows.
void fit_gate_on(const std::vector<model::AttnNet>& nets, model::ModelCard& card, const Tensors& tr, const Tensors& va,
                 double percentile, double shrinkage, const std::string& feature, const std::string& dir);

}  // namespace medattn::train
