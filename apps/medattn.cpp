// medattn: the command-line front end. Binds flags to the library's option structs, calls
// one library function per command, and maps the outcome to the exit codes of
// ../shared/CLI.md: 0 all inputs succeeded, 1 some failed, 2 usage error, 3 nothing could run.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <csignal>
#include <cstdlib>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"
#include "eval/metrics.h"
#include "eval/shift.h"
#include "eval/model_checks.h"
#include "explain/overlay.h"
#include "io/image.h"
#include "model/card.h"
#include "phantom/phantom.h"
#include "pipeline/diagnose.h"
#include "pipeline/version.h"
#include "pipeline/batch.h"
#include "pipeline/earlier_records.h"
#include "report/html_report.h"
#include "report/output_file.h"
#include "report/record.h"
#include "report/roc_plot.h"
#include "report/terminal.h"
#include "train/fit_ood.h"
#include "train/pretrain.h"
#include "train/train.h"

namespace fs = std::filesystem;
using namespace medattn;

namespace {

// CLI11 checks that let nothing odd through. CLI11's own ranges accept nan and print the
// limits of double in 309 digits; these want a finite number (a whole one for integer
// options) in [lo, hi] ("(lo" when lo itself is excluded) and say so in one short line:
// "--threads: must be a whole number in [0, 256] (got 100000)".
std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  return buf;
}

// `-m ''` names no model: a usage error, never the default model (README "Limits").
const CLI::Validator kNotEmpty(
    [](std::string& text) -> std::string { return text.empty() ? "must not be empty" : ""; }, "");

template <typename T>
CLI::Validator in_range(T lo, T hi, bool lo_excluded = false) {
  constexpr bool kWhole = std::is_integral_v<T>;
  const std::string range = std::string(lo_excluded ? "(" : "[") + short_number(static_cast<double>(lo)) + ", " +
                            short_number(static_cast<double>(hi)) + "]";
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        const std::string got = text.size() > 24 ? text.substr(0, 21) + "..." : text;
        const std::string problem = std::string("must be ") + (kWhole ? "a whole number" : "a number") + " in " + range + " (got " + got + ")";
        if (kWhole) {
          const size_t digits = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
          if (text.size() == digits || text.size() > 19 || text.find_first_not_of("0123456789", digits) != std::string::npos) return problem;
        }
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v)) return problem;
        if (v < static_cast<double>(lo) || v > static_cast<double>(hi) || (lo_excluded && v == static_cast<double>(lo))) return problem;
        return "";
      },
      range);
}

// A list of flips (model::parse_flips), checked when the flag is read.
const CLI::Validator kFlips(
    [](std::string& text) -> std::string {
      try {
        model::parse_flips(text);
      } catch (const Error& e) {
        return e.what();
      }
      return "";
    },
    "FLIPS");

// Thread counts above this are refused: more threads than any machine this runs on has
// cores only cost time (100000 used to create threads one by one for minutes).
constexpr int kMaxThreads = 256;

constexpr int kExitOk = 0, kExitSomeFailed = 1, kExitUsage = 2, kExitCannotRun = 3;
constexpr const char* kDefaultModel = "pneumonia-cxr";

// The default model: $MEDATTN_MODEL, else models/<default> beside the executable's build
// folder or under an installation's share/medattn/, else in the source tree it was built from.
std::string default_model_dir() {
  if (const char* env = std::getenv("MEDATTN_MODEL"); env != nullptr && *env) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // build/medattn -> models/; an installed bin/medattn -> share/medattn/models/.
    for (const fs::path& base : {exe.parent_path().parent_path(), exe.parent_path(),
                                 exe.parent_path().parent_path() / "share" / "medattn"}) {
      const fs::path candidate = base / "models" / kDefaultModel;
      if (fs::exists(candidate / model::kCardFile, ec)) return candidate.string();
    }
  }
  return (fs::path(MEDATTN_SOURCE_DIR) / "models" / kDefaultModel).string();
}

std::string quote_arg(const std::string& a) {
  if (!a.empty() && a.find_first_of(" \t\"'$\\") == std::string::npos) return a;
  std::string q = "'";
  for (char c : a) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string command_line(int argc, char** argv) {
  std::string s = "medattn";
  for (int i = 1; i < argc; ++i) s += " " + quote_arg(argv[i]);
  return s;
}

int exit_code_for(const Error& e) {
  return e.kind() == ErrorKind::kInvalidArgument ? kExitUsage : kExitCannotRun;
}

std::string format_seconds(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof(buf), "%.1f s", s);
  else std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return buf;
}

// Parses "C,W" for --window.
io::Window parse_window(const std::string& text) {
  io::Window w;
  char comma = 0;
  std::istringstream in(text);
  if (!(in >> w.center >> comma >> w.width) || comma != ',' || !in.eof() || w.width < 1) {
    throw Error(ErrorKind::kInvalidArgument, "--window expects CENTER,WIDTH with WIDTH >= 1 (got '" + text + "')");
  }
  return w;
}

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

// -o FILE for jsonl and csv: appends whole records, one write each, so that a crash leaves
// complete lines only (and --resume repairs a cut-off last line anyway).
int run_diagnose_command(DiagnoseArgs& args) {
  auto& opt = args.options;
  opt.model_dir = args.model.empty() ? default_model_dir() : args.model;
  opt.paths_in = &std::cin;
  opt.read.max_file_bytes = static_cast<int64_t>(args.max_file_mb * 1048576.0);
  if (!args.window.empty()) opt.read.window = parse_window(args.window);
  if (!args.format_given && !args.output.empty()) {
    // -o results.jsonl implies --format jsonl (likewise .json and .csv).
    const std::string ext = fs::path(args.output).extension().string();
    if (ext == ".jsonl" || ext == ".json" || ext == ".csv") args.format = ext.substr(1);
  }
  const auto format = report::parse_format(args.format);
  if (!args.shard.empty()) opt.shard = pipeline::parse_shard(args.shard);
  if (args.resume && (args.output.empty() || (format != report::Format::kJsonl && format != report::Format::kCsv))) {
    throw Error(ErrorKind::kInvalidArgument, "--resume needs -o FILE in jsonl or csv format (the records already written are read back)");
  }
  // Outputs are checked before anything runs: never an input, a model file or another output
  // of this run; never a folder, a missing or unwritable folder (report/output_file.h).
  {
    std::vector<report::OutputCheck> outputs;
    if (!args.output.empty()) outputs.push_back({args.output, "output"});
    if (!args.report.empty()) outputs.push_back({args.report, "report"});
    report::check_outputs(outputs, opt.inputs, opt.model_dir);
    if (!opt.heatmap_dir.empty()) {
      for (const auto& o : outputs) {
        std::error_code ec;
        if (fs::weakly_canonical(o.path, ec) == fs::weakly_canonical(opt.heatmap_dir, ec)) {
          throw file_error(ErrorKind::kInvalidArgument, "refusing to write", o.path, "it is also the heatmap folder of this run");
        }
      }
    }
  }
  const int threads = pipeline::set_threads(args.threads);
  const bool csv = format == report::Format::kCsv;

  // One run at a time per output: the lock is taken before the file is read or changed.
  std::unique_ptr<report::OutputLock> lock;
  if (!args.output.empty()) {
    lock = std::make_unique<report::OutputLock>(args.output);
    // Temporaries of this output that killed runs left behind.
    const std::string dir = fs::path(args.output).parent_path().string();
    remove_stale_temporaries(dir, fs::path(args.output).filename().string());
  }
  if (!args.report.empty()) remove_stale_temporaries(fs::path(args.report).parent_path().string(), fs::path(args.report).filename().string());

  // What an earlier run recorded; read before the model loads so a bad file fails fast.
  pipeline::Recorded recorded;
  bool append = false;
  if (args.resume) {
    const std::string header = csv ? report::csv_header(model::read_card(opt.model_dir).classes) : "";
    recorded = pipeline::read_recorded(args.output, csv, model::model_id(opt.model_dir), header);
    if (recorded.truncated) spdlog::warn("{}: removed a record cut short by an earlier crash", args.output);
    if (recorded.retried > 0) {
      spdlog::info("{}: {} record(s) failed for a transient reason (disk full, I/O error, ...) and are diagnosed again",
                   args.output, recorded.retried);
    }
    if (recorded.other_model > 0) {
      spdlog::warn("{}: {} record(s) were written by another model and are diagnosed again", args.output, recorded.other_model);
    }
    spdlog::info("resuming: {} input(s) already recorded in {}", recorded.files.size(), args.output);
    opt.skip_files = std::move(recorded.files);
    std::error_code ec;
    append = fs::exists(args.output, ec) && fs::file_size(args.output, ec) > 0;
  }

  // Every write is checked (FdStream): the first failure stops the run with the errno's text,
  // and jsonl/csv files are cut back to their last whole record.
  std::unique_ptr<TempFile> json_tmp;  // json is one array: a temporary file renamed when complete
  int out_fd = STDOUT_FILENO;
  struct FdCloser {
    int fd = -1;
    ~FdCloser() {
      if (fd >= 0) ::close(fd);
    }
  } owned_fd;
  if (!args.output.empty()) {
    if (format == report::Format::kJson) {
      json_tmp = std::make_unique<TempFile>(args.output, "cannot write output");
      out_fd = json_tmp->fd();
    } else {
      out_fd = owned_fd.fd = report::open_append(args.output, /*truncate=*/!append);
    }
  }
  report::FdStream out_stream(out_fd, /*rollback=*/!args.output.empty() && !json_tmp);
  std::ostream* out = &out_stream;
  const std::string out_name = args.output.empty() ? "<standard output>" : args.output;
  const auto check_out = [&] {
    if (out_stream.error() != 0) throw file_error(ErrorKind::kIOError, "cannot write output", out_name, errno_text(out_stream.error()));
  };
  // The terminal view: previews and colours only when a person is looking (stdout is a
  // terminal and the format is table), unless --preview forces the preview.
  const bool terminal = args.output.empty() && ::isatty(STDOUT_FILENO);
  report::TableOptions table;
  table.colour = terminal && std::getenv("NO_COLOR") == nullptr;
  table.preview = format == report::Format::kTable && !args.no_preview && (terminal || args.force_preview);
  table.colour_mode = static_cast<int>(args.ascii ? report::ColourMode::kAscii : report::detect_colour_mode());
  int columns = 80;
  if (struct winsize ws {}; terminal && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) columns = ws.ws_col;
  table.preview_width = args.preview_width > 0 ? args.preview_width : std::clamp(columns - 2, 16, 64);
  opt.preview = table.preview;
  if (!args.report.empty()) opt.thumbnail_size = 160;
  std::unique_ptr<report::RecordWriter> writer;
  std::unique_ptr<report::HtmlReport> html;
  ProgressPrinter progress(args.quiet);
  std::string intended_use;  // for the closing summary
  std::map<std::string, int> per_diagnosis, per_reason, per_abstention;
  int heatmap_failures = 0;
  const auto summary = pipeline::run_diagnose(
      opt,
      [&](const std::vector<std::string>& classes, const std::string& id) {
        writer = report::make_writer(format, *out, classes, table, /*csv_header=*/!append);
        if (!args.report.empty()) {
          report::ReportInfo info;
          info.classes = classes;
          info.model_id = id;
          info.model_summary = model::describe_card(model::read_card(opt.model_dir));
          info.command = args.command;
          info.method = opt.method;
          html = std::make_unique<report::HtmlReport>(args.report, info);
          // A resumed run's report shows the whole output file: first what earlier runs wrote.
          if (args.resume) {
            for (const auto& r : pipeline::read_earlier_records(args.output, csv, classes, opt.skip_files, opt.thumbnail_size)) {
              html->add_earlier(r);
            }
          }
        }
        const auto card = model::read_card(opt.model_dir);
        const auto& use = card.intended_use;
        intended_use = use.description + (use.modalities.empty() ? "" : " (DICOM " + model::join_list(use.modalities) + ")") +
                       (card.ood.enabled() ? "; OOD gate above " + fmt::format("{:.2f}", card.ood.threshold) : "; no OOD gate");
      },
      [&](const report::DiagnosisRecord& r) {
        if (r.ok && !r.abstained.empty()) {
          // Counted by check ("out of scope: DICOM Modality", "out of distribution"), not by value.
          const auto cut = r.abstained.find_first_of("'(0123456789");
          ++per_abstention[trim(r.abstained.substr(0, cut))];
        } else if (r.ok) {
          ++per_diagnosis[r.diagnosis];
        } else {
          ++per_reason[report::error_reason(r.error)];
          progress.clear();
          spdlog::error("{}", printable(r.error));
        }
        if (r.warning.find(pipeline::kHeatmapNotWritten) != std::string::npos) ++heatmap_failures;
        writer->write(r);
        check_out();  // the first failed write stops the run
        if (html) html->add(r);
      },
      [&](const std::string& notice) {
        progress.clear();
        spdlog::info("{}", printable(notice));
      },
      [&](const pipeline::Progress& p) { progress.update(p); });
  progress.clear();
  writer->finish();
  out_stream.flush();
  check_out();
  if (json_tmp) json_tmp->commit(/*sync=*/true);
  if (html) {
    report::RunTotals totals;
    totals.seconds = summary.seconds;
    totals.threads = threads;
    totals.workers = opt.workers;
    totals.shard = args.shard;
    totals.resumed = summary.resumed;
    html->finish(totals);
    spdlog::info("wrote report {}", args.report);
  }
  // The closing summary: counts per diagnosis, failures by reason, time and rate.
  const int ok = summary.total - summary.failed - summary.abstained;
  spdlog::info("diagnosed {} of {} image(s), {} failed, {} abstained, {} skipped, in {} ({:.1f} images/s)", ok, summary.total,
               summary.failed, summary.abstained, summary.skipped, format_seconds(summary.seconds),
               summary.total / std::max(1e-9, summary.seconds));
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  spdlog::info("  peak memory {:.0f} MB", usage.ru_maxrss / 1024.0);  // ru_maxrss is in KB on Linux
  for (const auto& [name, n] : per_diagnosis) spdlog::info("  {}: {}", name, n);
  for (const auto& [reason, n] : per_abstention) spdlog::info("  abstained, {}: {}", reason, n);
  for (const auto& [reason, n] : per_reason) spdlog::info("  failed, {}: {}", reason, n);
  if (!intended_use.empty()) spdlog::info("  model intended use: {}", intended_use);
  if (!opt.dicom_dir.empty()) {
    spdlog::info("  wrote {} DICOM object(s) (Secondary Capture and SR) to {}{}", summary.dicom_objects, opt.dicom_dir,
                 summary.not_dicom > 0 ? fmt::format("; {} non-DICOM input(s) have none", summary.not_dicom) : "");
  }
  if (summary.resumed > 0) spdlog::info("  {} input(s) already recorded in {} were not repeated", summary.resumed, args.output);
  if (!opt.shard.all()) spdlog::info("  shard {}: {} input(s) left to the other shards", args.shard, summary.other_shards);
  if (heatmap_failures > 0) spdlog::warn("  {} heatmap(s) not written (the diagnoses are kept; --resume retries them)", heatmap_failures);
  if (summary.total == 0 && summary.resumed == 0 && summary.other_shards == 0) {
    spdlog::error("no images found in the given inputs");
    return kExitSomeFailed;
  }
  return summary.failed > 0 || heatmap_failures > 0 ? kExitSomeFailed : kExitOk;
}

int run_merge_command(const std::vector<std::string>& files, const std::string& out, const std::vector<std::string>& inputs) {
  const auto r = pipeline::merge_outputs(files, out, inputs);
  spdlog::info("merged {} shard file(s) into {}: {} record(s)", r.shards, out, r.records);
  if (r.models.size() > 1) spdlog::warn("the shards were written by {} different models", r.models.size());
  for (const auto& f : r.duplicates) spdlog::warn("duplicate: '{}' is recorded more than once (the first record is kept)", printable(f));
  for (const auto& f : r.missing) spdlog::error("missing: '{}' is in the inputs but in no shard", printable(f));
  for (const auto& f : r.unexpected) spdlog::warn("unexpected: '{}' is recorded but not in the inputs", printable(f));
  spdlog::info("{} duplicate(s), {} missing{}", r.duplicates.size(), r.missing.size(), inputs.empty() ? " (not checked: no --inputs)" : "");
  return r.duplicates.empty() && r.missing.empty() && r.models.size() <= 1 ? kExitOk : kExitSomeFailed;
}

struct TrainArgs {
  train::TrainOptions options;
  std::string classes;
  std::string modalities;
  std::string stem = "16,32,64";
  int image_size = 96;
  int threads = 0;
  std::string name;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// --stem "16,32,64": the channels of each stem stage.
std::vector<int> parse_stem(const std::string& stem) {
  std::vector<int> channels;
  for (const auto& c : split_list(stem)) {
    try {
      channels.push_back(std::stoi(c));
    } catch (const std::exception&) {
      throw Error(ErrorKind::kInvalidArgument, "--stem expects comma-separated channel counts (got '" + stem + "')");
    }
  }
  return channels;
}

int run_train_command(TrainArgs& args, const std::string& command) {
  auto& opt = args.options;
  const int threads = pipeline::set_threads(args.threads);
  opt.classes = split_list(args.classes);
  opt.card.intended_use.modalities = model::parse_upper_list(args.modalities);
  opt.card.preprocess.image_size = args.image_size;
  opt.card.arch.stem_channels = parse_stem(args.stem);
  opt.card.name = args.name.empty() ? fs::path(opt.out).filename().string() : args.name;
  opt.command = command;
  spdlog::info("training on {} with {} thread(s)", opt.data, threads);
  // Fault injection for the tests: MEDATTN_TEST_KILL_AFTER_EPOCH=N kills the process with
  // SIGKILL right after epoch N's checkpoint is on disk, a crash at a known point.
  const char* kill_after = std::getenv("MEDATTN_TEST_KILL_AFTER_EPOCH");
  const int kill_epoch = kill_after != nullptr ? std::atoi(kill_after) : 0;
  const auto result = train::run_train(
      opt,
      [kill_epoch](const train::EpochReport& r) {
        if (kill_epoch > 0 && r.member == 1 && r.epoch == kill_epoch) ::raise(SIGKILL);
        const std::string member = r.members > 1 ? fmt::format("member {}/{}  ", r.member, r.members) : "";
        spdlog::info("{}epoch {:>3}/{}  loss {:.4f}  val_auc {:.4f}  val_acc {:.4f}  {:.0f} img/s  {}  eta {}{}", member, r.epoch,
                     r.epochs, r.train_loss, r.val_auc, r.val_accuracy, r.images_per_second,
                     format_seconds(r.seconds), format_seconds(r.eta_seconds), r.best ? "  *best" : "");
      },
      [](const std::string& notice) { spdlog::warn("{}", notice); });
  spdlog::info("calibration: temperature {:.3f}, validation ECE {:.4f} -> {:.4f}", result.card.temperature,
               result.ece_before, result.validation.ece);
  if (result.card.threshold >= 0) {
    spdlog::info("operating point {}: {} when its probability >= {:.4f}", result.card.operating_point,
                 result.card.classes[1], result.card.threshold);
  }
  for (const auto& w : result.warnings) spdlog::warn("{}", w);
  spdlog::info("wrote {} ({}: val_auc {:.4f}, val_acc {:.4f}; {} train / {} val images; {})", opt.out,
               opt.members > 1 ? fmt::format("ensemble of {} networks", opt.members) : fmt::format("kept epoch {}", result.best_epoch), result.validation.auc, result.validation.accuracy, result.train_count,
               result.val_count, format_seconds(result.seconds));
  return kExitOk;
}

struct PretrainArgs {
  train::PretrainOptions options;
  std::string stem = "16,32,64";
  int image_size = 96;
  int threads = 0;
};

int run_pretrain_command(PretrainArgs& args, const std::string& command) {
  auto& opt = args.options;
  const int threads = pipeline::set_threads(args.threads);
  opt.card.preprocess.image_size = args.image_size;
  opt.card.arch.stem_channels = parse_stem(args.stem);
  opt.card.name = fs::path(opt.out).filename().string();
  opt.command = command;
  spdlog::info("pretraining ({}) with {} thread(s)", opt.objective, threads);
  const char* kill_after = std::getenv("MEDATTN_TEST_KILL_AFTER_EPOCH");
  const int kill_epoch = kill_after != nullptr ? std::atoi(kill_after) : 0;
  const auto r = train::run_pretrain(
      opt,
      [kill_epoch](const train::PretrainEpoch& e) {
        if (kill_epoch > 0 && e.epoch == kill_epoch) ::raise(SIGKILL);
        spdlog::info("epoch {:>3}/{}  loss {:.4f}  {:.0f} img/s  {}  eta {}", e.epoch, e.epochs, e.loss, e.images_per_second,
                     format_seconds(e.seconds), format_seconds(e.eta_seconds));
      },
      [](const std::string& n) { spdlog::warn("{}", n); });
  spdlog::info("wrote {}/{} and {} ({} images; loss {:.4f} -> {:.4f}; {})", opt.out, train::kEncoderFile, train::kPretrainCard,
               r.images, r.losses.front(), r.losses.back(), format_seconds(r.seconds));
  return kExitOk;
}

int run_evaluate_command(const train::EvaluateOptions& options, const std::string& format,
                         const std::string& roc_path, const std::string& compare_model) {
  const auto r = train::run_evaluate(options, [](const std::string& n) { spdlog::warn("{}", n); });
  const auto& m = r.metrics;
  const auto ci = eval::bootstrap(r.predictions, 1000, /*seed=*/1, r.threshold);
  auto j = eval::metrics_to_json(m, r.classes);
  auto round4 = [](double v) { return std::round(v * 1e4) / 1e4; };
  j["auc_ci95"] = {round4(ci.auc.low), round4(ci.auc.high)};
  j["accuracy_ci95"] = {round4(ci.accuracy.low), round4(ci.accuracy.high)};
  const auto chance = eval::ece_if_calibrated(r.predictions);
  j["ece_if_calibrated"] = {{"mean", round4(chance.mean)}, {"p95", round4(chance.p95)}};
  j["decision"] = r.threshold >= 0 ? "threshold " + std::to_string(r.threshold) + " on " + r.classes[1] : "argmax";
  j["tta"] = r.tta;
  if (r.classes.size() == 2) j["positive_class"] = r.classes[1];
  if (!options.class_map.empty()) j["model_classes"] = r.model_classes;
  j["warnings"] = r.warnings;
  if (r.skipped > 0) j["skipped"] = r.skipped;
  if (!r.clinical_attention.empty()) {
    nlohmann::json att = nlohmann::json::object(), ablation = nlohmann::json::object();
    for (const auto& [name, share] : r.clinical_attention) att[name] = round4(share);
    for (const auto& [name, mm] : r.clinical_ablation) {
      ablation[name] = {{"balanced_accuracy", round4(mm.balanced_accuracy)}, {"macro_f1", round4(mm.macro_f1)},
                        {"auc", round4(mm.auc)}, {"accuracy", round4(mm.accuracy)}};
    }
    j["clinical_attention"] = att;
    j["clinical_hidden"] = ablation;
  }
  eval::PairedBootstrapResult cmp;
  if (!compare_model.empty()) {
    // The other model on the same samples, then a paired bootstrap of the differences.
    train::EvaluateOptions other = options;
    other.model_dir = compare_model;
    other.method.clear();
    other.randomization_check = false;
    const auto o = train::run_evaluate(other, [](const std::string& n) { spdlog::warn("{}", n); });
    if (o.predictions.labels != r.predictions.labels) {
      throw Error(ErrorKind::kInvalidArgument, "--compare " + compare_model +
                                                   ": the two models did not read the same samples, so they cannot be paired");
    }
    cmp = eval::paired_bootstrap(r.predictions, o.predictions, 1000, /*seed=*/1, r.threshold, o.threshold);
    auto entry = [&](const eval::PairedDifference& d) {
      return nlohmann::json{{"this", round4(d.a)}, {"other", round4(d.b)}, {"difference", round4(d.difference)},
                            {"difference_ci95", {round4(d.ci.low), round4(d.ci.high)}}};
    };
    j["comparison"] = {{"other_model", compare_model}, {"resamples", cmp.resamples},
                       {"balanced_accuracy", entry(cmp.balanced_accuracy)}, {"macro_f1", entry(cmp.macro_f1)},
                       {"auc", entry(cmp.auc)}, {"accuracy", entry(cmp.accuracy)}};
  }
  if (r.gate.enabled) {
    const auto& g = r.gate;
    j["abstained_scope"] = g.scope_abstained;
    j["abstained_ood"] = g.gate_abstained;
    j["coverage"] = round4(g.coverage);
    j["selective_accuracy"] = round4(g.selective_accuracy);
    j["selective_auc"] = round4(g.selective_auc);
    j["aurc"] = round4(g.aurc);
    if (!g.ood.empty()) {
      auto set = [&](const train::OodSetMetrics& s) {
        return nlohmann::json{{"data", s.data}, {"n", s.n}, {"ood_auroc", round4(s.auroc)}, {"ood_fpr95", round4(s.fpr95)},
                              {"ood_auroc_energy", round4(s.auroc_energy)}, {"ood_fpr95_energy", round4(s.fpr95_energy)},
                              {"abstention", round4(s.abstention)}};
      };
      j["ood_auroc"] = round4(g.pooled.auroc);
      j["ood_fpr95"] = round4(g.pooled.fpr95);
      j["ood_auroc_energy"] = round4(g.pooled.auroc_energy);
      j["ood_fpr95_energy"] = round4(g.pooled.fpr95_energy);
      j["ood_abstention"] = round4(g.pooled.abstention);
      j["ood_sets"] = nlohmann::json::array();
      for (const auto& s : g.ood) j["ood_sets"].push_back(set(s));
    }
  }
  if (r.has_shift) j["shift"] = eval::shift_to_json(r.shift);
  const auto& hm = r.heatmaps;
  if (!hm.method.empty()) {
    j["method"] = hm.method;
    if (hm.scale_reference > 0) j["heatmap_scale_reference"] = hm.scale_reference;
    j["heatmap_images"] = hm.images;
    auto opt = [&](double v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(round4(v)); };
    j["deletion_auc"] = opt(hm.deletion_auc);
    j["insertion_auc"] = opt(hm.insertion_auc);
    if (!options.masks.empty() || hm.masked > 0) {
      j["masked_images"] = hm.masked;
      j["pointing_game"] = opt(hm.pointing_game);
      j["heatmap_iou"] = opt(hm.heatmap_iou);
    }
    if (!hm.randomization.empty()) {
      j["randomization"] = nlohmann::json::array();
      for (const auto& step : hm.randomization) j["randomization"].push_back({{"layer", step.layer}, {"spearman", round4(step.spearman)}});
      j["randomization_floor"] = round4(hm.randomization_floor);
    }
  }
  if (!roc_path.empty()) {
    std::vector<report::RocSeries> series;
    const int K = static_cast<int>(r.classes.size());
    for (int k = (K == 2 ? 1 : 0); k < K; ++k) {
      report::RocSeries s;
      s.points = eval::roc_curve(r.predictions, k);
      std::vector<double> scores;
      std::vector<bool> pos;
      for (size_t i = 0; i < r.predictions.labels.size(); ++i) {
        scores.push_back(r.predictions.probabilities[i][k]);
        pos.push_back(r.predictions.labels[i] == k);
      }
      char label[128];
      std::snprintf(label, sizeof(label), "%s (AUC %.3f)", r.classes[k].c_str(), eval::binary_auc(scores, pos));
      s.label = label;
      // The operating point: the decision rule's sensitivity and 1 - specificity for class k.
      s.op_tpr = m.recall[k];
      int neg = 0, fp = 0;
      for (int t = 0; t < K; ++t) {
        if (t == k) continue;
        for (int p = 0; p < K; ++p) neg += m.confusion[t][p];
        fp += m.confusion[t][k];
      }
      s.op_fpr = neg > 0 ? static_cast<double>(fp) / neg : 0.0;
      series.push_back(std::move(s));
    }
    explain::write_png(roc_path, report::plot_roc(series));
    spdlog::info("wrote ROC curve to {}", roc_path);
  }
  if (format == "json") {
    std::cout << j.dump() << "\n";
  } else {
    std::printf("model decision: %s\n", j["decision"].get<std::string>().c_str());
    if (!r.tta.empty()) {
      std::string flips;
      for (const auto& f : r.tta) flips += (flips.empty() ? "" : ", ") + f;
      std::printf("test-time    mean logits over %d views (%s)\n", 1 << static_cast<int>(r.tta.size()), flips.c_str());
    }
    if (r.classes.size() == 2) std::printf("positive     %s (auc, sensitivity and f1 are for it)\n", r.classes[1].c_str());
    if (!options.class_map.empty()) std::printf("class map    %s\n", options.class_map.c_str());
    std::printf("n            %d\n", m.n);
    std::printf("accuracy     %.4f  (95%% CI %.4f-%.4f)\n", m.accuracy, ci.accuracy.low, ci.accuracy.high);
    std::printf("auc          %.4f  (95%% CI %.4f-%.4f)\n", m.auc, ci.auc.low, ci.auc.high);
    std::printf("balanced acc %.4f\nsensitivity  %.4f\nspecificity  %.4f\nf1           %.4f\nmacro f1     %.4f\n",
                m.balanced_accuracy, m.sensitivity, m.specificity, m.f1, m.macro_f1);
    std::printf("ece          %.4f  (a perfectly calibrated model would show %.4f on these %d images, up to %.4f in 95%% of draws)\n",
                m.ece, chance.mean, m.n, chance.p95);
    if (!r.clinical_attention.empty()) {
      std::printf("\n%-16s %9s   %s\n", "covariate", "attention", "balanced acc / macro f1 / auc when it is hidden");
      for (size_t f = 0; f < r.clinical_ablation.size(); ++f) {
        const auto& [name, mm] = r.clinical_ablation[f];
        if (f < r.clinical_attention.size()) {
          std::printf("%-16s %9.4f", name.c_str(), r.clinical_attention[f].second);
        } else {
          std::printf("%-16s %9s", "(all hidden)", "");
        }
        std::printf("   %.4f / %.4f / %.4f\n", mm.balanced_accuracy, mm.macro_f1, mm.auc);
      }
    }
    if (r.gate.enabled) {
      const auto& g = r.gate;
      std::printf("\nabstention   coverage %.4f (%d out of scope, %d above the OOD threshold, of %d)\n", g.coverage,
                  g.scope_abstained, g.gate_abstained, g.n);
      std::printf("selective    accuracy %.4f, auc %.4f on the covered images; aurc %.4f\n", g.selective_accuracy,
                  g.selective_auc, g.aurc);
      if (!g.ood.empty()) {
        std::printf("%-40s %6s %10s %10s %12s %12s %10s\n", "ood set", "n", "auroc", "fpr95", "auroc(energy)",
                    "fpr95(energy)", "abstained");
        auto row = [](const train::OodSetMetrics& s) {
          std::printf("%-40.40s %6d %10.4f %10.4f %12.4f %12.4f %10.4f\n", s.data.c_str(), s.n, s.auroc, s.fpr95, s.auroc_energy,
                      s.fpr95_energy, s.abstention);
        };
        for (const auto& s : g.ood) row(s);
        row(g.pooled);
      }
    }
    if (!compare_model.empty()) {
      std::printf("\ncompared with %s (paired bootstrap, %d resamples)\n%-18s %8s %8s %10s %20s\n", compare_model.c_str(),
                  cmp.resamples, "metric", "this", "other", "difference", "95% CI");
      const std::pair<const char*, const eval::PairedDifference*> rows[] = {
          {"balanced accuracy", &cmp.balanced_accuracy}, {"macro f1", &cmp.macro_f1}, {"auc", &cmp.auc}, {"accuracy", &cmp.accuracy}};
      for (const auto& [name, d] : rows) {
        std::printf("%-18s %8.4f %8.4f %+10.4f   %+8.4f to %+8.4f\n", name, d->a, d->b, d->difference, d->ci.low, d->ci.high);
      }
    }
    // Per class with its n: an AUC of 0.999 on 3 images says little.
    int name_w = 16;
    for (const auto& c : r.classes) name_w = std::max(name_w, static_cast<int>(c.size()));
    const auto counts = eval::class_counts(m);
    std::printf("\n%-*s %6s %9s %9s %9s\n", name_w, "class", "n", "precision", "recall", "auc");
    for (size_t k = 0; k < r.classes.size(); ++k) {
      std::printf("%-*s %6d %9.4f %9.4f %9.4f\n", name_w, r.classes[k].c_str(), counts[k], m.precision[k], m.recall[k],
                  k < m.auc_per_class.size() ? m.auc_per_class[k] : 0.0);
    }
    // Columns as wide as the longest class name, so no name is cut.
    int col_w = 6;
    for (const auto& c : r.classes) col_w = std::max(col_w, static_cast<int>(c.size()));
    std::printf("\nconfusion (rows: true, columns: predicted)\n%-*s", name_w, "");
    for (const auto& c : r.classes) std::printf(" %*s", col_w, c.c_str());
    std::printf("\n");
    for (size_t t = 0; t < r.classes.size(); ++t) {
      std::printf("%-*s", name_w, r.classes[t].c_str());
      for (int v : m.confusion[t]) std::printf(" %*d", col_w, v);
      std::printf("\n");
    }
    if (r.has_shift) std::printf("%s", eval::shift_table(r.shift).c_str());
    for (const auto& w : r.warnings) std::printf("\nwarning: %s\n", w.c_str());
    if (!hm.method.empty()) {
      std::printf("\nheatmaps (%s, %d images)\n", hm.method.c_str(), hm.images);
      if (hm.deletion_auc >= 0) std::printf("deletion auc   %.4f (lower is better)\ninsertion auc  %.4f (higher is better)\n", hm.deletion_auc, hm.insertion_auc);
      if (hm.masked > 0) std::printf("pointing game  %.4f (%d images with lesions)\nheatmap iou    %.4f\n", hm.pointing_game, hm.masked, hm.heatmap_iou);
      for (const auto& step : hm.randomization) std::printf("randomised down to %-10s spearman %.4f\n", step.layer.c_str(), step.spearman);
      if (!hm.randomization.empty()) std::printf("two random networks      spearman %.4f (the floor)\n", hm.randomization_floor);
    }
  }
  return r.skipped > 0 ? kExitSomeFailed : kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("medattn");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  install_signal_cleanup();  // SIGINT/SIGTERM remove this run's temporary files (core/fs.h)

  CLI::App app{"medattn: diagnose medical images with an attention CNN+Transformer and show where it looked"};
  app.set_version_flag("--version", pipeline::version_text());
  app.require_subcommand(1);
  app.footer("Run 'medattn COMMAND --help' for a command's options and an example.");

  // diagnose
  DiagnoseArgs d;
  auto* diagnose = app.add_subcommand("diagnose", "Diagnose images, DICOM/NIfTI files and folders; optionally write heatmaps");
  diagnose->add_option("inputs", d.options.inputs, "Image files and folders (searched recursively)")->required();
  diagnose->add_option("-m,--model", d.model, "Model directory (default: models/pneumonia-cxr, or $MEDATTN_MODEL)")->check(kNotEmpty);
  diagnose->add_option("--format", d.format, "Output format: table, json, jsonl or csv")
      ->check(CLI::IsMember({"table", "json", "jsonl", "csv"}))->capture_default_str();
  diagnose->add_option("-o,--output", d.output, "Write results to FILE instead of standard output");
  diagnose->add_option("--heatmaps", d.options.heatmap_dir, "Write an overlay PNG and a 16-bit raw map per image to DIR");
  diagnose->add_option("--dicom-out", d.options.dicom_dir,
                       "Per DICOM input, write a Secondary Capture of the overlay and a Structured Report in its study to DIR");
  diagnose->add_option("--uid-root", d.options.uid_root, "--dicom-out: root of the UIDs made (default: DCMTK's, "
                                                           "1.2.276.0.7230010.3.1.4)");
  diagnose->add_option("--uid-seed", d.options.uid_seed,
                       "--dicom-out: derive every UID from this text and the input, so that a rerun gives the same UIDs");
  diagnose->add_option("--method", d.options.method, "Heatmap method: saliency, rollout, gradcam, attn-grad, occlusion, contrast (signed: evidence for the class in red, against it in blue), or the baselines random and centre")
      ->check(CLI::IsMember({"rollout", "gradcam", "attn-grad", "saliency", "occlusion", "contrast", "random", "centre"}))->capture_default_str();
  diagnose->add_option("--target", d.options.target, "Explain this class instead of the diagnosis (two-class models: unsigned maps look alike for both classes; use --method contrast)");
  diagnose->add_option("--clinical", d.options.clinical_csv,
                       "CSV of clinical covariates (a path column and the model's covariate columns) for models that take them");
  diagnose->add_option("--tta", d.options.tta,
                       "Test-time flips whose logits are averaged: none, hflip, vflip or hflip,vflip (default: the model card's)")
      ->check(kFlips);
  diagnose->add_option("--heatmap-flips", d.options.heatmap_flips,
                       "Average each heatmap over these flips of the input: none, hflip, vflip or hflip,vflip "
                       "(default: the flips the model was trained with)")
      ->check(kFlips);
  diagnose->add_option("--occlusion-patch", d.options.occlusion_patch, "Occlusion: patch side in model-input pixels")
      ->check(in_range(1, 4096))->capture_default_str();
  diagnose->add_option("--occlusion-stride", d.options.occlusion_stride, "Occlusion: step between patches")
      ->check(in_range(1, 4096))->capture_default_str();
  diagnose->add_option("--saliency-sigma", d.options.saliency_sigma, "Saliency: blur sigma in model-input pixels (default: input size / 24; 0 = none)")
      ->check(in_range(0.0, 1000.0));
  diagnose->add_option("--head-fusion", d.options.head_fusion, "Rollout: fuse heads by mean, max or min")
      ->check(CLI::IsMember({"mean", "max", "min"}))->capture_default_str();
  diagnose->add_option("--discard-ratio", d.options.discard_ratio, "Rollout: share of the weakest attention dropped per row, in [0,1)")
      ->check(in_range(0.0, 0.999))->capture_default_str();
  diagnose->add_option("--heatmap-alpha", d.options.heatmap_alpha, "Overlay opacity at the hottest point, in [0,1]")
      ->check(in_range(0.0, 1.0))->capture_default_str();
  diagnose->add_flag("--preview", d.force_preview, "Draw the heatmap preview even when stdout is not a terminal");
  diagnose->add_flag("--no-preview", d.no_preview, "Do not draw the heatmap preview in the terminal");
  diagnose->add_option("--preview-width", d.preview_width, "Preview width in characters (default: the terminal's, at most 64)")
      ->check(in_range(8, 1000));
  diagnose->add_flag("--ascii", d.ascii, "Draw the preview with plain ASCII shades instead of colour");
  diagnose->add_option("--contour", d.options.contour_top, "Outline the top fraction of the heatmap, e.g. 0.05 (0 = off)")
      ->check(in_range(0.0, 1.0))->capture_default_str();
  diagnose->add_option("--heatmap-scale", d.options.heatmap_scale,
                       "How maps become colours: image (each map from its own minimum to maximum, so every map has a hot "
                       "spot) or model (divided by the model's reference from evaluate --calibrate-heatmap-scale: "
                       "comparable across images, a weak map stays cold)")
      ->check(CLI::IsMember({"image", "model"}))->capture_default_str();
  diagnose->add_option("--overlay-size", d.options.overlay_min_side,
                       "Enlarge the overlay's image to at least this many pixels on its shorter side, so that the caption and "
                       "legend (drawn beside it, never over it) stay readable on small images (0 = the image's own size)")
      ->check(in_range(0, 8192))->capture_default_str();
  diagnose->add_option("--window", d.window,
                       "Window CENTER,WIDTH overriding the file's (e.g. 40,400 for CT soft tissue). It sets the model's input as "
                       "well as the display, so it can change the diagnosis; the record keeps the window used");
  diagnose->add_option("--frame", d.options.read.frame, "DICOM multi-frame: frame to read (0-based)")->check(in_range(0, 1000000))->capture_default_str();
  diagnose->add_option("--slice", d.options.read.slice, "NIfTI 3D: axial slice to read (0-based; default: the middle one)")
      ->check(in_range(0, 32767));
  diagnose->add_option("--max-pixels", d.options.read.max_pixels, "Refuse images (frames, slices) with more pixels than this")
      ->check(in_range<int64_t>(1, 1000000000000))->capture_default_str();
  diagnose->add_option("--max-file-size", d.max_file_mb, "Refuse files larger than this many MB (at most 1048576, 1 TB)")
      ->check(in_range(0.0, 1048576.0, /*lo_excluded=*/true))->capture_default_str();
  diagnose->add_option("--max-frames", d.options.read.max_frames, "Refuse DICOM files with more frames (NIfTI: more slices x volumes)")
      ->check(in_range<int64_t>(1, 1000000))->capture_default_str();
  diagnose->add_option("--threads", d.threads, "Threads (default: all cores; at most 256)")->check(in_range(0, kMaxThreads));
  diagnose->add_option("--batch-size", d.options.batch_size, "Images per forward pass (at most 4096)")->check(in_range(1, 4096))->capture_default_str();
  diagnose->add_option("--workers", d.options.workers, "Threads decoding and preprocessing images ahead of the model")
      ->check(in_range(1, 64))->capture_default_str();
  diagnose->add_flag("--resume", d.resume, "Skip inputs already recorded in -o FILE (jsonl or csv) by the same model, and append");
  diagnose->add_option("--shard", d.shard, "Process only shard K of N (0 <= K < N), split by a stable hash of each input's relative path");
  diagnose->add_option("--report", d.report, "Also write a self-contained HTML report (sortable table, heatmap thumbnails)");
  diagnose->add_flag("-q,--quiet", d.quiet, "No progress display");
  diagnose->add_flag("--ignore-scope", d.options.ignore_scope,
                     "Diagnose images that fail the card's scope checks (DICOM modality/body part, near-constant, too small, "
                     "colour for a grey model); the record gets a warning instead");
  diagnose->add_flag("--no-abstain", d.options.no_abstain,
                     "Never abstain: keep the diagnosis when a scope check or the OOD gate says no, and flag it in the record's warning");
  diagnose->footer("Examples:\n  medattn diagnose --format json --heatmaps out/ scans/ chest.dcm knee.png\n"
                   "  medattn diagnose archive/ -o results.jsonl --resume --report report.html\n"
                   "  find archive -name '*.dcm' | medattn diagnose - -o results.csv\n"
                   "  medattn diagnose archive/ --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT -o part-$SLURM_ARRAY_TASK_ID.jsonl");

  // merge
  std::vector<std::string> merge_inputs, merge_files;
  std::string merge_out;
  auto* merge = app.add_subcommand("merge", "Join the outputs of diagnose shards into one file; report missing and duplicated files");
  merge->add_option("files", merge_files, "Shard outputs (all jsonl or all csv)")->required();
  merge->add_option("-o,--output", merge_out, "Merged output (.jsonl or .csv), written atomically")->required();
  merge->add_option("--inputs", merge_inputs, "The INPUTs the shards were run on: report inputs no shard recorded")->expected(1, -1);
  merge->footer("Example:\n  medattn merge part-*.jsonl -o results.jsonl --inputs archive/");

  // train
  TrainArgs t;
  auto* trainc = app.add_subcommand("train", "Train a model on labelled data (class folders, CSV or MedMNIST npz)");
  trainc->add_option("data", t.options.data, "Training DATA: class folders, a CSV (path,label) or a .npz")->required();
  trainc->add_option("--out", t.options.out, "Model directory to write")->required();
  trainc->add_option("--val", t.options.val_data, "Separate validation DATA");
  trainc->add_option("--val-fraction", t.options.val_fraction, "Stratified share of DATA held out for validation")
      ->check(in_range(0.01, 0.9))->capture_default_str();
  trainc->add_option("--split", t.options.split, "npz: arrays NAME_images/NAME_labels (default train); CSV: rows with split == NAME");
  trainc->add_option("--val-split", t.options.val_split, "Validation split of DATA (or of --val), e.g. val for MedMNIST");
  trainc->add_option("--classes", t.classes, "Class names in label order, comma-separated (npz labels 0..K-1)");
  trainc->add_option("--epochs", t.options.epochs, "Epochs")->check(in_range(1, 100000))->capture_default_str();
  trainc->add_option("--batch-size", t.options.batch_size, "Batch size")->check(in_range(2, 4096))->capture_default_str();
  trainc->add_option("--lr", t.options.lr, "Peak learning rate (AdamW)")->capture_default_str();
  trainc->add_option("--weight-decay", t.options.weight_decay, "AdamW weight decay")->capture_default_str();
  trainc->add_option("--image-size", t.image_size, "Input size S (S x S); a multiple of 2^stages")->capture_default_str();
  trainc->add_option("--stem", t.stem, "CNN stem channels per stage (each stage halves the resolution)")->capture_default_str();
  trainc->add_option("--dim", t.options.card.arch.dim, "Token width")->capture_default_str();
  trainc->add_option("--depth", t.options.card.arch.depth, "Transformer blocks")->capture_default_str();
  trainc->add_option("--heads", t.options.card.arch.heads, "Attention heads")->capture_default_str();
  // A flag (--clahe, or --clahe=true/false as before) rather than an option that shows BOOLEAN in --help.
  trainc->add_flag("--clahe", t.options.card.preprocess.clahe, "Apply CLAHE after windowing (stored in the card)");
  trainc->add_option("--seed", t.options.seed, "Random seed (split, initialisation, shuffling)")->capture_default_str();
  trainc->add_flag_callback("--no-augment", [&t] { t.options.augment = false; }, "Disable augmentation");
  trainc->add_flag("--hflip", t.options.hflip, "Also flip images horizontally when augmenting (off: anatomy has a side)");
  trainc->add_flag("--vflip", t.options.vflip, "Also flip images vertically when augmenting (e.g. dermoscopy)");
  trainc->add_option("--channels", t.options.card.preprocess.channels, "Input channels: 1 (grey) or 3 (colour, BGR)")
      ->check(CLI::IsMember({1, 3}))->capture_default_str();
  trainc->add_option("--clinical", t.options.clinical,
                     "Clinical covariates of a CSV dataset, one token each: NAME:num or NAME:cat, comma-separated, "
                     "e.g. age:num,sex:cat,localization:cat, or a schema file with one NAME:TYPE per line");
  trainc->add_option("--fusion", t.options.fusion,
                     "How covariates meet the image: joint (their tokens join the image's in every block) or cross "
                     "(gated cross-attention from CLS and the image tokens to them after every block)")
      ->check(CLI::IsMember({"joint", "cross"}))->capture_default_str();
  trainc->add_option("--clinical-dropout", t.options.clinical_dropout,
                     "Share of covariate values hidden during training, so the model copes when one is missing")
      ->check(in_range(0.0, 0.95))->capture_default_str();
  trainc->add_option("--label-smoothing", t.options.label_smoothing, "Cross-entropy label smoothing")
      ->check(in_range(0.0, 0.5))->capture_default_str();
  trainc->add_option("--mixup", t.options.mixup,
                     "Blend pairs of training images (and their labels) with weight ~ Beta(A, A); 0 = off, 0.2-0.4 typical")
      ->check(in_range(0.0, 10.0))->capture_default_str();
  trainc->add_option("--balance", t.options.balance,
                     "Class imbalance: weights (inverse-frequency loss weights), logit-adjust (train on logits + log class "
                     "prior, predict with the plain logits: aims at balanced accuracy) or none")
      ->check(CLI::IsMember({"weights", "logit-adjust", "none"}))->capture_default_str();
  trainc->add_option("--ema", t.options.ema, "Keep an exponential moving average of the weights with this decay (0 = off)")
      ->check(in_range(0.0, 0.99999))->capture_default_str();
  trainc->add_option("--warmup-epochs", t.options.warmup_epochs, "Epochs of linear learning-rate warm-up")
      ->check(in_range(0, 100000))->capture_default_str();
  trainc->add_option("--select", t.options.select,
                     "Which epoch is kept: best-auc (best validation AUC) or last (the end of the schedule; validation "
                     "then only measures, it does not choose)")
      ->check(CLI::IsMember({"best-auc", "last"}))->capture_default_str();
  trainc->add_option("--patience", t.options.patience, "Stop after N epochs without a better validation AUC (0 = never)")
      ->check(in_range(0, 100000))->capture_default_str();
  trainc->add_option("--group-regex", t.options.group_regex,
                     "Patient id from the file name (first capture group) so validation is split by patient, e.g. 'person(\\d+)_'");
  trainc->add_flag("--resume", t.options.resume, "Continue from MODEL/checkpoint (same optimizer and random state)");
  trainc->add_option("--init", t.options.init,
                     "Start from a pretrained encoder: DIR of medattn pretrain (encoder.bin) or a model of the same "
                     "architecture (weights.bin); the head is trained afresh");
  trainc->add_option("--members", t.options.members,
                     "Train an ensemble of N networks, one after the other (seeds SEED, SEED+1, ...), on the same split; "
                     "the model's logits are the mean of theirs")
      ->check(in_range(1, 16))->capture_default_str();
  trainc->add_flag("!--no-calibrate", t.options.calibrate, "Do not fit a softmax temperature on validation");
  trainc->add_option("--operating-point", t.options.operating_point,
                     "Binary models: choose the decision threshold on validation: balanced or sensitivity=X");
  trainc->add_option("--tta", t.options.tta,
                     "Test-time flips stored in the card: hflip, vflip or hflip,vflip; validation, calibration and diagnoses "
                     "average the logits over the flipped views (default: none)")
      ->check(kFlips);
  trainc->add_option("--name", t.name, "Model name for the card (default: the --out folder name)");
  trainc->add_option("--modalities", t.modalities, "Intended use: DICOM Modality codes the model takes, e.g. CR,DX (others abstain)");
  trainc->add_option("--body-part", t.options.card.intended_use.body_part,
                     "Intended use: DICOM BodyPartExamined values the model takes, e.g. CHEST (others abstain)");
  trainc->add_option("--view", t.options.card.intended_use.view, "Intended use: the view, e.g. 'frontal chest radiograph'");
  trainc->add_option("--population", t.options.card.intended_use.population, "Intended use: who the training images came from");
  trainc->add_option("--intended-use", t.options.card.intended_use.description, "Intended use: what the model does, one sentence");
  trainc->add_option("--limitations", t.options.card.intended_use.limitations, "Intended use: what it was not shown or does badly");
  trainc->add_option("--ood-percentile", t.options.ood_percentile,
                     "OOD gate threshold: this percentile of the validation images' Mahalanobis scores (0 = no gate)")
      ->check(in_range(0.0, 100.0))->capture_default_str();
  trainc->add_option("--threads", t.threads, "Threads (default: all cores; at most 256)")->check(in_range(0, kMaxThreads));
  trainc->footer("Example:\n  medattn phantom --out ph --count 600 && medattn train ph/images --out models/mine --epochs 12");

  // pretrain
  PretrainArgs pt;
  auto* pretrainc = app.add_subcommand("pretrain", "Self-supervised pretraining of the encoder on unlabelled images, for train --init");
  pretrainc->add_option("data", pt.options.data, "Image folders (any images; labels ignored), MedMNIST .npz or CSV (path column)")
      ->required()->expected(1, -1);
  pretrainc->add_option("--out", pt.options.out, "Directory to write (encoder.bin, pretrain.json)")->required();
  pretrainc->add_option("--objective", pt.options.objective,
                        "mim (masked image modelling) or dino (self-distillation of two views with a momentum teacher; "
                        "it collapsed at small budgets in our measurement)")
      ->check(CLI::IsMember({"dino", "mim"}))->capture_default_str();
  pretrainc->add_option("--split", pt.options.split, "npz arrays NAME_images and CSV rows with split == NAME (\"\" = all CSV rows)")
      ->capture_default_str();
  pretrainc->add_option("--limit", pt.options.limit, "At most this many images per DATA, spread evenly (0 = all)")
      ->check(in_range(0, 100000000))->capture_default_str();
  pretrainc->add_option("--epochs", pt.options.epochs, "Epochs")->check(in_range(1, 100000))->capture_default_str();
  pretrainc->add_option("--batch-size", pt.options.batch_size, "Batch size")->check(in_range(2, 4096))->capture_default_str();
  pretrainc->add_option("--lr", pt.options.lr, "Peak learning rate (AdamW)")->check(in_range(1e-7, 1.0))->capture_default_str();
  pretrainc->add_option("--weight-decay", pt.options.weight_decay, "AdamW weight decay")->check(in_range(0.0, 10.0))->capture_default_str();
  pretrainc->add_option("--warmup-epochs", pt.options.warmup_epochs, "Epochs of linear learning-rate warm-up")
      ->check(in_range(0, 100000))->capture_default_str();
  pretrainc->add_option("--mask-ratio", pt.options.mask_ratio, "mim: share of the token grid masked")
      ->check(in_range(0.05, 0.95))->capture_default_str();
  pretrainc->add_option("--prototypes", pt.options.prototypes, "dino: prototypes of the projection head")
      ->check(in_range(8, 65536))->capture_default_str();
  pretrainc->add_option("--image-size", pt.image_size, "Input size S (S x S): the architecture train --init will use")->capture_default_str();
  pretrainc->add_option("--stem", pt.stem, "CNN stem channels per stage")->capture_default_str();
  pretrainc->add_option("--dim", pt.options.card.arch.dim, "Token width")->capture_default_str();
  pretrainc->add_option("--depth", pt.options.card.arch.depth, "Transformer blocks")->capture_default_str();
  pretrainc->add_option("--heads", pt.options.card.arch.heads, "Attention heads")->capture_default_str();
  pretrainc->add_option("--channels", pt.options.card.preprocess.channels, "Input channels: 1 (grey) or 3 (colour, BGR)")
      ->check(CLI::IsMember({1, 3}))->capture_default_str();
  pretrainc->add_option("--seed", pt.options.seed, "Random seed")->capture_default_str();
  pretrainc->add_flag("--resume", pt.options.resume, "Continue from OUT/checkpoint (same data and options)");
  pretrainc->add_option("--threads", pt.threads, "Threads (default: all cores; at most 256)")->check(in_range(0, kMaxThreads));
  pretrainc->footer("Example:\n  medattn pretrain ../shared/data/chest_xray_224/train --out pre/cxr64 --image-size 64 --epochs 20\n"
                    "  medattn train ../shared/data/chest_xray_224/train --out models/mine --image-size 64 --init pre/cxr64");

  // evaluate
  train::EvaluateOptions e;
  std::string eval_format = "table";
  int eval_threads = 0;
  auto* evaluate = app.add_subcommand("evaluate", "Measure a model on labelled data");
  evaluate->add_option("-m,--model", e.model_dir, "Model directory")->check(kNotEmpty)->required();
  evaluate->add_option("data", e.data, "DATA: class folders, a CSV or a .npz")->required();
  evaluate->add_option("--split", e.split, "npz arrays NAME_images/NAME_labels, or CSV rows with split == NAME");
  evaluate->add_option("--format", eval_format, "table or json")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  std::string eval_roc;
  evaluate->add_option("--roc", eval_roc, "Write the ROC curve (operating point marked) to FILE.png");
  std::string eval_compare;
  evaluate->add_option("--compare", eval_compare,
                       "Also evaluate this other model on the same data and report the paired bootstrap difference "
                       "(this - other) of balanced accuracy, macro-F1, AUC and accuracy with 95% intervals");
  evaluate->add_option("--method", e.method, "Also measure this heatmap method: deletion_auc, insertion_auc (and with --masks "
                                             "pointing_game, heatmap_iou)")
      ->check(CLI::IsMember({"rollout", "gradcam", "attn-grad", "saliency", "occlusion", "contrast", "random", "centre"}));
  evaluate->add_option("--masks", e.masks, "Lesion masks at the same relative paths as DATA's images (e.g. phantoms/masks); "
                                           "without --method, the default method (saliency) is measured");
  evaluate->add_flag("--calibrate-heatmap-scale", e.calibrate_heatmap_scale,
                     "Write the model's heatmap scale for --method (default saliency) from DATA (use the validation split): "
                     "the median of each map's largest value, what diagnose --heatmap-scale model shows as 1");
  evaluate->add_option("--class-map", e.class_map,
                       "Score data whose classes merge the model's: DATA_CLASS=MODEL_CLASS[+MODEL_CLASS...],... "
                       "(e.g. no=notumor,yes=glioma+meningioma+pituitary); each data class gets the sum of its model classes' "
                       "probabilities");
  evaluate->add_flag("--randomization-check", e.randomization_check,
                     "Re-initialise the weights top-down and report the rank correlation with the original maps");
  evaluate->add_option("--tta", e.tta,
                       "Test-time flips whose logits are averaged: none, hflip, vflip or hflip,vflip (default: the model card's)")
      ->check(kFlips);
  evaluate->add_option("--heatmap-flips", e.heatmap_flips,
                       "Average each heatmap over these flips of the input: none, hflip, vflip or hflip,vflip "
                       "(default: the flips the model was trained with)")
      ->check(kFlips);
  evaluate->add_flag("--no-deletion", e.no_deletion, "Skip the deletion/insertion curves");
  evaluate->add_option("--ood", e.ood_data,
                       "Out-of-distribution sets (image files, folders, npz or CSV): report ood_auroc and ood_fpr95 of the gate's "
                       "score (and of the logits' energy) against DATA, and the share diagnose would abstain on")
      ->expected(1, -1);
  evaluate->add_option("--val-fraction", e.val_fraction,
                       "Evaluate only the validation split that train --val-fraction F carved from DATA (with --seed, --group-regex)")
      ->check(in_range(0.01, 0.9));
  evaluate->add_option("--seed", e.seed, "With --val-fraction: the seed of train's split")->capture_default_str();
  evaluate->add_option("--group-regex", e.group_regex, "With --val-fraction: train's --group-regex");
  evaluate->add_option("--ood-limit", e.ood_limit, "At most this many images per --ood set, spread evenly over it")
      ->check(in_range(1, 100000000))->capture_default_str();
  std::vector<std::string> shift_set_names;
  for (const auto& set : eval::shift_sets()) shift_set_names.push_back(set.name);
  evaluate->add_flag("--shift", e.shift,
                     "Also run the shift benchmark: DATA under realistic acquisition changes at 5 severities (accuracy, AUC, ECE, "
                     "coverage per corruption; means over the corruptions the model's training augmentation does not apply)");
  evaluate->add_option("--shift-set", e.shift_set, "Corruption set for --shift (default: from the card's modalities)")
      ->check(CLI::IsMember(shift_set_names));
  evaluate->add_option("--shift-limit", e.shift_limit, "--shift on at most this many images, spread evenly (0 = all)")
      ->check(in_range(0, 100000000))->capture_default_str();
  evaluate->add_option("--shift-seed", e.shift_seed, "Seed of the corruptions' random draws")->capture_default_str();
  evaluate->add_option("--occlusion-patch", e.explain.occlusion_patch, "Occlusion: patch side in model-input pixels")
      ->check(in_range(1, 4096))->capture_default_str();
  evaluate->add_option("--occlusion-stride", e.explain.occlusion_stride, "Occlusion: step between patches")
      ->check(in_range(1, 4096))->capture_default_str();
  evaluate->add_option("--saliency-sigma", e.explain.saliency_sigma, "Saliency: blur sigma in model-input pixels (default: input size / 24; 0 = none)")
      ->check(in_range(0.0, 1000.0));
  evaluate->add_option("--threads", eval_threads, "Threads (default: all cores; at most 256)")->check(in_range(0, kMaxThreads));
  evaluate->footer("Example:\n  medattn evaluate -m models/phantom phantoms/images --format json");

  // fit-ood
  train::FitOodOptions fo;
  int fo_threads = 0;
  auto* fitood = app.add_subcommand("fit-ood", "Fit a model's out-of-distribution gate on its training data, without retraining");
  fitood->add_option("-m,--model", fo.model_dir, "Model directory (its card and ood.bin are written)")->check(kNotEmpty)->required();
  fitood->add_option("data", fo.data, "The training DATA the model was trained on")->required();
  fitood->add_option("--split", fo.split, "As train: npz arrays or CSV rows of the training split (e.g. train)");
  fitood->add_option("--val", fo.val_data, "Separate validation DATA (the threshold is set on it)");
  fitood->add_option("--val-split", fo.val_split, "Validation split of DATA (or of --val), e.g. val");
  fitood->add_option("--val-fraction", fo.val_fraction, "As train: stratified share of DATA carved for validation")
      ->check(in_range(0.01, 0.9))->capture_default_str();
  fitood->add_option("--seed", fo.seed, "As train: the seed of the carved split")->capture_default_str();
  fitood->add_option("--group-regex", fo.group_regex, "As train: patient id from the file name, for a grouped split");
  fitood->add_option("--percentile", fo.percentile, "Threshold: this percentile of the validation scores")
      ->check(in_range(1.0, 100.0))->capture_default_str();
  fitood->add_option("--shrinkage", fo.shrinkage, "Shrinkage of the shared covariance towards its diagonal")
      ->check(in_range(0.0, 0.99))->capture_default_str();
  fitood->add_option("--feature", fo.feature, "What the gate scores: layers (CLS, mean token, CNN stages) or cls (the head's input)")
      ->check(CLI::IsMember({"layers", "cls"}))->capture_default_str();
  fitood->add_option("--threads", fo_threads, "Threads (default: all cores; at most 256)")->check(in_range(0, kMaxThreads));
  fitood->footer("Example (the split of the card's training command):\n"
                 "  medattn fit-ood -m models/pneumoniamnist ../shared/data/pneumoniamnist/pneumoniamnist_trainval.npz "
                 "--split train --val-split val");

  // info
  std::string info_model;
  bool info_json = false;
  auto* info = app.add_subcommand("info", "Print a model's card");
  info->add_option("-m,--model", info_model, "Model directory")->check(kNotEmpty)->required();
  info->add_flag("--json", info_json, "Print the card as JSON");
  info->footer("Example:\n  medattn info -m models/phantom");

  // phantom
  phantom::PhantomOptions p;
  std::string phantom_out;
  auto* phantomc = app.add_subcommand("phantom", "Generate synthetic chest-radiograph-like images with lesion masks");
  phantomc->add_option("--out", phantom_out, "Output folder (images/<class>/, masks/<class>/)")->required();
  phantomc->add_option("--count", p.count, "Images in all, spread evenly over normal, nodule, consolidation")->required()->check(in_range(1, 1000000));
  phantomc->add_option("--seed", p.seed, "Seed: the same seed gives the same files")->capture_default_str();
  phantomc->add_option("--size", p.size, "Image width and height in pixels")->check(in_range(64, 4096))->capture_default_str();
  phantomc->footer("Example:\n  medattn phantom --out phantoms --count 30 --seed 7");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n";
    std::cerr << "Run 'medattn --help' or 'medattn COMMAND --help' for usage.\n";
    return kExitUsage;
  }

  try {
    if (*diagnose) {
      d.format_given = diagnose->count("--format") > 0;
      d.command = command_line(argc, argv);
      return run_diagnose_command(d);
    }
    if (*merge) {
      report::check_outputs({{merge_out, "output"}}, merge_files, "");  // never over a shard file
      return run_merge_command(merge_files, merge_out, merge_inputs);
    }
    if (*trainc) return run_train_command(t, command_line(argc, argv));
    if (*pretrainc) return run_pretrain_command(pt, command_line(argc, argv));
    if (*evaluate) {
      pipeline::set_threads(eval_threads);
      if (!eval_roc.empty()) report::check_outputs({{eval_roc, "ROC plot"}}, {e.data}, e.model_dir);  // never over an input or the model
      return run_evaluate_command(e, eval_format, eval_roc, eval_compare);
    }
    if (*fitood) {
      pipeline::set_threads(fo_threads);
      fo.command = command_line(argc, argv);
      const auto r = train::run_fit_ood(fo, [](const std::string& n) { spdlog::info("{}", n); });
      spdlog::info("fitted the OOD gate of {} on {} training image(s): threshold {:.4f} ({}th percentile of {} validation "
                   "image(s); validation coverage {:.4f}); wrote {} (sha256 {})",
                   fo.model_dir, r.train_count, r.gate.threshold, r.gate.percentile, r.val_count, r.val_coverage, r.gate.file,
                   r.gate.sha256);
      return kExitOk;
    }
    if (*info) {
      const auto card = model::read_card(info_model);
      std::cout << (info_json ? model::card_to_json(card).dump(2) + "\n" : model::describe_card(card));
      return kExitOk;
    }
    if (*phantomc) {
      const int n = phantom::write_phantoms(phantom_out, p);
      spdlog::info("wrote {} phantom image(s) and mask(s) to {}", n, phantom_out);
      return kExitOk;
    }
  } catch (const Error& err) {
    spdlog::error("{}", printable(err.what()));
    return exit_code_for(err);
  } catch (const std::exception& err) {
    spdlog::error("{}", printable(err.what()));
    return kExitCannotRun;
  }
  return kExitUsage;
}
