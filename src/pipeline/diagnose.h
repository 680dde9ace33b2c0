// `diagnose` as a library call: inputs in, one record per image out through a callback.
#pragma once

#include <functional>
#include <iosfwd>
#include <set>
#include <string>
#include <vector>

#include "explain/registry.h"
#include "io/image.h"
#include "pipeline/batch.h"
#include "report/record.h"

namespace medattn::pipeline {

struct DiagnoseOptions {
  std::string model_dir;             // REQUIRES: not empty
  std::vector<std::string> inputs;   // files, directories (searched recursively), "-" = paths on paths_in
  std::istream* paths_in = nullptr;  // where "-" reads paths from (the app passes std::cin)
  std::string heatmap_dir;           // empty: no heatmaps
  // --dicom-out DIR: per DICOM input, a Secondary Capture of the overlay and a Comprehensive SR
  // in the input's study (report/dicom_out.h); empty: none. UIDs under uid_root (empty:
  // DCMTK's), derived from uid_seed when it is given (the same on every run), else random.
  std::string dicom_dir, uid_root, uid_seed;
  io::ReadOptions read;              // --window, --frame, --slice
  int batch_size = 8;                // images per forward pass
  int workers = 2;                   // threads decoding and preprocessing ahead of the model
  Shard shard;                       // process only the inputs of this shard (--shard K/N)
  std::set<std::string> skip_files;  // inputs (paths as given) already recorded (--resume)
  // Heatmap method and its options (explain/registry.h); saliency by default (chosen by
  // measurement: see README). `flips` and `absolute` are set from heatmap_flips and heatmap_scale.
  explain::ExplainOptions explain = explain::options_for(explain::kDefaultMethod);
  std::string target;                // explain this class (name, case-insensitive); empty = the diagnosis
  double heatmap_alpha = 0.5;        // overlay opacity at the hottest point
  double contour_top = 0.0;          // > 0: outline the top fraction of the heatmap (e.g. 0.05)
  int overlay_min_side = 256;        // the overlay's image part is enlarged to at least this (0: as is)
  // How maps are scaled to the colours: "image" (each map by its own minimum and maximum: every
  // map has a hot spot) or "model" (the method's values divided by the card's heatmap_scale
  // reference for the method, clipped: comparable across images, a weak map stays cold).
  std::string heatmap_scale = "image";
  bool preview = false;              // compute heatmaps and attach the overlay to each record
  int thumbnail_size = 0;            // > 0: attach an overlay thumbnail this many pixels on its long side
  // zlib level of the heatmap PNGs, 0 (fastest, largest) to 9 (smallest); -1: the fast default
  // (explain/png.h). The pixels are the same at every level (--png-compression).
  int png_compression = -1;
  // CSV of clinical covariates with a `path` column (and the model's covariate columns), for
  // models that take them. A row matches an input whose path resolves to the same file (a
  // relative path is taken from the CSV's folder), else whose file name is the same when that
  // name is unique in the CSV. Inputs without a row have every covariate missing.
  std::string clinical_csv;
  // Test-time augmentation: empty = the card's; otherwise model::parse_flips ("none", "hflip",
  // "hflip,vflip"), which overrides the card's (its temperature was fitted on the card's views).
  std::string tta;
  // Heatmaps: average over these flips (model::parse_flips); empty = the card's heatmap flips.
  std::string heatmap_flips;
  bool count_total = true;           // count the inputs on a side thread, for progress and ETA
  // Scope checks (pipeline/scope.h) and the card's OOD gate (model/ood.h) make diagnose abstain:
  // the record gets `abstained` and no diagnosis. --ignore-scope turns the scope checks into a
  // record warning; --no-abstain keeps every diagnosis and turns any abstention into a warning.
  bool ignore_scope = false;
  bool no_abstain = false;
};

struct DiagnoseSummary {
  int total = 0;    // records produced (images attempted, missing arguments included)
  int failed = 0;   // records with an error
  int abstained = 0;  // records without a diagnosis because a scope check or the OOD gate said no
  int skipped = 0;  // non-image files skipped with a notice
  int resumed = 0;  // inputs left out because skip_files holds them
  int other_shards = 0;  // inputs left to the other shards
  int dicom_objects = 0;  // --dicom-out: DICOM objects written (an SC and an SR per input)
  int not_dicom = 0;      // --dicom-out: inputs diagnosed that are not DICOM (no DICOM output)
  double seconds = 0;
  std::vector<std::string> classes;  // the model's classes, in order
  std::string model_id;              // LoadedModel::id()
};

struct Progress {
  int done = 0, failed = 0, abstained = 0;
  int total = -1;  // inputs this run will process; -1 while still counting (or reading stdin)
  double seconds = 0;
};

using RecordCallback = std::function<void(const report::DiagnosisRecord&)>;
using NoticeCallback = std::function<void(const std::string&)>;
using ProgressCallback = std::function<void(const Progress&)>;
// Called once the model is loaded, before any record: the model's classes in order, and its id.
using StartCallback = std::function<void(const std::vector<std::string>& classes, const std::string& model_id)>;

// Diagnoses every input in input order, calling on_record as each finishes. Inputs are found
// lazily and decoded by `workers` threads ahead of the model through a bounded queue, so
// memory does not grow with the number of inputs. A bad input becomes a record with an error
// and the run carries on. Heatmaps are written atomically before their record is passed on.
// All callbacks run on the calling thread. Throws medattn::Error only when nothing can run:
// kModel (model missing or invalid), kIOError (heatmap directory not writable),
// kInvalidArgument (bad option value).
DiagnoseSummary run_diagnose(const DiagnoseOptions& options, const StartCallback& on_start,
                             const RecordCallback& on_record, const NoticeCallback& on_notice,
                             const ProgressCallback& on_progress = nullptr);

}  // namespace medattn::pipeline
