#include "pipeline/diagnose.h"

#include <strings.h>

#include <chrono>
#include <filesystem>
#include <opencv2/core.hpp>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "eval/metrics.h"
#include "explain/overlay.h"
#include "explain/methods.h"
#include "io/inputs.h"
#include "model/net.h"
#include "preprocess/preprocess.h"
#include "report/terminal.h"

namespace fs = std::filesystem;

namespace medattn::pipeline {
namespace {

// One input on its way through a batch.
struct Pending {
  io::InputItem item;
  report::DiagnosisRecord record;
  cv::Mat input;    // prepared model input, CV_32FC1 S x S
  cv::Mat display;  // windowed original, kept only for heatmaps
  preprocess::Letterbox letterbox;
};

void check_writable_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw file_error(ErrorKind::kIOError, "cannot create heatmap directory", dir, ec.message());
  const std::string probe = (fs::path(dir) / ".medattn-write-test").string();
  write_file_atomic(probe, "");
  fs::remove(probe, ec);
}

class HeatmapNamer {
 public:
  explicit HeatmapNamer(std::string dir) : dir_(std::move(dir)) {}
  // A stem unique within this run: a second "a_b" becomes "a_b-2".
  std::string stem_for(const io::InputItem& item) {
    const std::string base = io::heatmap_stem(item);
    std::string stem = base;
    for (int n = 2; !used_.insert(stem).second; ++n) stem = base + "-" + std::to_string(n);
    return (fs::path(dir_) / stem).string();
  }

 private:
  std::string dir_;
  std::set<std::string> used_;
};

}  // namespace

int set_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  cv::setNumThreads(n);
  return n;
}

DiagnoseSummary run_diagnose(const DiagnoseOptions& options, const StartCallback& on_start,
                             const RecordCallback& on_record, const NoticeCallback& on_notice) {
  const auto t0 = std::chrono::steady_clock::now();
  if (options.batch_size < 1) throw Error(ErrorKind::kInvalidArgument, "--batch-size must be at least 1");
  explain::ExplainOptions xopt;
  xopt.method = explain::parse_method(options.method);
  xopt.rollout.head_fusion = explain::parse_head_fusion(options.head_fusion);
  if (options.discard_ratio < 0.0 || options.discard_ratio >= 1.0) {
    throw Error(ErrorKind::kInvalidArgument, "--discard-ratio must be in [0, 1)");
  }
  xopt.rollout.discard_ratio = options.discard_ratio;
  xopt.occlusion_patch = options.occlusion_patch;
  xopt.occlusion_stride = options.occlusion_stride;

  auto model = model::load_model(options.model_dir);
  const auto& card = model.card;
  const bool heatmaps = !options.heatmap_dir.empty();
  if (heatmaps) check_writable_dir(options.heatmap_dir);
  const bool maps_needed = heatmaps || options.preview;
  HeatmapNamer namer(options.heatmap_dir);

  int target = -1;
  if (!options.target.empty()) {
    for (size_t c = 0; c < card.classes.size(); ++c) {
      if (strcasecmp(card.classes[c].c_str(), options.target.c_str()) == 0) target = static_cast<int>(c);
    }
    if (target < 0) {
      std::string names;
      for (const auto& c : card.classes) names += (names.empty() ? "" : ", ") + c;
      throw Error(ErrorKind::kInvalidArgument, "--target '" + options.target + "' is not a class of the model (" + names + ")");
    }
  }
  if (xopt.method == explain::Method::kOcclusion &&
      (options.occlusion_patch < 1 || options.occlusion_stride < 1 || options.occlusion_patch > card.preprocess.image_size)) {
    throw Error(ErrorKind::kInvalidArgument, "--occlusion-patch and --occlusion-stride must be in [1, " +
                                                 std::to_string(card.preprocess.image_size) + "]");
  }

  DiagnoseSummary summary;
  summary.classes = card.classes;
  if (on_start) on_start(card.classes);

  auto expanded = io::expand_inputs(options.inputs);
  summary.skipped = static_cast<int>(expanded.notices.size());
  for (const auto& n : expanded.notices) if (on_notice) on_notice(n);
  auto emit = [&](const report::DiagnosisRecord& r) {
    ++summary.total;
    if (!r.ok) ++summary.failed;
    if (on_record) on_record(r);
  };
  for (const auto& m : expanded.missing) {
    report::DiagnosisRecord r;
    r.file = m;
    r.error = "cannot read '" + m + "': no such file or directory";
    emit(r);
  }

  torch::NoGradGuard no_grad;
  const int size = card.preprocess.image_size;
  const auto& items = expanded.items;
  for (size_t start = 0; start < items.size(); start += options.batch_size) {
    const size_t end = std::min(items.size(), start + options.batch_size);
    std::vector<Pending> batch;
    for (size_t i = start; i < end; ++i) {
      Pending p;
      p.item = items[i];
      p.record.file = items[i].path;
      try {
        const io::Image image = io::read_image(items[i].path, options.read);
        p.record.width = image.pixels.cols;
        p.record.height = image.pixels.rows;
        p.record.format = io::format_name(image.format);
        const cv::Mat display = io::to_display(image);
        p.input = preprocess::prepare_display(preprocess::to_grey(display), card.preprocess, &p.letterbox);
        if (maps_needed) p.display = display;
      } catch (const Error& e) {
        p.record.error = e.what();
      } catch (const cv::Exception& e) {
        p.record.error = "cannot read '" + items[i].path + "': image decoder failed (" + e.err + ")";
      } catch (const std::bad_alloc&) {
        p.record.error = "cannot read '" + items[i].path + "': out of memory while decoding";
      }
      batch.push_back(std::move(p));
    }

    std::vector<torch::Tensor> inputs;
    std::vector<Pending*> good;
    for (auto& p : batch) {
      if (!p.record.error.empty()) continue;
      inputs.push_back(torch::from_blob(p.input.data, {1, size, size}, torch::kFloat32));
      good.push_back(&p);
    }
    if (!good.empty()) {
      const auto x = torch::stack(inputs);
      torch::Tensor logits, maps;
      if (maps_needed) {
        const auto ex = explain::explain(model.net, x, xopt, std::vector<int>(good.size(), target));
        logits = ex.logits;
        maps = ex.maps.contiguous();
      } else {
        logits = model.net->forward(x).logits;
      }
      auto probs = torch::softmax(logits.to(torch::kFloat64) / card.temperature, 1).contiguous();
      for (size_t b = 0; b < good.size(); ++b) {
        auto& r = good[b]->record;
        const double* row = probs[static_cast<int64_t>(b)].data_ptr<double>();
        const std::vector<double> p(row, row + card.classes.size());
        for (size_t c = 0; c < card.classes.size(); ++c) r.probabilities.emplace_back(card.classes[c], p[c]);
        const int best = eval::decide(p, card.threshold);
        r.diagnosis = card.classes[best];
        r.probability = p[best];
        r.ok = true;
        if (!maps_needed) continue;
        auto m = maps[static_cast<int64_t>(b)];
        const cv::Mat square(size, size, CV_32FC1, m.data_ptr<float>());
        const cv::Mat heat = preprocess::map_to_original(square, good[b]->letterbox, size);
        r.attention_regions = report::attention_regions(heat);
        explain::OverlayOptions look;
        look.alpha = options.heatmap_alpha;
        look.contour_top = options.contour_top;
        const int shown = target >= 0 ? target : best;
        char caption[160];
        std::snprintf(caption, sizeof(caption), "%s %.2f  [%s]", card.classes[shown].c_str(), p[shown],
                      options.method.c_str());
        look.caption = target >= 0 ? std::string(caption) + " (target; diagnosis " + r.diagnosis + ")" : caption;
        if (options.preview) {
          explain::OverlayOptions plain = look;  // a terminal preview is too small for text
          plain.caption.clear();
          plain.legend = false;
          r.preview = explain::make_overlay(good[b]->display, heat, plain);
          r.preview_heat = heat;
        }
        if (!heatmaps) continue;
        const std::string stem = namer.stem_for(good[b]->item);
        try {
          explain::write_png(stem + ".heatmap.png", explain::make_overlay(good[b]->display, heat, look));
          explain::write_png(stem + ".heatmap-raw.png", explain::heatmap_to_u16(heat));
          r.heatmap = stem + ".heatmap.png";
          r.heatmap_raw = stem + ".heatmap-raw.png";
        } catch (const Error& e) {
          r.ok = false;
          r.error = e.what();
        }
      }
    }
    for (auto& p : batch) emit(p.record);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace medattn::pipeline
