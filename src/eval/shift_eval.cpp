// evaluate --shift: the model on the evaluated images under every corruption of its modality's
// set (eval/shift.h) at five severities, with the card's preprocessing, decision rule,
// temperature, test-time flips and abstention gate, exactly as on the clean images.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <thread>

#include "core/error.h"
#include "eval/model_checks.h"
#include "eval/shift.h"
#include "io/image.h"
#include "model/ood.h"
#include "model/ood_features.h"
#include "pipeline/scope.h"
#include "eval/evaluate_parts.h"

namespace medattn::eval {

using train::Tensors;
using train::logits_of;
namespace {

// One evaluated image as read once: its windowed display image and what the scope checks read
// from the file (format, modality, body part; pixels left empty).
struct Source {
  cv::Mat display;
  io::Image meta;
  uint64_t id = 0;  // the sample's index in the dataset: the corruption seed's image number
  bool ok = false;
  std::string error;
};

template <typename F>
void parallel_rows(int64_t n, F&& body) {
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i = next++; i < n; i = next++) body(i);
  };
  const int threads = std::max(1, at::get_num_threads());
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

// What the model's training changed in its images: its own augmentation and, for a model
// initialised from a pretrained encoder, the pretraining's views.
std::string augment_of(const model::ModelCard& card) {
  std::string out;
  const auto it = card.training.find("augment");
  if (it != card.training.end() && it->is_string()) out = it->get<std::string>();
  const auto init = card.training.find("init");
  if (init != card.training.end() && init->is_object() && init->contains("augment") && (*init)["augment"].is_string()) {
    out += (out.empty() ? "" : "; ") + (*init)["augment"].get<std::string>();
  }
  return out;
}

}  // namespace

ShiftResult run_shift(const model::LoadedModel& model, const io::Dataset& data, const Tensors& t,
                            const EvaluateOptions& options, const NoticeCallback& on_notice) {
  const auto& card = model.card;
  const auto& set = eval::find_shift_set(options.shift_set.empty()
                                             ? eval::shift_set_for(card.intended_use.modalities, card.preprocess.channels)
                                             : options.shift_set);
  eval::ShiftResult result;
  result.set = set.name;
  result.seed = options.shift_seed;
  const auto seen = eval::seen_families(augment_of(card));
  result.seen_families.assign(seen.begin(), seen.end());

  // The rows: all of t, or shift_limit of them spread evenly.
  std::vector<int64_t> rows;
  const int64_t n_all = t.size();
  if (options.shift_limit > 0 && n_all > options.shift_limit) {
    const double step = static_cast<double>(n_all) / options.shift_limit;
    for (int64_t i = 0; i < options.shift_limit; ++i) rows.push_back(static_cast<int64_t>(i * step));
    if (on_notice) {
      on_notice("--shift: " + std::to_string(options.shift_limit) + " of " + std::to_string(n_all) +
                " images, spread evenly (--shift-limit)");
    }
  } else {
    for (int64_t i = 0; i < n_all; ++i) rows.push_back(i);
  }

  std::vector<Source> sources(rows.size());
  parallel_rows(static_cast<int64_t>(rows.size()), [&](int64_t r) {
    Source& src = sources[r];
    const int64_t index = t.index[rows[r]];
    const auto& s = data.samples[index];
    src.id = static_cast<uint64_t>(index);
    try {
      if (!s.pixels.empty()) {
        s.pixels.convertTo(src.display, CV_32F, 1.0 / 255.0);
        src.meta.format = io::FileFormat::kPng;
      } else {
        io::Image image = io::read_image(s.path);
        src.display = io::to_display(image);
        image.pixels.release();
        src.meta = std::move(image);
      }
      src.ok = true;
    } catch (const std::exception& e) {
      src.error = e.what();
    }
  });
  std::vector<int64_t> kept;  // rows of t whose image could be read again
  std::vector<int> labels;
  const auto y = t.y.accessor<int64_t, 1>();
  for (size_t r = 0; r < rows.size(); ++r) {
    if (!sources[r].ok) {
      if (on_notice) on_notice("--shift: skipped sample: " + sources[r].error);
      continue;
    }
    kept.push_back(static_cast<int64_t>(r));
    labels.push_back(static_cast<int>(y[rows[r]]));
  }
  if (kept.empty()) throw Error(ErrorKind::kInvalidArgument, "--shift: no readable images");
  torch::Tensor c;
  if (t.c.defined()) {
    std::vector<int64_t> idx;
    for (int64_t r : kept) idx.push_back(rows[r]);
    c = t.c.index_select(0, torch::tensor(idx, torch::kInt64));
  }

  // evaluate --class-map: the data's classes merge the model's, scored as evaluate scores them.
  std::optional<eval::ClassMap> class_map;
  if (!options.class_map.empty()) class_map = eval::parse_class_map(options.class_map, card.classes);
  const bool gated = card.ood.enabled();
  model::GaussianStats stats;
  if (gated) stats = model::load_gate(options.model_dir, card, model::gate_feature_dim(card, card.ood.feature));
  const auto views = model::tta_views(options.tta.empty() ? card.tta : model::parse_flips(options.tta));
  const int S = card.preprocess.image_size;
  const int C = card.preprocess.channels;
  const auto n = static_cast<int64_t>(kept.size());

  auto measure = [&](const eval::Corruption* corruption, int severity) {
    auto x = torch::empty({n, C, S, S}, torch::kFloat32);
    std::vector<char> out_of_scope(n, 0);
    parallel_rows(n, [&](int64_t k) {
      const Source& src = sources[kept[k]];
      const double scale = std::max(src.display.cols, src.display.rows) / static_cast<double>(S);
      const cv::Mat shifted =
          corruption == nullptr ? src.display
                                : eval::corrupt(src.display, *corruption, severity, scale,
                                                eval::corruption_seed(options.shift_seed, corruption->name, src.id));
      preprocess::copy_planar(preprocess::prepare_display(shifted, card.preprocess), x[k].data_ptr<float>());
      if (gated) {
        io::Image meta = src.meta;
        meta.pixels = shifted;  // the checks read its size only
        out_of_scope[k] = pipeline::scope_check(meta, shifted, card).empty() ? 0 : 1;
      }
    });
    // With a gate and no test-time flips, one pass gives both the logits and the gate's features.
    std::vector<std::vector<double>> logits, features;
    const bool one_pass = gated && views.size() <= 1;
    if (one_pass) {
      torch::NoGradGuard no_grad;
      for (int64_t s = 0; s < n; s += options.batch_size) {
        const int64_t e = std::min(n, s + options.batch_size);
        torch::Tensor lb;
        const auto fb = model::gate_features(model.nets, x.slice(0, s, e), c.defined() ? c.slice(0, s, e) : c, card.ood.feature, &lb)
                            .to(torch::kFloat64).contiguous();
        lb = lb.to(torch::kFloat64).contiguous();
        for (int64_t i = 0; i < e - s; ++i) {
          logits.emplace_back(lb[i].data_ptr<double>(), lb[i].data_ptr<double>() + lb.size(1));
          features.emplace_back(fb[i].data_ptr<double>(), fb[i].data_ptr<double>() + fb.size(1));
        }
      }
    } else {
      logits = logits_of(model.nets, x, options.batch_size, c, views);
      if (gated) features = model::gate_feature_rows(model.nets, x, c, card.ood.feature, 128);
    }
    auto predictions = eval::apply_temperature(logits, labels, card.temperature);
    if (class_map) predictions = eval::merge_classes(predictions, *class_map);
    const auto m = eval::compute_metrics(predictions, class_map ? -1.0 : card.threshold);
    eval::ShiftCell cell;
    cell.severity = severity;
    cell.param = corruption == nullptr || severity == 0 ? 0.0 : corruption->params[severity - 1];
    cell.n = m.n;
    cell.accuracy = m.accuracy;
    cell.balanced_accuracy = m.balanced_accuracy;
    cell.auc = m.auc;
    cell.ece = m.ece;
    if (gated) {
      int covered = 0;
      for (int64_t k = 0; k < n; ++k) {
        covered += !out_of_scope[k] && model::mahalanobis_score(stats, features[k]) <= card.ood.threshold ? 1 : 0;
      }
      cell.coverage = static_cast<double>(covered) / static_cast<double>(n);
    }
    return cell;
  };

  result.clean = measure(nullptr, 0);
  for (const char* name : set.corruptions) {
    const auto& corruption = eval::find_corruption(name);
    eval::ShiftRow row;
    row.name = corruption.name;
    row.family = corruption.family;
    row.models = corruption.models;
    row.unit = corruption.unit;
    row.seen = seen.count(corruption.family) > 0;
    for (int severity = 1; severity <= eval::kShiftSeverities; ++severity) row.cells.push_back(measure(&corruption, severity));
    result.rows.push_back(std::move(row));
  }
  result.unseen = eval::summarise(result, /*unseen_only=*/true);
  result.all = eval::summarise(result, /*unseen_only=*/false);
  return result;
}

}  // namespace medattn::eval
