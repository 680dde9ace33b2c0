#include "pipeline/diagnose_output.h"

#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"
#include "model/card.h"
#include "pipeline/earlier_records.h"
#include "report/output_file.h"

namespace fs = std::filesystem;

namespace medattn::pipeline {

void RecordCounts::add(const report::DiagnosisRecord& r) {
  if (r.ok && !r.abstained.empty()) {
    // Counted by check ("out of scope: DICOM Modality", "out of distribution"), not by value.
    const auto cut = r.abstained.find_first_of("'(0123456789");
    ++per_abstention[trim(r.abstained.substr(0, cut))];
  } else if (r.ok) {
    ++per_diagnosis[r.diagnosis];
  } else {
    ++per_reason[report::error_reason(r.error)];
  }
  if (r.warning.find(kHeatmapNotWritten) != std::string::npos) ++heatmap_failures;
}

struct DiagnoseOutput::Impl {
  std::unique_ptr<report::OutputLock> lock;
  bool append = false;
  std::unique_ptr<TempFile> whole;  // a format that is not appendable: a temporary file renamed when complete
  int owned_fd = -1;
  std::unique_ptr<report::FdStream> stream;
  std::unique_ptr<report::RecordWriter> writer;
  std::unique_ptr<report::HtmlReport> html;
  ~Impl() {
    if (owned_fd >= 0) ::close(owned_fd);
  }
};

DiagnoseOutput::DiagnoseOutput(const OutputOptions& options, DiagnoseOptions& diagnose)
    : options_(options), diagnose_(&diagnose), impl_(std::make_unique<Impl>()) {
  format_ = &report::resolve_output_format(options.format, options.path);
  const bool csv = format_->read_back == report::ReadBack::kCsv;
  if (options.resume && (options.path.empty() || !format_->appendable)) {
    std::string readable;
    for (const auto& f : report::output_formats()) {
      if (f.appendable) readable += std::string(readable.empty() ? "" : " or ") + f.name;
    }
    throw Error(ErrorKind::kInvalidArgument,
                "--resume needs -o FILE in " + readable + " format (the records already written are read back)");
  }
  // Outputs are checked before anything runs: never an input, a model file or another output
  // of this run; never a folder, a missing or unwritable folder (report/output_file.h).
  std::vector<report::OutputCheck> outputs;
  if (!options.path.empty()) outputs.push_back({options.path, "output"});
  if (!options.report.empty()) outputs.push_back({options.report, "report"});
  report::check_outputs(outputs, diagnose.inputs, diagnose.model_dir);
  if (!diagnose.heatmap_dir.empty()) {
    for (const auto& o : outputs) {
      std::error_code ec;
      if (fs::weakly_canonical(o.path, ec) == fs::weakly_canonical(diagnose.heatmap_dir, ec)) {
        throw file_error(ErrorKind::kInvalidArgument, "refusing to write", o.path, "it is also the heatmap folder of this run");
      }
    }
  }
  // One run at a time per output: the lock is taken before the file is read or changed.
  if (!options.path.empty()) {
    impl_->lock = std::make_unique<report::OutputLock>(options.path);
    // Temporaries of this output that killed runs left behind.
    remove_stale_temporaries(fs::path(options.path).parent_path().string(), fs::path(options.path).filename().string());
  }
  if (!options.report.empty()) {
    remove_stale_temporaries(fs::path(options.report).parent_path().string(), fs::path(options.report).filename().string());
  }
  // What an earlier run recorded; read before the model loads so a bad file fails fast.
  if (options.resume) {
    const std::string header = csv ? report::csv_header(model::read_card(diagnose.model_dir).classes) : "";
    recorded_ = read_recorded(options.path, csv, model::model_id(diagnose.model_dir), header);
    diagnose.skip_files = recorded_.files;
    std::error_code ec;
    impl_->append = fs::exists(options.path, ec) && fs::file_size(options.path, ec) > 0;
  }
  // Every write is checked (FdStream): the first failure stops the run with the errno's text,
  // and appended files are cut back to their last whole record.
  int fd = options.stdout_fd;
  if (!options.path.empty()) {
    if (!format_->appendable) {
      impl_->whole = std::make_unique<TempFile>(options.path, "cannot write output");
      fd = impl_->whole->fd();
    } else {
      fd = impl_->owned_fd = report::open_append(options.path, /*truncate=*/!impl_->append);
    }
  }
  impl_->stream = std::make_unique<report::FdStream>(fd, /*rollback=*/!options.path.empty() && !impl_->whole);
  if (!options.report.empty()) diagnose.thumbnail_size = 160;
}

DiagnoseOutput::~DiagnoseOutput() = default;

std::string DiagnoseOutput::name() const { return options_.path.empty() ? "<standard output>" : options_.path; }

void DiagnoseOutput::start(const std::vector<std::string>& classes, const std::string& model_id) {
  impl_->writer = format_->make_writer(*impl_->stream, classes, options_.table, impl_->append);
  if (options_.report.empty()) return;
  report::ReportInfo info;
  info.classes = classes;
  info.model_id = model_id;
  info.model_summary = model::describe_card(model::read_card(diagnose_->model_dir));
  info.command = options_.command;
  info.method = diagnose_->explain.method;
  impl_->html = std::make_unique<report::HtmlReport>(options_.report, info);
  // A resumed run's report shows the whole output file: first what earlier runs wrote.
  if (options_.resume) {
    const bool csv = format_->read_back == report::ReadBack::kCsv;
    for (const auto& r : read_earlier_records(options_.path, csv, classes, diagnose_->skip_files, diagnose_->thumbnail_size)) {
      impl_->html->add_earlier(r);
    }
  }
}

void DiagnoseOutput::write(const report::DiagnosisRecord& record) {
  counts_.add(record);
  impl_->writer->write(record);
  // The first failed write stops the run.
  if (impl_->stream->error() != 0) throw file_error(ErrorKind::kIOError, "cannot write output", name(), errno_text(impl_->stream->error()));
  if (impl_->html) impl_->html->add(record);
}

void DiagnoseOutput::finish(const report::RunTotals& totals) {
  impl_->writer->finish();
  impl_->stream->flush();
  if (impl_->stream->error() != 0) throw file_error(ErrorKind::kIOError, "cannot write output", name(), errno_text(impl_->stream->error()));
  if (impl_->whole) impl_->whole->commit(/*sync=*/true);
  if (impl_->html) impl_->html->finish(totals);
}

}  // namespace medattn::pipeline
