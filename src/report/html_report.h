// `diagnose --report FILE.html`: one self-contained HTML file (no external files, scripts or
// fonts) with a sortable table of every record, thumbnails with the heatmap overlay, the
// model card summary and the run's timing. Rows are streamed to a temporary file as records
// arrive, so memory does not grow with the archive; finish() assembles the page and renames
// it into place, so FILE.html is either complete or absent.
#pragma once

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/fs.h"
#include "report/record.h"

namespace medattn::report {

struct ReportInfo {
  std::string title = "medattn diagnose report";
  std::vector<std::string> classes;  // model order: one probability column each
  std::string model_id;              // "name@sha256-prefix"
  std::string model_summary;         // describe_card() text
  std::string command;               // the command line of the run
  std::string method;                // heatmap method of the thumbnails
};

struct RunTotals {
  double seconds = 0;
  int workers = 0, threads = 0;
  std::string shard;    // "K/N" or empty
  int resumed = 0;      // inputs skipped because an earlier run recorded them
};

class HtmlReport {
 public:
  // Throws medattn::Error(kIOError) naming `path` when its folder is not writable.
  HtmlReport(std::string path, ReportInfo info);
  ~HtmlReport();  // an unfinished report leaves no file behind
  HtmlReport(const HtmlReport&) = delete;
  HtmlReport& operator=(const HtmlReport&) = delete;

  void add(const DiagnosisRecord& record);
  // A record an earlier run wrote to the same output (--resume): listed like the others and
  // counted apart in the summary, so the report always shows the whole output file.
  void add_earlier(const DiagnosisRecord& record);
  // Writes the page atomically. REQUIRES: called once, after the last add().
  void finish(const RunTotals& totals);

 private:
  std::string path_;
  ReportInfo info_;
  std::unique_ptr<TempFile> rows_;  // the rows written so far
  int count_ = 0, failed_ = 0, abstained_ = 0;
  int dicom_out_ = 0;  // records with a DICOM SC and SR written (--dicom-out)
  std::map<std::string, int> per_diagnosis_;
  std::map<std::string, int> per_reason_;
  int earlier_ = 0;
  bool finished_ = false;
};

// The path of `target` relative to the folder of `report`, percent-encoded for an href (bytes
// outside A-Z a-z 0-9 - _ . ~ / become %HH). Empty when there is none.
std::string relative_link(const std::string& target, const std::string& report);

// "<" -> "&lt;" and so on, for text and attribute values.
std::string html_escape(const std::string& text);

// Standard base64 (RFC 4648) with padding.
std::string base64(const std::vector<unsigned char>& bytes);

// The reason part of an error line "cannot read 'x.png': truncated file" -> "cannot read:
// truncated file", so that failures can be counted by kind across files.
std::string error_reason(const std::string& error);

}  // namespace medattn::report
