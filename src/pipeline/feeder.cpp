#include "pipeline/feeder.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <new>

#include "core/error.h"
#include "core/fs.h"
#include "io/image.h"
#include "pipeline/batch.h"
#include "pipeline/scope.h"
#include "report/dicom_out.h"

namespace medattn::pipeline {

// True for an exception that says memory ran out (std::bad_alloc, OpenCV's "Insufficient
// memory", c10's "DefaultCPUAllocator: can't allocate memory").
bool out_of_memory(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return true;
  const std::string what = e.what();
  return what.find("Insufficient memory") != std::string::npos || what.find("can't allocate memory") != std::string::npos ||
         what.find("out of memory") != std::string::npos || what.find("Failed to allocate") != std::string::npos;
}

std::string missing_reason(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 || errno == ENOENT) return "no such file or directory";
  return errno_text(errno);
}

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
    // Pixels decoded by OpenCV from 8- or 16-bit files are integers: only other sources are checked.
    const bool integer_pixels = image.bits_stored <= 16 && (image.format == io::FileFormat::kPng || image.format == io::FileFormat::kJpeg ||
                                                            image.format == io::FileFormat::kBmp || image.format == io::FileFormat::kTiff);
    if (const int64_t bad = integer_pixels ? 0 : count_non_finite(image.pixels); bad > 0) {
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
    // The model's view (grey for a grey model) once, for the scope check and the input alike.
    const cv::Mat view = preprocess::to_channels(display, config.channels);
    job.scope = scope_check(image, display, card, ScopeLimits{}, config.channels == 1 ? view : cv::Mat());
    job.input = preprocess::prepare_display(view, config, &job.letterbox);
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

Feeder::Feeder(const DiagnoseOptions& options, const model::ModelCard& card, bool keep_display, bool heatmaps)
    : options_(options), card_(card), keep_display_(keep_display), heatmaps_(heatmaps),
      namer_(options.heatmap_dir), dicom_namer_(options.dicom_dir),
      capacity_(static_cast<size_t>(std::max(4 * options.batch_size, options.batch_size + 4 * options.workers))) {
  producer_ = std::thread([this] { produce(); });
  for (int w = 0; w < std::max(1, options.workers); ++w) workers_.emplace_back([this] { work(); });
  bool uses_stdin = false;
  for (const auto& a : options.inputs) uses_stdin |= a == "-";
  if (options.count_total && !uses_stdin) counter_ = std::thread([this] { count(); });
}

Feeder::~Feeder() {
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

Feeder::Next Feeder::next(JobPtr& job, bool waiting) {
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

void Feeder::release(int64_t bytes) {
  std::lock_guard<std::mutex> lk(m_);
  bytes_ -= bytes;
  space_.notify_all();
}

bool Feeder::mine(const io::InputItem& item, bool count_skips) {
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

void Feeder::push(JobPtr job) {
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

void Feeder::produce() {
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

void Feeder::work() {
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
void Feeder::count() {
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

bool Feeder::stopped() {
  std::lock_guard<std::mutex> lk(m_);
  return stop_;
}

}  // namespace medattn::pipeline
