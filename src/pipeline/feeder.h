// The front of a diagnose run: the walker thread finding inputs, the workers decoding and
// preprocessing them, and the bounded queue that hands them to the model in input order.
// Internal to pipeline/ (run_diagnose is the public call).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>

#include "io/inputs.h"
#include "model/card.h"
#include "pipeline/batch.h"
#include "pipeline/diagnose.h"
#include "preprocess/preprocess.h"
#include "report/heatmap_files.h"
#include "report/record.h"

namespace medattn::pipeline {

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
  // After the model, when maps are drawn: what the encoding thread renders and writes (its
  // `map` is empty when the image has none: an error, or no maps asked for).
  report::MapOutputs maps;
  bool not_dicom = false;  // --dicom-out and the input is not DICOM: no DICOM output for it
};
using JobPtr = std::shared_ptr<Job>;

// Memory bounds of a run (README "Limits"): images are reduced to kMaxWorkSide on their
// longer side as they are decoded; the decoded jobs waiting for the model hold at most
// kQueueBudgetBytes (beyond one job); and an allocation that fails is that image's error.
constexpr int kMaxWorkSide = 2048;
constexpr int64_t kQueueBudgetBytes = int64_t{32} << 20;

// True for an exception that says memory ran out (std::bad_alloc, OpenCV's "Insufficient
// memory", c10's "DefaultCPUAllocator: can't allocate memory").
bool out_of_memory(const std::exception& e);

// Why a path given as input cannot be read: the errno's text (a symlink loop says so), with
// the former wording for a plain missing file.
std::string missing_reason(const std::string& path);

// Pixels (any float type and channel count) that are NaN or infinite.
int64_t count_non_finite(const cv::Mat& pixels);

// Reads and prepares one image; failures become the record's error.
void decode(Job& job, const DiagnoseOptions& options, const model::ModelCard& card, bool keep_display);

// Heatmap paths: pipeline::heatmap_stem in the heatmap folder. The name depends on the
// input's path alone (never on the other inputs, --shard or --resume).
class HeatmapNamer {
 public:
  explicit HeatmapNamer(std::string dir) : dir_(std::move(dir)) {}
  std::string stem_for(const io::InputItem& item) const { return (std::filesystem::path(dir_) / pipeline::heatmap_stem(item)).string(); }

 private:
  std::string dir_;
};

// The walker thread, the decoding workers and the bounded queue between them and the model.
// Jobs leave in input order; at most `capacity` are in flight, which keeps memory flat.
class Feeder {
 public:
  Feeder(const DiagnoseOptions& options, const model::ModelCard& card, bool keep_display, bool heatmaps);
  ~Feeder();

  enum class Next { kJob, kIdle, kEnd };
  // The next job in input order once it is ready. kIdle: nothing arrived within `patience`
  // while `waiting` jobs are held by the caller (so it may process them first); kEnd: done.
  Next next(JobPtr& job, bool waiting);

  // The consumer is done with jobs that held `bytes` (Job::bytes): room for more.
  void release(int64_t bytes);

  int total() const { return counted_ ? total_.load() : -1; }
  int skipped() const { return skipped_; }
  int resumed() const { return resumed_; }
  int other_shards() const { return other_shards_; }

 private:
  // True when this run is to process the input (its shard, not recorded before).
  bool mine(const io::InputItem& item, bool count_skips);
  void push(JobPtr job);
  void produce();
  void work();
  void count();
  bool stopped();

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

}  // namespace medattn::pipeline
