// Where diagnose's records go: the output-file handling behind `diagnose -o FILE --format
// --resume --report` as a library object, so that tests reach it without the binary. The
// format comes from the table of report/output_format.h (from -o's extension when --format is
// not given); outputs are checked before anything runs; one run at a time per output (a lock);
// --resume reads back what an earlier run wrote and appends; a json file is written through a
// temporary file renamed into place when complete; and the records are counted for the
// closing summary.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/batch.h"
#include "pipeline/diagnose.h"
#include "report/html_report.h"
#include "report/output_format.h"
#include "report/record.h"

namespace medattn::pipeline {

struct OutputOptions {
  std::string path;    // -o FILE; empty: `stdout_fd`
  std::string format;  // --format; empty: from path's extension, else table
  bool resume = false; // --resume: skip the inputs recorded in `path` by the same model, and append
  std::string report;  // --report FILE.html; empty: none
  std::string command; // the command line, for the report
  report::TableOptions table;  // how a table looks (colours and previews are the caller's choice)
  int stdout_fd = 1;   // where records go without a path
};

// What the closing summary counts.
struct RecordCounts {
  std::map<std::string, int> per_diagnosis;   // diagnosed, by class
  std::map<std::string, int> per_abstention;  // abstained, by check ("out of scope: DICOM Modality", ...), not by value
  std::map<std::string, int> per_reason;      // failed, by report::error_reason
  int heatmap_failures = 0;                   // diagnoses kept whose heatmap could not be written
  void add(const report::DiagnosisRecord& record);
};

class DiagnoseOutput {
 public:
  // Before anything runs: resolves the format; refuses --resume without -o or in a format that
  // is not read back (kInvalidArgument "--resume needs -o FILE in jsonl or csv format (the
  // records already written are read back)"); checks the outputs (report::check_outputs: never
  // an input, a model file, each other or the heatmap folder); takes the output's lock
  // (report::OutputLock) and removes the temporaries killed runs left beside the outputs; with
  // resume reads back the earlier records (pipeline::read_recorded) and adds their files to
  // diagnose.skip_files; opens the output (json: a temporary file). Sets
  // diagnose.thumbnail_size for the report. Throws medattn::Error as those do.
  DiagnoseOutput(const OutputOptions& options, DiagnoseOptions& diagnose);
  ~DiagnoseOutput();
  DiagnoseOutput(const DiagnoseOutput&) = delete;
  DiagnoseOutput& operator=(const DiagnoseOutput&) = delete;

  const report::OutputFormat& format() const { return *format_; }
  // With resume: what the output already held.
  const Recorded& recorded() const { return recorded_; }
  // "<standard output>" or the path.
  std::string name() const;

  // Once the model is loaded (run_diagnose's StartCallback): makes the writer and the report,
  // which with resume first lists the records earlier runs wrote.
  void start(const std::vector<std::string>& classes, const std::string& model_id);
  // Counts and writes one record (and adds it to the report). Throws medattn::Error(kIOError)
  // "cannot write output '<name>': <errno text>" at the first failed write; a jsonl or csv file
  // keeps its last whole record.
  void write(const report::DiagnosisRecord& record);
  // Closes the records (json: the temporary file is renamed into place) and writes the report.
  // REQUIRES: start() was called.
  void finish(const report::RunTotals& totals);

  const RecordCounts& counts() const { return counts_; }

 private:
  struct Impl;
  const report::OutputFormat* format_ = nullptr;
  OutputOptions options_;
  const DiagnoseOptions* diagnose_ = nullptr;
  Recorded recorded_;
  RecordCounts counts_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace medattn::pipeline
