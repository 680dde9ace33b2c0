// `diagnose` as a library call: inputs in, one record per image out through a callback.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "io/image.h"
#include "report/record.h"

namespace medattn::pipeline {

struct DiagnoseOptions {
  std::string model_dir;             // REQUIRES: not empty
  std::vector<std::string> inputs;   // files and directories (searched recursively)
  std::string heatmap_dir;           // empty: no heatmaps
  io::ReadOptions read;              // --window, --frame, --slice
  int batch_size = 8;                // images per forward pass
  // Heatmap method: saliency (default, chosen by measurement: see README), rollout, gradcam,
  // attn-grad, occlusion.
  std::string method = "saliency";
  std::string target;                // explain this class (name, case-insensitive); empty = the diagnosis
  std::string head_fusion = "mean";  // rollout: mean, max or min over heads
  double discard_ratio = 0.0;        // rollout: share of lowest weights dropped per row
  int occlusion_patch = 16;          // occlusion: patch side in model-input pixels
  int occlusion_stride = 8;          // occlusion: step between patches
  double heatmap_alpha = 0.5;        // overlay opacity at the hottest point
  double contour_top = 0.0;          // > 0: outline the top fraction of the heatmap (e.g. 0.05)
  bool preview = false;              // compute heatmaps and attach the overlay to each record
};

struct DiagnoseSummary {
  int total = 0;   // records produced (images attempted, missing arguments included)
  int failed = 0;  // records with an error
  int skipped = 0; // non-image files skipped with a notice
  double seconds = 0;
  std::vector<std::string> classes;  // the model's classes, in order
};

using RecordCallback = std::function<void(const report::DiagnosisRecord&)>;
using NoticeCallback = std::function<void(const std::string&)>;
// Called once the model is loaded, before any record: the model's classes in order.
using StartCallback = std::function<void(const std::vector<std::string>& classes)>;

// Diagnoses every input in order, calling on_record as each finishes. A bad input becomes
// a record with an error and the run carries on. Throws medattn::Error only when nothing can
// run: kModel (model missing or invalid), kIOError (heatmap directory not writable),
// kInvalidArgument (bad option value).
DiagnoseSummary run_diagnose(const DiagnoseOptions& options, const StartCallback& on_start,
                             const RecordCallback& on_record, const NoticeCallback& on_notice);

// Sets the threads used by LibTorch and OpenCV; n <= 0 means all cores. Returns the count.
int set_threads(int n);

}  // namespace medattn::pipeline
