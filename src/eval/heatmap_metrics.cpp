// evaluate's heatmap metrics: deletion/insertion, the pointing game and IoU against lesion
// masks, the heatmap scale reference, and the randomisation check.
#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "eval/evaluate_parts.h"
#include "explain/faithfulness.h"
#include "explain/methods.h"
#include "io/image.h"
#include "model/net.h"
#include "preprocess/preprocess.h"

namespace fs = std::filesystem;

namespace medattn::eval {

HeatmapMetrics measure_heatmaps(model::LoadedModel& model, const io::Dataset& data, const train::Tensors& t,
                                const Predictions& model_level, const EvaluateOptions& options, const std::string& method,
                                const NoticeCallback& on_notice) {
  const auto& card = model.card;
  const auto views = model::tta_views(options.tta.empty() ? card.tta : model::parse_flips(options.tta));
  HeatmapMetrics hm;
  // Heatmap metrics, for the class each image is predicted as (the card's decision rule).
  explain::ExplainOptions xopt = options.explain;
  xopt.method = explain::parse_method(method);
  xopt.flips = options.heatmap_flips.empty() ? card.heatmap_flips : model::parse_flips(options.heatmap_flips);
  const int S = card.preprocess.image_size;
  hm.method = method;
  std::vector<int> predicted;
  for (const auto& p : model_level.probabilities) predicted.push_back(decide(p, card.threshold));
  bool csv_masks = false;
  for (const auto& smp : data.samples) csv_masks |= !smp.mask.empty();
  const bool with_masks = !options.masks.empty() || csv_masks;
  if (!options.masks.empty() && !fs::is_directory(options.masks)) {
    throw file_error(ErrorKind::kInvalidArgument, "cannot read masks", options.masks, "not a directory");
  }
  double del_sum = 0, ins_sum = 0, iou_sum = 0;
  int hits = 0;
  const int64_t chunk = 16;
  for (int64_t s = 0; s < t.size(); s += chunk) {
    const int64_t e = std::min(t.size(), s + chunk);
    auto xb = t.x.slice(0, s, e);
    const torch::Tensor cb = t.c.defined() ? t.c.slice(0, s, e) : torch::Tensor();
    const std::vector<int> targets(predicted.begin() + s, predicted.begin() + e);
    auto ex = explain::explain(model.nets, xb, xopt, targets, cb, views);
    auto maps = ex.maps.contiguous();
    if (!options.no_deletion) {
      for (const auto& d : explain::deletion_insertion(model.nets, xb, maps, targets, card.temperature, 16, cb)) {
        del_sum += d.deletion_auc;
        ins_sum += d.insertion_auc;
      }
    }
    if (!with_masks) continue;
    for (int64_t b = 0; b < e - s; ++b) {
      const auto& sample = data.samples[t.index[s + b]];
      // Lexically, so that symlinked folders inside DATA keep their names.
      // --masks DIR: the same relative path as the image; otherwise the CSV's mask column.
      fs::path mask_path;
      if (!options.masks.empty()) {
        const fs::path rel = fs::path(sample.path).lexically_normal().lexically_relative(fs::path(options.data).lexically_normal());
        mask_path = fs::path(options.masks) / rel;
      } else if (!sample.mask.empty()) {
        mask_path = sample.mask;
      } else {
        continue;
      }
      cv::Mat mask;
      try {
        mask = preprocess::prepare_mask(io::to_display(io::read_image(mask_path.string())), S);
      } catch (const Error& err) {
        if (on_notice) on_notice(std::string("no usable mask: ") + err.what());
        continue;
      }
      if (cv::countNonZero(mask) == 0) continue;  // normal image: nothing to point at
      cv::Mat map(S, S, CV_32FC1, maps[b].data_ptr<float>());
      hits += explain::pointing_game_hit(map, mask);
      iou_sum += explain::heatmap_iou(map, mask);
      ++hm.masked;
    }
  }
  hm.images = static_cast<int>(t.size());
  if (!options.no_deletion) {
    hm.deletion_auc = del_sum / static_cast<double>(t.size());
    hm.insertion_auc = ins_sum / static_cast<double>(t.size());
  }
  if (hm.masked > 0) {
    hm.pointing_game = static_cast<double>(hits) / hm.masked;
    hm.heatmap_iou = iou_sum / hm.masked;
  }
  if (options.calibrate_heatmap_scale) {
    // Each image's largest value in the method's own units; the median is shown as 1.
    explain::ExplainOptions absolute = xopt;
    absolute.absolute = true;
    std::vector<double> peaks;
    for (int64_t s = 0; s < t.size(); s += chunk) {
      const int64_t e = std::min(t.size(), s + chunk);
      const torch::Tensor cb = t.c.defined() ? t.c.slice(0, s, e) : torch::Tensor();
      const std::vector<int> targets(predicted.begin() + s, predicted.begin() + e);
      const auto ex = explain::explain(model.nets, t.x.slice(0, s, e), absolute, targets, cb, views);
      const auto m = (ex.signed_maps.defined() ? ex.signed_maps.abs() : ex.maps).reshape({e - s, -1}).amax(1);
      for (int64_t b = 0; b < e - s; ++b) peaks.push_back(m[b].item<double>());
    }
    std::sort(peaks.begin(), peaks.end());
    const size_t n = peaks.size();
    const double median = n % 2 ? peaks[n / 2] : 0.5 * (peaks[n / 2 - 1] + peaks[n / 2]);
    if (!(median > 0)) {
      throw file_error(ErrorKind::kInvalidArgument, "cannot calibrate the heatmap scale on", options.data,
                       "the maps are zero on most images");
    }
    hm.scale_reference = median;
    model::ModelCard written = model::read_card(options.model_dir);
    written.heatmap_scale[method] = median;
    model::write_card(options.model_dir, written);
    if (on_notice) on_notice("wrote heatmap scale " + std::to_string(median) + " for " + method + " to " + options.model_dir);
  }
  if (options.randomization_check) {
    if (model.nets.size() > 1 && on_notice) {
      on_notice("the randomization check re-initialises and explains the first of the ensemble's " + std::to_string(model.nets.size()) + " networks only");
    }
    const int64_t n = std::min<int64_t>(t.size(), options.randomization_images);
    const torch::Tensor cn = t.c.defined() ? t.c.slice(0, 0, n) : torch::Tensor();
    hm.randomization = explain::randomization_check(card, model.net, t.x.slice(0, 0, n), xopt, 1, 3, cn);
    hm.randomization_floor = explain::randomization_floor(card, model.net, t.x.slice(0, 0, n), xopt, 1, 3, cn);
  }
  return hm;
}

}  // namespace medattn::eval
