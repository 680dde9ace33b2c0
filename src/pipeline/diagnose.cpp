#include "pipeline/diagnose.h"

#include <strings.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"
#include "eval/metrics.h"
#include "explain/overlay.h"
#include "explain/methods.h"
#include "io/csv.h"
#include "io/inputs.h"
#include "model/net.h"
#include "model/ood.h"
#include "model/ood_features.h"
#include "pipeline/scope.h"
#include "preprocess/preprocess.h"
#include "report/dicom_out.h"
#include "report/terminal.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace medattn::pipeline {
namespace {

// One input event on its way through the run, in input order.
struct Job {
  enum class Kind { kImage, kMissing, kNotice };
  Kind kind = Kind::kImage;
  io::InputItem item;
  std::string stem;    // heatmap path without suffix (images, when heatmaps are written)
  std::string dicom_stem;  // --dicom-out path without suffix (images)
  std::string notice;  // kNotice
  std::string scope;   // the scope check's reason (pipeline/scope.h); empty: in scope
  bool ready = false;  // decoded (images); other kinds are ready when queued
  report::DiagnosisRecord record;
  cv::Mat input;    // prepared model input, CV_32FC(channels) S x S
  // The windowed image in 8 bits, grey or colour as decoded (what the overlay draws on: its
  // rounding done once here), kept only when maps are drawn.
  cv::Mat display;
  preprocess::Letterbox letterbox;
  int64_t bytes = 0;  // held by input and display, counted against the queue's budget
};
using JobPtr = std::shared_ptr<Job>;

// Memory bounds of a run (README "Limits"): images are reduced to kMaxWorkSide on their
// longer side as they are decoded; the decoded jobs waiting for the model hold at most
// kQueueBudgetBytes (beyond one job); and an allocation that fails is that image's error.
constexpr int kMaxWorkSide = 2048;
constexpr int64_t kQueueBudgetBytes = int64_t{256} << 20;

// True for an exception that says memory ran out (std::bad_alloc, OpenCV's "Insufficient
// memory", c10's "DefaultCPUAllocator: can't allocate memory").
bool out_of_memory(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return true;
  const std::string what = e.what();
  return what.find("Insufficient memory") != std::string::npos || what.find("can't allocate memory") != std::string::npos ||
         what.find("out of memory") != std::string::npos || what.find("Failed to allocate") != std::string::npos;
}

// Test hook: MEDATTN_TEST_OOM=<text> makes the heatmap stage of every input whose path
// contains <text> fail as if memory ran out, so that tests can check the batch carries on.
bool injected_oom(const std::string& path) {
  static const char* text = std::getenv("MEDATTN_TEST_OOM");
  return text != nullptr && *text != '\0' && path.find(text) != std::string::npos;
}
// Why a path given as input cannot be read: the errno's text (a symlink loop says so), with
// the former wording for a plain missing file.
std::string missing_reason(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 || errno == ENOENT) return "no such file or directory";
  return errno_text(errno);
}

void check_writable_dir(const std::string& dir, const char* what = "cannot create heatmap directory") {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw file_error(ErrorKind::kIOError, what, dir, ec.message());
  remove_stale_temporaries(dir);  // heatmaps of runs killed mid-write
  const std::string probe = (fs::path(dir) / ".medattn-write-test").string();
  write_file_atomic(probe, "");
  fs::remove(probe, ec);
}

// The rows of a --clinical CSV, keyed by the file they describe.
class ClinicalTable {
 public:
  ClinicalTable(const std::string& csv, const std::vector<model::ClinicalField>& fields) {
    const io::CsvTable table = io::read_csv_table(csv, "cannot read clinical data", "empty file (expected a header with path)");
    const int col_path = table.column("path");
    if (col_path < 0) throw file_error(ErrorKind::kInvalidArgument, "cannot read clinical data", csv, "no 'path' column");
    std::vector<int> cols;
    for (const auto& f : fields) {
      cols.push_back(table.column(f.name));
      if (cols.back() < 0) absent_.push_back(f.name);
    }
    std::map<std::string, int> name_count;
    for (const auto& rec : table.rows) {
      std::vector<std::string> values;
      for (int c : cols) values.push_back(c < 0 ? std::string() : rec.fields[c]);
      const fs::path full = table.resolve(trim(rec.fields[col_path]));
      rows_.push_back(values);
      by_path_[key(full)] = rows_.size() - 1;
      const std::string name = full.filename().string();
      if (++name_count[name] == 1) {
        by_name_[name] = rows_.size() - 1;
      } else {
        by_name_.erase(name);
      }
    }
  }
  const std::vector<std::string>& absent() const { return absent_; }
  // The row for `path`, or nullptr.
  const std::vector<std::string>* find(const std::string& path) const {
    auto it = by_path_.find(key(path));
    if (it != by_path_.end()) return &rows_[it->second];
    auto n = by_name_.find(fs::path(path).filename().string());
    return n == by_name_.end() ? nullptr : &rows_[n->second];
  }

 private:
  static std::string key(const fs::path& p) {
    std::error_code ec;
    auto k = fs::weakly_canonical(p, ec);
    return (ec ? p.lexically_normal() : k).string();
  }
  std::vector<std::string> absent_;
  std::vector<std::vector<std::string>> rows_;
  std::map<std::string, size_t> by_path_, by_name_;
};

// Heatmap paths: pipeline::heatmap_stem in the heatmap folder. The name depends on the
// input's path alone (never on the other inputs, --shard or --resume).
class HeatmapNamer {
 public:
  explicit HeatmapNamer(std::string dir) : dir_(std::move(dir)) {}
  std::string stem_for(const io::InputItem& item) const { return (fs::path(dir_) / pipeline::heatmap_stem(item)).string(); }

 private:
  std::string dir_;
};

// Pixels (any float type and channel count) that are NaN or infinite.
int64_t count_non_finite(const cv::Mat& pixels) {
  if (pixels.depth() != CV_32F && pixels.depth() != CV_64F) return 0;
  const cv::Mat flat = pixels.reshape(1);
  cv::Mat finite;
  cv::Mat as32;
  flat.convertTo(as32, CV_32F);
  // |x| <= FLT_MAX is false for NaN and for infinity.
  cv::inRange(as32, -std::numeric_limits<float>::max(), std::numeric_limits<float>::max(), finite);
  return static_cast<int64_t>(finite.total()) - cv::countNonZero(finite);
}

// Reads and prepares one image; failures become the record's error.
void decode(Job& job, const DiagnoseOptions& options, const model::ModelCard& card, bool keep_display) {
  const auto& config = card.preprocess;
  auto& r = job.record;
  const std::string& path = job.item.path;
  try {
    io::ReadOptions read = options.read;
    if (read.max_side <= 0) read.max_side = kMaxWorkSide;
    const io::Image image = io::read_image(path, read);
    // A NaN or infinite pixel (float TIFF/NIfTI, a DICOM rescale overflowing float) would
    // make every probability NaN: refused as this image's error, never diagnosed.
    if (const int64_t bad = count_non_finite(image.pixels); bad > 0) {
      throw Error(ErrorKind::kCorruption, "cannot read image '" + path + "': " + std::to_string(bad) +
                                              " pixel value(s) are not finite (NaN or infinity)");
    }
    r.width = image.width > 0 ? image.width : image.pixels.cols;
    r.height = image.height > 0 ? image.height : image.pixels.rows;
    r.format = io::format_name(image.format);
    if (options.read.window || image.format == io::FileFormat::kDicom || image.format == io::FileFormat::kNifti ||
        image.format == io::FileFormat::kNiftiGz) {
      r.window_center = image.window.center;
      r.window_width = image.window.width;
      r.window_source = options.read.window ? "--window" : "file";
    }
    if (image.format == io::FileFormat::kDicom) report::read_dicom_identity(path, r);
    const cv::Mat display = io::to_display(image);
    job.scope = scope_check(image, display, card);
    job.input = preprocess::prepare_display(display, config, &job.letterbox);
    if (count_non_finite(job.input) > 0) {
      throw Error(ErrorKind::kCorruption, "cannot diagnose '" + path +
                                              "': the model input is not finite after preprocessing (the card's mean or std?)");
    }
    if (keep_display) display.convertTo(job.display, CV_8U, 255.0);  // grey or colour, as the overlay draws it
    job.bytes = static_cast<int64_t>(job.input.total() * job.input.elemSize() + job.display.total() * job.display.elemSize());
  } catch (const Error& e) {
    r.error = e.what();
  } catch (const cv::Exception& e) {
    r.error = out_of_memory(e) ? "cannot read '" + path + "': out of memory while decoding"
                               : "cannot read '" + path + "': image decoder failed (" + e.err + ")";
  } catch (const std::bad_alloc&) {
    r.error = "cannot read '" + path + "': out of memory while decoding";
  } catch (const std::exception& e) {
    r.error = "cannot read '" + path + "': " + e.what();
  }
}

// The walker thread, the decoding workers and the bounded queue between them and the model.
// Jobs leave in input order; at most `capacity` are in flight, which keeps memory flat.
class Feeder {
 public:
  Feeder(const DiagnoseOptions& options, const model::ModelCard& card, bool keep_display, bool heatmaps)
      : options_(options), card_(card), keep_display_(keep_display), heatmaps_(heatmaps),
        namer_(options.heatmap_dir), dicom_namer_(options.dicom_dir),
        capacity_(static_cast<size_t>(std::max(4 * options.batch_size, options.batch_size + 4 * options.workers))) {
    producer_ = std::thread([this] { produce(); });
    for (int w = 0; w < std::max(1, options.workers); ++w) workers_.emplace_back([this] { work(); });
    bool uses_stdin = false;
    for (const auto& a : options.inputs) uses_stdin |= a == "-";
    if (options.count_total && !uses_stdin) counter_ = std::thread([this] { count(); });
  }
  ~Feeder() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    space_.notify_all();
    work_cv_.notify_all();
    ready_.notify_all();
    if (producer_.joinable()) producer_.join();
    for (auto& t : workers_) t.join();
    if (counter_.joinable()) counter_.join();
  }

  enum class Next { kJob, kIdle, kEnd };
  // The next job in input order once it is ready. kIdle: nothing arrived within `patience`
  // while `waiting` jobs are held by the caller (so it may process them first); kEnd: done.
  Next next(JobPtr& job, bool waiting) {
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      if (!ordered_.empty() && ordered_.front()->ready) {
        job = ordered_.front();
        ordered_.pop_front();
        space_.notify_one();
        return Next::kJob;
      }
      if (ordered_.empty() && producer_done_) return Next::kEnd;
      if (waiting && ordered_.empty()) {
        if (ready_.wait_for(lk, std::chrono::milliseconds(20)) == std::cv_status::timeout && ordered_.empty() &&
            !producer_done_) {
          return Next::kIdle;
        }
        continue;
      }
      ready_.wait(lk);
    }
  }

  // The consumer is done with jobs that held `bytes` (Job::bytes): room for more.
  void release(int64_t bytes) {
    std::lock_guard<std::mutex> lk(m_);
    bytes_ -= bytes;
    space_.notify_all();
  }

  int total() const { return counted_ ? total_.load() : -1; }
  int skipped() const { return skipped_; }
  int resumed() const { return resumed_; }
  int other_shards() const { return other_shards_; }

 private:
  // True when this run is to process the input (its shard, not recorded before).
  bool mine(const io::InputItem& item, bool count_skips) {
    if (!options_.shard.all() && shard_of(shard_key(item), options_.shard.count) != options_.shard.index) {
      if (count_skips) ++other_shards_;
      return false;
    }
    if (options_.skip_files.count(item.path)) {
      if (count_skips) ++resumed_;
      return false;
    }
    return true;
  }

  void push(JobPtr job) {
    std::unique_lock<std::mutex> lk(m_);
    space_.wait(lk, [&] {
      return stop_ || (ordered_.size() < capacity_ && (bytes_ < kQueueBudgetBytes || ordered_.empty()));
    });
    if (stop_) return;
    ordered_.push_back(job);
    if (!job->ready) {
      work_.push_back(job);
      work_cv_.notify_one();
    }
    ready_.notify_all();
  }

  void produce() {
    try {
      io::InputWalker walker(options_.inputs, options_.paths_in);
      if (heatmaps_) walker.exclude(options_.heatmap_dir);  // a rerun must not diagnose its own heatmaps
      if (!options_.dicom_dir.empty()) walker.exclude(options_.dicom_dir);  // nor its own DICOM output
      io::InputWalker::Event e;
      while (!stopped() && walker.next(e)) {
        auto job = std::make_shared<Job>();
        job->item = e.item;
        job->record.file = e.item.path;
        switch (e.kind) {
          case io::InputWalker::Kind::kItem:
            if (heatmaps_) job->stem = namer_.stem_for(e.item);
            if (!options_.dicom_dir.empty()) job->dicom_stem = dicom_namer_.stem_for(e.item);
            if (!mine(e.item, true)) continue;
            break;
          case io::InputWalker::Kind::kMissing:
            if (!mine(e.item, true)) continue;
            job->kind = Job::Kind::kMissing;
            job->record.error = "cannot read '" + e.item.path + "': " + missing_reason(e.item.path);
            job->ready = true;
            break;
          case io::InputWalker::Kind::kUnreadable:  // a failed input, with the errno's text
            if (!mine(e.item, true)) continue;
            job->kind = Job::Kind::kMissing;
            job->record.error = e.message;
            job->ready = true;
            break;
          case io::InputWalker::Kind::kSkipped:
            if (!mine(e.item, false)) continue;
            ++skipped_;
            job->kind = Job::Kind::kNotice;
            job->notice = e.message;
            job->ready = true;
            break;
        }
        push(job);
      }
    } catch (const std::exception& err) {
      auto job = std::make_shared<Job>();
      job->kind = Job::Kind::kNotice;
      job->notice = std::string("stopped looking for inputs: ") + err.what();
      job->ready = true;
      push(job);
    }
    std::lock_guard<std::mutex> lk(m_);
    producer_done_ = true;
    ready_.notify_all();
    work_cv_.notify_all();
  }

  void work() {
    for (;;) {
      JobPtr job;
      {
        std::unique_lock<std::mutex> lk(m_);
        work_cv_.wait(lk, [&] { return stop_ || !work_.empty() || producer_done_; });
        if (stop_ || (work_.empty() && producer_done_)) return;
        job = work_.front();
        work_.pop_front();
      }
      decode(*job, options_, card_, keep_display_);
      std::lock_guard<std::mutex> lk(m_);
      bytes_ += job->bytes;
      job->ready = true;
      ready_.notify_all();
    }
  }

  // Counts this run's inputs on a side thread (names and a few header bytes only).
  void count() {
    try {
      io::InputWalker walker(options_.inputs, nullptr);
      if (heatmaps_) walker.exclude(options_.heatmap_dir);
      if (!options_.dicom_dir.empty()) walker.exclude(options_.dicom_dir);
      io::InputWalker::Event e;
      int n = 0;
      while (!stopped() && walker.next(e)) {
        if (e.kind == io::InputWalker::Kind::kSkipped || !mine(e.item, false)) continue;
        total_ = ++n;
      }
      counted_ = !stopped();
    } catch (const std::exception&) {
      // Progress then shows no total; the run itself does not depend on the count.
    }
  }

  bool stopped() {
    std::lock_guard<std::mutex> lk(m_);
    return stop_;
  }

  const DiagnoseOptions& options_;
  const model::ModelCard& card_;
  const bool keep_display_, heatmaps_;
  HeatmapNamer namer_, dicom_namer_;
  const size_t capacity_;
  std::mutex m_;
  std::condition_variable space_, work_cv_, ready_;
  std::deque<JobPtr> ordered_, work_;
  bool producer_done_ = false, stop_ = false;
  int64_t bytes_ = 0;  // Job::bytes of decoded jobs not yet released by the consumer
  std::atomic<int> total_{0}, skipped_{0}, resumed_{0}, other_shards_{0};
  std::atomic<bool> counted_{false};
  std::thread producer_, counter_;
  std::vector<std::thread> workers_;
};

// The overlay's caption: the answer, the method, and for --target the class the map is for.
std::string overlay_caption(const std::vector<std::string>& classes, const std::vector<double>& p, int best, int target,
                            const std::string& method, const std::string& abstained) {
  std::string caption = (abstained.empty() ? "" : "ABSTAINED; model said ") + classes[best] + " " +
                        explain::format_probability(p[best]) + " [" + method + "]";
  if (target >= 0 && target != best) {
    caption += "\nmap for target " + classes[target] + " (p " + explain::format_probability(p[target]) + ")";
  } else if (target >= 0) {
    caption += "\nmap for target " + classes[target];
  }
  return caption;
}

}  // namespace

DiagnoseSummary run_diagnose(const DiagnoseOptions& options, const StartCallback& on_start,
                             const RecordCallback& on_record, const NoticeCallback& on_notice,
                             const ProgressCallback& on_progress) {
  const auto t0 = Clock::now();
  if (options.batch_size < 1) throw Error(ErrorKind::kInvalidArgument, "--batch-size must be at least 1");
  if (options.workers < 1) throw Error(ErrorKind::kInvalidArgument, "--workers must be at least 1");
  explain::ExplainOptions xopt;
  xopt.method = explain::parse_method(options.method);
  xopt.rollout.head_fusion = explain::parse_head_fusion(options.head_fusion);
  if (options.discard_ratio < 0.0 || options.discard_ratio >= 1.0) {
    throw Error(ErrorKind::kInvalidArgument, "--discard-ratio must be in [0, 1)");
  }
  xopt.rollout.discard_ratio = options.discard_ratio;
  xopt.occlusion_patch = options.occlusion_patch;
  xopt.occlusion_stride = options.occlusion_stride;
  xopt.saliency_sigma = options.saliency_sigma;

  auto model = model::load_model(options.model_dir);
  const auto& card = model.card;
  double scale_reference = 0;  // > 0: --heatmap-scale model
  if (options.heatmap_scale == "model") {
    const auto it = card.heatmap_scale.find(options.method);
    if (it == card.heatmap_scale.end()) {
      throw Error(ErrorKind::kInvalidArgument, "--heatmap-scale model: model '" + card.name + "' has no heatmap scale for method '" +
                                                   options.method + "' (evaluate -m MODEL VALIDATION_DATA --method " +
                                                   options.method + " --calibrate-heatmap-scale writes one)");
    }
    scale_reference = it->second;
    xopt.absolute = true;
  } else if (options.heatmap_scale != "image") {
    throw Error(ErrorKind::kInvalidArgument, "--heatmap-scale must be image or model (got '" + options.heatmap_scale + "')");
  }
  const bool heatmaps = !options.heatmap_dir.empty();
  if (heatmaps) check_writable_dir(options.heatmap_dir);
  std::unique_ptr<report::DicomWriter> dicom;
  if (!options.dicom_dir.empty()) {
    check_writable_dir(options.dicom_dir, "cannot create DICOM output directory");
    report::DicomOutOptions d;
    d.dir = options.dicom_dir;
    d.uid_root = options.uid_root;
    d.uid_seed = options.uid_seed;
    d.method = options.method;
    d.model_name = card.name;
    d.model_id = model.id();
    d.weights_sha256 = model.weights_sha256;
    d.software_version = MEDATTN_VERSION;
    d.frame = options.read.frame;
    dicom = std::make_unique<report::DicomWriter>(d);
  }
  const bool maps_needed = heatmaps || options.preview || options.thumbnail_size > 0 || dicom;
  const auto views = model::tta_views(options.tta.empty() ? card.tta : model::parse_flips(options.tta));
  xopt.flips = options.heatmap_flips.empty() ? card.heatmap_flips : model::parse_flips(options.heatmap_flips);

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

  std::unique_ptr<ClinicalTable> clinical_table;
  const auto F = static_cast<int64_t>(card.clinical.size());
  if (!options.clinical_csv.empty()) {
    if (card.clinical.empty()) {
      if (on_notice) on_notice("model '" + card.name + "' takes no clinical covariates: --clinical " + options.clinical_csv + " is not used");
    } else {
      clinical_table = std::make_unique<ClinicalTable>(options.clinical_csv, card.clinical);
      if (!clinical_table->absent().empty() && on_notice) {
        std::string names;
        for (const auto& a : clinical_table->absent()) names += (names.empty() ? "" : ", ") + a;
        on_notice("--clinical " + options.clinical_csv + " has no column " + names + ": treated as missing");
      }
    }
  } else if (F > 0 && on_notice) {
    std::string names;
    for (const auto& f : card.clinical) names += (names.empty() ? "" : ", ") + f.name;
    on_notice("model '" + card.name + "' takes clinical covariates (" + names +
              "); none given (--clinical FILE.csv), so every covariate is treated as missing");
  }

  // The OOD gate, checked like the weights (its SHA-256 against the card's) before anything runs.
  std::optional<model::GaussianStats> gate;
  if (card.ood.enabled()) gate = model::load_gate(options.model_dir, card, model::gate_feature_dim(card, card.ood.feature));

  DiagnoseSummary summary;
  summary.classes = card.classes;
  summary.model_id = model.id();
  if (on_start) on_start(card.classes, summary.model_id);

  Feeder feeder(options, card, maps_needed, heatmaps);
  auto emit = [&](report::DiagnosisRecord& r) {
    ++summary.total;
    if (!r.ok) ++summary.failed;
    if (r.ok && !r.abstained.empty()) ++summary.abstained;
    r.model = summary.model_id;
    if (on_record) on_record(r);
    if (on_progress) {
      Progress p;
      p.done = summary.total;
      p.failed = summary.failed;
      p.abstained = summary.abstained;
      p.total = feeder.total();
      p.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      on_progress(p);
    }
  };

  torch::NoGradGuard no_grad;
  const int size = card.preprocess.image_size;
  const int channels = card.preprocess.channels;
  // The model and the maps for the images of `batch` (records filled in, not emitted).
  auto run_batch = [&](std::vector<JobPtr>& batch) {
    std::vector<torch::Tensor> inputs;
    std::vector<Job*> good;
    for (auto& j : batch) {
      if (j->kind != Job::Kind::kImage || !j->record.error.empty()) continue;
      auto t = torch::empty({channels, size, size}, torch::kFloat32);
      preprocess::copy_planar(j->input, t.data_ptr<float>());
      inputs.push_back(t);
      good.push_back(j.get());
    }
    if (!good.empty()) {
      const auto x = torch::stack(inputs);
      torch::Tensor clinical;
      if (F > 0) {
        clinical = torch::empty({static_cast<int64_t>(good.size()), F}, torch::kFloat32);
        for (size_t b = 0; b < good.size(); ++b) {
          const std::vector<std::string>* row = clinical_table ? clinical_table->find(good[b]->item.path) : nullptr;
          const auto v = model::encode_clinical(card.clinical, row ? *row : std::vector<std::string>(F));
          std::memcpy(clinical[static_cast<int64_t>(b)].data_ptr<float>(), v.data(), sizeof(float) * F);
          for (int64_t f = 0; f < F; ++f) {
            if (std::isnan(v[f])) good[b]->record.clinical_missing.push_back(card.clinical[f].name);
          }
        }
      }
      torch::Tensor logits, maps, signed_maps, shares;
      std::vector<double> scores;
      const bool plain = !maps_needed && F == 0 && views.size() <= 1;
      if (gate && plain) {
        // One pass per network gives both the gate's feature and the diagnosis.
        scores = model::gate_scores(*gate, model::gate_features(model.nets, x, clinical, card.ood.feature, &logits));
      } else if (gate) {
        scores = model::gate_scores(*gate, model::gate_features(model.nets, x, clinical, card.ood.feature));
      }
      if (logits.defined()) {
        // the gate's pass above gave them
      } else if (maps_needed) {
        const auto ex = explain::explain(model.nets, x, xopt, std::vector<int>(good.size(), target), clinical, views);
        logits = ex.logits;
        maps = ex.maps;
        signed_maps = ex.signed_maps;
        if (scale_reference > 0) {
          // Comparable across images: the card's reference is 1; above it the colour saturates.
          maps = (maps / scale_reference).clamp(0.0, 1.0);
          if (signed_maps.defined()) signed_maps = (signed_maps / scale_reference).clamp(-1.0, 1.0);
        }
        maps = maps.contiguous();
        if (signed_maps.defined()) signed_maps = signed_maps.contiguous();
        if (F > 0) shares = explain::clinical_attention(model.nets, x, clinical);
      } else if (F > 0) {
        // Per network, one pass gives both the diagnosis and the attention that reached the
        // covariates; it is also the identity view of the test-time views, whose flipped views
        // take one pass each. An ensemble averages both over its networks.
        for (auto net : model.nets) {
          net->eval();
          auto o = net->forward(x, /*keep_attention=*/true, clinical);
          auto l = model::view_logits(net, x, clinical, views, o.logits);
          auto a = explain::clinical_attention(net, o);
          logits = logits.defined() ? logits + l : l;
          shares = shares.defined() ? shares + a : a;
        }
        if (model.nets.size() > 1) {
          logits = logits / static_cast<double>(model.nets.size());
          shares = shares / static_cast<double>(model.nets.size());
        }
      } else {
        logits = model::view_logits(model.nets, x, clinical, views);
      }
      if (F > 0) {
        shares = shares.contiguous();
        for (size_t b = 0; b < good.size(); ++b) {
          for (int64_t f = 0; f < F; ++f) {
            good[b]->record.clinical_attention.emplace_back(card.clinical[f].name,
                                                            shares[static_cast<int64_t>(b)][f].item<double>());
          }
        }
      }
      auto probs = torch::softmax(logits.to(torch::kFloat64) / card.temperature, 1).contiguous();
      for (size_t b = 0; b < good.size(); ++b) {
        auto& r = good[b]->record;
        const double* row = probs[static_cast<int64_t>(b)].data_ptr<double>();
        const std::vector<double> p(row, row + card.classes.size());
        if (!std::all_of(p.begin(), p.end(), [](double v) { return std::isfinite(v); })) {
          // The inputs were finite (decode checks them); weights or a card can still overflow.
          r.error = "cannot diagnose '" + good[b]->item.path + "': the model's output is not finite (NaN or infinity)";
          continue;
        }
        for (size_t c = 0; c < card.classes.size(); ++c) r.probabilities.emplace_back(card.classes[c], p[c]);
        const int best = eval::decide(p, card.threshold);
        r.diagnosis = card.classes[best];
        r.probability = p[best];
        r.ok = true;
        // Abstention: the scope checks first, then the gate.
        std::string reason;
        if (!good[b]->scope.empty()) {
          if (options.ignore_scope) {
            r.warning = good[b]->scope + " (ignored: --ignore-scope)";
          } else {
            reason = good[b]->scope;
          }
        }
        if (gate) {
          r.ood_score = scores[b];
          if (reason.empty() && scores[b] > card.ood.threshold) reason = model::gate_reason(card.ood, scores[b]);
        }
        if (!reason.empty()) {
          if (options.no_abstain) {
            r.warning += (r.warning.empty() ? "" : "; ") + reason + " (not abstained: --no-abstain)";
          } else {
            r.abstained = reason;
          }
        }
        if (!r.abstained.empty()) {
          r.diagnosis.clear();
          r.probability = 0;
        }
        if (!maps_needed) continue;
        if (injected_oom(good[b]->item.path)) throw std::bad_alloc();
        auto m = maps[static_cast<int64_t>(b)];
        // The display was kept in 8 bits; as float again it gives make_overlay the same bytes.
        cv::Mat display;
        good[b]->display.convertTo(display, CV_32F, 1.0 / 255.0);
        const cv::Mat square(size, size, CV_32FC1, m.data_ptr<float>());
        const cv::Mat heat = preprocess::map_to_original(square, good[b]->letterbox, size);
        r.attention_regions = report::attention_regions(heat);
        explain::OverlayOptions look;
        look.alpha = options.heatmap_alpha;
        look.contour_top = options.contour_top;
        look.min_side = options.overlay_min_side;
        look.legend_note = scale_reference > 0 ? "model scale" : "per image";
        look.caption = overlay_caption(card.classes, p, best, target, options.method, r.abstained);
        cv::Mat shown_heat = heat;  // what the overlay draws: the signed map for contrast
        if (signed_maps.defined()) {
          auto sm = signed_maps[static_cast<int64_t>(b)];
          shown_heat = preprocess::map_to_original(cv::Mat(size, size, CV_32FC1, sm.data_ptr<float>()), good[b]->letterbox, size);
          look.diverging = true;
          look.legend_title = "evidence";
          look.caption += "\nred: for " + card.classes[target >= 0 ? target : best] + ", blue: against";
        }
        explain::OverlayOptions plain = look;  // previews and thumbnails are too small for text
        plain.caption.clear();
        plain.legend = false;
        if (options.preview || options.thumbnail_size > 0) {
          const cv::Mat overlay = explain::make_overlay(display, shown_heat, plain);
          if (options.preview) {
            r.preview = overlay;
            r.preview_heat = heat;
          }
          if (options.thumbnail_size > 0) {
            const double scale = static_cast<double>(options.thumbnail_size) / std::max(overlay.cols, overlay.rows);
            if (scale < 1.0) {
              cv::resize(overlay, r.thumbnail, cv::Size(), scale, scale, cv::INTER_AREA);
            } else {
              r.thumbnail = overlay;
            }
          }
        }
        if (dicom && r.format != "dicom") {
          // Only a DICOM input has a study to return the results to; said once per run.
          if (summary.not_dicom++ == 0 && on_notice) {
            on_notice("--dicom-out: '" + good[b]->item.path + "' is not DICOM; it and any other non-DICOM input get no DICOM output");
          }
        } else if (dicom) {
          try {
            const auto written = dicom->write(good[b]->item.path, good[b]->dicom_stem,
                                              explain::burn_caption(explain::make_overlay(display, shown_heat, plain), look.caption), r);
            r.dicom_sc = written.sc;
            r.dicom_sr = written.sr;
            summary.dicom_objects = dicom->written();
          } catch (const Error& e) {
            r.ok = false;
            r.error = e.what();
          }
        }
        if (!heatmaps) continue;
        // A heatmap that cannot be written keeps the diagnosis: the record says why in its
        // warning (kHeatmapNotWritten), and --resume retries it when the cause was transient.
        try {
          explain::write_png(good[b]->stem + ".heatmap.png", explain::make_overlay(display, shown_heat, look));
          try {
            explain::write_png(good[b]->stem + ".heatmap-raw.png", explain::heatmap_to_u16(heat));
          } catch (const Error&) {
            std::error_code ec;
            fs::remove(good[b]->stem + ".heatmap.png", ec);  // both maps or neither
            throw;
          }
          r.heatmap = good[b]->stem + ".heatmap.png";
          r.heatmap_raw = good[b]->stem + ".heatmap-raw.png";
        } catch (const Error& e) {
          r.warning += (r.warning.empty() ? "" : "; ") + std::string(kHeatmapNotWritten) + e.what();
        }
      }
    }
  };
  // Memory that runs out (in the model or the maps) is the image's error, not the run's: the
  // batch is tried again one image at a time (results do not depend on the batch), and an
  // image that still cannot be allocated alone gets the error.
  auto process = [&](std::vector<JobPtr>& batch) {
    std::vector<report::DiagnosisRecord> saved;
    for (auto& j : batch) saved.push_back(j->record);
    try {
      run_batch(batch);
    } catch (const std::exception& e) {
      if (!out_of_memory(e)) throw;
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i]->record = saved[i];
        if (batch[i]->kind != Job::Kind::kImage || !saved[i].error.empty()) continue;
        std::vector<JobPtr> one{batch[i]};
        try {
          run_batch(one);
        } catch (const std::exception& alone) {
          if (!out_of_memory(alone)) throw;
          batch[i]->record = saved[i];
          batch[i]->record.error = "cannot diagnose '" + batch[i]->item.path + "': out of memory";
        }
      }
    }
    int64_t held = 0;
    for (auto& j : batch) {
      held += j->bytes;
      if (j->kind == Job::Kind::kNotice) {
        if (on_notice) on_notice(j->notice);
        continue;
      }
      emit(j->record);
    }
    batch.clear();
    feeder.release(held);
  };

  std::vector<JobPtr> batch;
  int good = 0;
  for (;;) {
    JobPtr job;
    const auto next = feeder.next(job, !batch.empty());
    if (next == Feeder::Next::kJob) {
      batch.push_back(job);
      if (job->kind == Job::Kind::kImage && job->record.error.empty()) ++good;
      if (good < options.batch_size) continue;
    }
    process(batch);
    good = 0;
    if (next == Feeder::Next::kEnd) break;
  }
  summary.skipped = feeder.skipped();
  summary.resumed = feeder.resumed();
  summary.other_shards = feeder.other_shards();
  summary.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return summary;
}

}  // namespace medattn::pipeline
