// `medattn diagnose`: binds the flags to pipeline::DiagnoseOptions and pipeline::OutputOptions,
// runs the pipeline into a pipeline::DiagnoseOutput, and prints progress and the closing summary.
#include "cli.h"

#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"
#include "core/threads.h"
#include "io/formats.h"
#include "model/card.h"
#include "pipeline/batch.h"
#include "pipeline/diagnose.h"
#include "pipeline/diagnose_output.h"
#include "report/output_format.h"
#include "report/record.h"
#include "report/terminal.h"

namespace fs = std::filesystem;

namespace medattn::cli {
namespace {

struct DiagnoseArgs {
  pipeline::DiagnoseOptions options;
  bool force_preview = false, no_preview = false, ascii = false;
  int preview_width = 0;
  std::string model;
  std::string format = "table";
  bool format_given = false;
  std::string output;
  std::string window;
  std::string shard;
  std::string report;
  bool resume = false, quiet = false;
  double max_file_mb = 2048;
  int threads = 0;
  std::string command;
};

// Progress on stderr: a line redrawn in place on a terminal, a log line every 10 s otherwise.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool quiet) : quiet_(quiet), terminal_(::isatty(STDERR_FILENO)) {}
  void update(const pipeline::Progress& p) {
    if (quiet_) return;
    const double every = terminal_ ? 0.1 : 10.0;
    if (p.seconds - last_ < every && !(p.total >= 0 && p.done == p.total)) return;
    last_ = p.seconds;
    const double rate = p.done / std::max(1e-9, p.seconds);
    // The ETA from the pace since the first record: the first one also carries the model's
    // loading and the pipeline's start, which would make a one-minute job read "ETA 22m".
    if (first_done_ < 0 && p.done > 0) {
      first_done_ = p.done;
      first_seconds_ = p.seconds;
    }
    const int since = p.done - first_done_;
    const double pace = since > 0 ? since / std::max(1e-9, p.seconds - first_seconds_) : 0.0;
    std::string line = std::to_string(p.done) + (p.total >= 0 ? "/" + std::to_string(p.total) : "") + " images";
    char buf[96];
    std::snprintf(buf, sizeof(buf), ", %.1f images/s", rate);
    line += buf;
    if (p.total >= 0 && pace > 0 && since >= 2) line += ", ETA " + format_seconds(std::max(0, p.total - p.done) / pace);
    if (p.failed > 0) line += ", " + std::to_string(p.failed) + " failed";
    if (terminal_) {
      std::fprintf(stderr, "\r\x1b[K%s", line.c_str());
      std::fflush(stderr);
      drawn_ = true;
    } else {
      spdlog::info("progress: {}", line);
    }
  }
  // Clears the progress line so that a log line can be printed.
  void clear() {
    if (drawn_) {
      std::fprintf(stderr, "\r\x1b[K");
      std::fflush(stderr);
      drawn_ = false;
    }
  }

 private:
  bool quiet_, terminal_;
  double last_ = -1e9;
  int first_done_ = -1;
  double first_seconds_ = 0;
  bool drawn_ = false;
};

int run_diagnose_command(DiagnoseArgs& args) {
  auto& opt = args.options;
  opt.model_dir = args.model.empty() ? default_model_dir() : args.model;
  opt.paths_in = &std::cin;
  opt.read.max_file_bytes = static_cast<int64_t>(args.max_file_mb * 1048576.0);
  if (!args.window.empty()) opt.read.window = parse_window(args.window);
  if (!args.shard.empty()) opt.shard = pipeline::parse_shard(args.shard);

  pipeline::OutputOptions o;
  o.path = args.output;
  o.format = args.format_given ? args.format : "";  // else from -o's extension
  o.resume = args.resume;
  o.report = args.report;
  o.command = args.command;
  // The terminal view: previews and colours only when a person is looking (stdout is a
  // terminal and the format is table), unless --preview forces the preview.
  const bool terminal = args.output.empty() && ::isatty(STDOUT_FILENO);
  const bool table_format = report::resolve_output_format(o.format, o.path).id == report::Format::kTable;
  o.table.colour = terminal && std::getenv("NO_COLOR") == nullptr;
  o.table.preview = table_format && !args.no_preview && (terminal || args.force_preview);
  o.table.colour_mode = static_cast<int>(args.ascii ? report::ColourMode::kAscii : report::detect_colour_mode());
  int columns = 80;
  if (struct winsize ws {}; terminal && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) columns = ws.ws_col;
  o.table.preview_width = args.preview_width > 0 ? args.preview_width : std::clamp(columns - 2, 16, 64);
  opt.preview = o.table.preview;

  // Checks, locks and reads back (--resume) before anything runs (pipeline/diagnose_output.h).
  pipeline::DiagnoseOutput output(o, opt);
  // The decoding workers and the heatmap encoder run beside the model. On N threads the model
  // computes on N - 1 of them: its OpenMP threads wait at every operator's barrier, spinning,
  // for a thread a decoder has preempted. On 2 cores that ran 1000 chest X-rays 25% (no
  // heatmaps) to 34% (heatmaps) slower than one model thread (docs/performance.md). Records do
  // not depend on it (model/net.cpp).
  const int threads = resolve_threads(args.threads);
  set_threads(std::max(1, threads - 1));
  if (args.resume) {
    const auto& recorded = output.recorded();
    if (recorded.truncated) spdlog::warn("{}: removed a record cut short by an earlier crash", args.output);
    if (recorded.retried > 0) {
      spdlog::info("{}: {} record(s) failed for a transient reason (disk full, I/O error, ...) and are diagnosed again",
                   args.output, recorded.retried);
    }
    if (recorded.other_model > 0) {
      spdlog::warn("{}: {} record(s) were written by another model and are diagnosed again", args.output, recorded.other_model);
    }
    spdlog::info("resuming: {} input(s) already recorded in {}", recorded.files.size(), args.output);
  }

  ProgressPrinter progress(args.quiet);
  std::string intended_use;  // for the closing summary
  const auto summary = pipeline::run_diagnose(
      opt,
      [&](const std::vector<std::string>& classes, const std::string& id) {
        output.start(classes, id);
        const auto card = model::read_card(opt.model_dir);
        const auto& use = card.intended_use;
        intended_use = use.description + (use.modalities.empty() ? "" : " (DICOM " + model::join_list(use.modalities) + ")") +
                       (use.age_years ? "; patients aged " + model::describe_ages(*use.age_years) : "") +
                       (card.ood.enabled() ? "; OOD gate above " + fmt::format("{:.2f}", card.ood.threshold) : "; no OOD gate");
      },
      [&](const report::DiagnosisRecord& r) {
        if (!r.ok) {
          progress.clear();
          spdlog::error("{}", printable(r.error));
        }
        output.write(r);
      },
      [&](const std::string& notice) {
        progress.clear();
        spdlog::info("{}", printable(notice));
      },
      [&](const pipeline::Progress& p) { progress.update(p); });
  progress.clear();
  report::RunTotals totals;
  totals.seconds = summary.seconds;
  totals.threads = threads;
  totals.workers = opt.workers;
  totals.shard = args.shard;
  totals.resumed = summary.resumed;
  output.finish(totals);
  if (!args.report.empty()) spdlog::info("wrote report {}", args.report);
  // The closing summary: counts per diagnosis, failures by reason, time and rate.
  const auto& counts = output.counts();
  const int ok = summary.total - summary.failed - summary.abstained;
  spdlog::info("diagnosed {} of {} image(s), {} failed, {} abstained, {} skipped, in {} ({:.1f} images/s)", ok, summary.total,
               summary.failed, summary.abstained, summary.skipped, format_seconds(summary.seconds),
               summary.total / std::max(1e-9, summary.seconds));
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  spdlog::info("  peak memory {:.0f} MB", usage.ru_maxrss / 1024.0);  // ru_maxrss is in KB on Linux
  for (const auto& [name, n] : counts.per_diagnosis) spdlog::info("  {}: {}", name, n);
  for (const auto& [reason, n] : counts.per_abstention) spdlog::info("  abstained, {}: {}", reason, n);
  for (const auto& [reason, n] : counts.per_reason) spdlog::info("  failed, {}: {}", reason, n);
  if (!intended_use.empty()) spdlog::info("  model intended use: {}", intended_use);
  if (!opt.dicom_dir.empty()) {
    spdlog::info("  wrote {} DICOM object(s) (Secondary Capture and SR) to {}{}", summary.dicom_objects, opt.dicom_dir,
                 summary.not_dicom > 0 ? fmt::format("; {} non-DICOM input(s) have none", summary.not_dicom) : "");
  }
  if (summary.resumed > 0) spdlog::info("  {} input(s) already recorded in {} were not repeated", summary.resumed, args.output);
  if (!opt.shard.all()) spdlog::info("  shard {}: {} input(s) left to the other shards", args.shard, summary.other_shards);
  if (counts.heatmap_failures > 0) {
    spdlog::warn("  {} heatmap(s) not written (the diagnoses are kept; --resume retries them)", counts.heatmap_failures);
  }
  if (summary.total == 0 && summary.resumed == 0 && summary.other_shards == 0) {
    spdlog::error("no images found in the given inputs");
    return kExitSomeFailed;
  }
  return summary.failed > 0 || counts.heatmap_failures > 0 ? kExitSomeFailed : kExitOk;
}

}  // namespace

Command add_diagnose(CLI::App& app) {
  auto d = std::make_shared<DiagnoseArgs>();
  auto* diagnose = app.add_subcommand("diagnose", "Diagnose images, DICOM/NIfTI files and folders; optionally write heatmaps");
  diagnose->add_option("inputs", d->options.inputs, "Image files and folders (searched recursively): " + io::supported_formats())
      ->required();
  diagnose->add_option("-m,--model", d->model, "Model directory (default: models/pneumonia-cxr, or $MEDATTN_MODEL)")
      ->check(kNotEmpty)->type_name(kDir);
  diagnose->add_option("--format", d->format, report::output_format_help())
      ->check(CLI::IsMember(report::output_format_names()))->capture_default_str();
  diagnose->add_option("-o,--output", d->output, "Write results to FILE instead of standard output");
  diagnose->add_option("--heatmaps", d->options.heatmap_dir, "Write an overlay PNG and a 16-bit raw map per image to DIR")
      ->type_name(kDir);
  diagnose->add_option("--dicom-out", d->options.dicom_dir,
                       "Per DICOM input, write a Secondary Capture of the overlay and a Structured Report in its study to DIR")
      ->type_name(kDir);
  diagnose->add_option("--uid-root", d->options.uid_root, "--dicom-out: root of the UIDs made (default: DCMTK's, "
                                                           "1.2.276.0.7230010.3.1.4)");
  diagnose->add_option("--uid-seed", d->options.uid_seed,
                       "--dicom-out: derive every UID from this text and the input, so that a rerun gives the same UIDs");
  add_method_option(*diagnose, d->options.explain.method)->capture_default_str();
  diagnose->add_option("--target", d->options.target, "Explain this class instead of the diagnosis (two-class models: unsigned maps look alike for both classes; use --method contrast)");
  diagnose->add_option("--clinical", d->options.clinical_csv,
                       "CSV of clinical covariates (a path column and the model's covariate columns) for models that take them");
  add_flip_options(*diagnose, d->options.tta, d->options.heatmap_flips);
  add_method_flags(*diagnose, d->options.explain);
  diagnose->add_option("--heatmap-alpha", d->options.heatmap_alpha, "Overlay opacity at the hottest point, in [0,1]")
      ->check(in_range(0.0, 1.0))->capture_default_str();
  diagnose->add_flag("--preview", d->force_preview, "Draw the heatmap preview even when stdout is not a terminal");
  diagnose->add_flag("--no-preview", d->no_preview, "Do not draw the heatmap preview in the terminal");
  diagnose->add_option("--preview-width", d->preview_width, "Preview width in characters (default: the terminal's, at most 64)")
      ->check(in_range(8, 1000));
  diagnose->add_flag("--ascii", d->ascii, "Draw the preview with plain ASCII shades instead of colour");
  diagnose->add_option("--contour", d->options.contour_top, "Outline the top fraction of the heatmap, e.g. 0.05 (0 = off)")
      ->check(in_range(0.0, 1.0))->capture_default_str();
  diagnose->add_option("--heatmap-scale", d->options.heatmap_scale,
                       "How maps become colours: image (each map from its own minimum to maximum, so every map has a hot "
                       "spot) or model (divided by the model's reference from evaluate --calibrate-heatmap-scale: "
                       "comparable across images, a weak map stays cold)")
      ->check(CLI::IsMember({"image", "model"}))->capture_default_str();
  diagnose->add_option("--overlay-size", d->options.overlay_min_side,
                       "Enlarge the overlay's image to at least this many pixels on its shorter side, so that the caption and "
                       "legend (drawn beside it, never over it) stay readable on small images (0 = the image's own size)")
      ->check(in_range(0, 8192))->capture_default_str();
  diagnose->add_option("--png-compression", d->options.png_compression,
                       "zlib level of the heatmap PNGs: 0 (fastest, largest files) to 9 (smallest, slowest); the pixels are the "
                       "same at every level (default: medattn's fast writer, level 1 with run-length matching and the Up filter)")
      ->check(in_range(0, 9));
  diagnose->add_option("--window", d->window,
                       "Window CENTER,WIDTH overriding the file's (e.g. 40,400 for CT soft tissue). It sets the model's input as "
                       "well as the display, so it can change the diagnosis; the record keeps the window used");
  diagnose->add_option("--frame", d->options.read.frame, "DICOM multi-frame: frame to read (0-based)")->check(in_range(0, 1000000))->capture_default_str();
  diagnose->add_option("--slice", d->options.read.slice, "NIfTI 3D: axial slice to read (0-based; default: the middle one)")
      ->check(in_range(0, 32767));
  diagnose->add_option("--max-pixels", d->options.read.max_pixels, "Refuse images (frames, slices) with more pixels than this")
      ->check(in_range<int64_t>(1, 1000000000000))->capture_default_str();
  diagnose->add_option("--max-file-size", d->max_file_mb, "Refuse files larger than this many MB (at most 1048576, 1 TB)")
      ->check(in_range(0.0, 1048576.0, /*lo_excluded=*/true))->capture_default_str();
  diagnose->add_option("--max-frames", d->options.read.max_frames, "Refuse DICOM files with more frames (NIfTI: more slices x volumes)")
      ->check(in_range<int64_t>(1, 1000000))->capture_default_str();
  diagnose->add_option("--threads", d->threads, "Threads (default: all cores; at most 256): the model computes on all but one, which the decoding and heatmap threads share")->check(in_range(0, kMaxThreads));
  diagnose->add_option("--batch-size", d->options.batch_size, "Images per forward pass (at most 4096)")->check(in_range(1, 4096))->capture_default_str();
  diagnose->add_option("--workers", d->options.workers, "Threads decoding and preprocessing images ahead of the model")
      ->check(in_range(1, 64))->capture_default_str();
  diagnose->add_flag("--resume", d->resume, "Skip inputs already recorded in -o FILE (jsonl or csv) by the same model, and append");
  diagnose->add_option("--shard", d->shard, "Process only shard K of N (0 <= K < N), split by a stable hash of each input's relative path");
  diagnose->add_option("--report", d->report, "Also write a self-contained HTML report (sortable table, heatmap thumbnails)");
  diagnose->add_flag("-q,--quiet", d->quiet, "No progress display");
  diagnose->add_flag("--ignore-scope", d->options.ignore_scope,
                     "Diagnose images that fail the card's scope checks (DICOM modality/body part, near-constant, too small, "
                     "colour for a grey model); the record gets a warning instead");
  diagnose->add_flag("--no-abstain", d->options.no_abstain,
                     "Never abstain: keep the diagnosis when a scope check or the OOD gate says no, and flag it in the record's warning");
  diagnose->footer("Examples:\n  medattn diagnose --format json --heatmaps out/ scans/ chest.dcm knee.png\n"
                   "  medattn diagnose archive/ -o results.jsonl --resume --report report.html\n"
                   "  find archive -name '*.dcm' | medattn diagnose - -o results.csv\n"
                   "  medattn diagnose archive/ --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT -o part-$SLURM_ARRAY_TASK_ID.jsonl");
  return {diagnose, [d, diagnose](const std::string& command) {
            d->format_given = diagnose->count("--format") > 0;
            d->command = command;
            return run_diagnose_command(*d);
          }};
}

}  // namespace medattn::cli
