#include "pipeline/batch.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/sha256.h"
#include "core/text.h"
#include "io/csv.h"
#include "report/output_file.h"
#include "report/output_format.h"

namespace fs = std::filesystem;

namespace medattn::pipeline {
namespace {

bool parse_int(const std::string& s, int* out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = std::stoi(s);
  return true;
}

// The records of a diagnose output, by record: a jsonl line, or a csv record, whose quoted
// fields may hold newlines (a file name can). `torn` is set when the text ends inside a
// record (no final newline, or inside a quoted field): a crash mid-write; `complete` is then
// the length of the text before that record.
struct RawRecord {
  int line = 0;  // 1-based line where it starts
  std::string text;  // without its newline (nor a CR before it)
};
struct RawRecords {
  std::vector<RawRecord> records;
  size_t complete = 0;
  bool torn = false;
};

RawRecords split_records(const std::string& text, bool csv) {
  RawRecords out;
  size_t start = 0;
  int line = 1, start_line = 1;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (csv && c == '"') quoted = !quoted;  // "" inside a quoted field toggles twice
    if (c != '\n') continue;
    ++line;
    if (quoted) continue;
    std::string rec = text.substr(start, i - start);
    if (!rec.empty() && rec.back() == '\r') rec.pop_back();
    if (!rec.empty()) out.records.push_back({start_line, std::move(rec)});
    start = i + 1;
    start_line = line;
  }
  out.complete = start;
  out.torn = start < text.size();
  return out;
}

// Column positions of a diagnose csv header.
struct CsvColumns {
  int file = -1, model = -1;
};

CsvColumns csv_columns(const std::vector<std::string>& header, const std::string& path) {
  CsvColumns c;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "file") c.file = static_cast<int>(i);
    if (header[i] == "model") c.model = static_cast<int>(i);
  }
  if (c.file < 0) throw file_error(ErrorKind::kCorruption, "cannot read diagnose output", path, "the csv header has no 'file' column");
  return c;
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  Shard s;
  if (slash == std::string::npos || !parse_int(text.substr(0, slash), &s.index) ||
      !parse_int(text.substr(slash + 1), &s.count) || s.count < 1 || s.index >= s.count) {
    throw Error(ErrorKind::kInvalidArgument, "--shard expects K/N with 0 <= K < N, e.g. 0/4 (got '" + text + "')");
  }
  return s;
}

std::string shard_key(const io::InputItem& item) {
  if (!item.relative.empty()) return fs::path(item.relative).lexically_normal().generic_string();
  return fs::path(item.path).lexically_normal().generic_string();
}

std::string heatmap_stem(const io::InputItem& item) {
  const fs::path given = item.relative.empty() ? fs::path(item.argument) : fs::path(item.argument) / item.relative;
  const std::string key = given.lexically_normal().generic_string();
  std::string stem = io::heatmap_stem(item);
  if (stem.size() > 200) stem.resize(200);
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(fnv1a64(key.data(), key.size())));
  return stem + "-" + std::string(hash, 8);
}

int shard_of(const std::string& key, int count) {
  return static_cast<int>(fnv1a64(key.data(), key.size()) % static_cast<uint64_t>(std::max(1, count)));
}

namespace {

std::string record_error(const std::string& path, int line, const std::string& why) {
  return file_error(ErrorKind::kCorruption, "cannot read diagnose output", path, "line " + std::to_string(line) + why).what();
}

// Parses the records of `raw` (all complete) into OutputLines; csv: the first is the header.
std::vector<OutputLine> parse_records(const RawRecords& raw, const std::string& path, bool csv, std::string* header) {
  std::vector<OutputLine> out;
  if (csv) {
    if (raw.records.empty()) return out;
    const auto head = io::parse_csv(raw.records[0].text, path);
    if (head.size() != 1) throw Error(ErrorKind::kCorruption, record_error(path, 1, ": the csv header is not one record"));
    const CsvColumns col = csv_columns(head[0].fields, path);
    int error_col = -1, warning_col = -1;
    for (size_t i = 0; i < head[0].fields.size(); ++i) {
      if (head[0].fields[i] == "error") error_col = static_cast<int>(i);
      if (head[0].fields[i] == "warning") warning_col = static_cast<int>(i);
    }
    if (header != nullptr) *header = raw.records[0].text;
    for (size_t r = 1; r < raw.records.size(); ++r) {
      const auto rows = io::parse_csv(raw.records[r].text, path);
      if (rows.size() != 1 || rows[0].fields.size() != head[0].fields.size()) {
        throw Error(ErrorKind::kCorruption,
                    record_error(path, raw.records[r].line, ": expected " + std::to_string(head[0].fields.size()) + " fields"));
      }
      const auto& f = rows[0].fields;
      OutputLine line;
      line.file = f[col.file];
      if (col.model >= 0) line.model = f[col.model];
      if (error_col >= 0) line.error = f[error_col];
      if (warning_col >= 0) line.warning = f[warning_col];
      line.text = raw.records[r].text;
      out.push_back(std::move(line));
    }
    return out;
  }
  for (const auto& rec : raw.records) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(rec.text);
    } catch (const nlohmann::json::exception&) {
      throw Error(ErrorKind::kCorruption, record_error(path, rec.line, " is not JSON"));
    }
    if (!j.is_object() || !j.contains("file") || !j["file"].is_string()) {
      throw Error(ErrorKind::kCorruption, record_error(path, rec.line, " is not a diagnose record (no \"file\")"));
    }
    OutputLine line;
    line.file = j["file"].get<std::string>();
    // A name that is not UTF-8: its exact bytes are in "file_hex" (report/record.h).
    if (j.contains("file_hex") && (!j["file_hex"].is_string() || !from_hex(j["file_hex"].get<std::string>(), &line.file))) {
      throw Error(ErrorKind::kCorruption, record_error(path, rec.line, ": \"file_hex\" is not hex"));
    }
    if (j.contains("model") && j["model"].is_string()) line.model = j["model"].get<std::string>();
    if (j.contains("error") && j["error"].is_string()) line.error = j["error"].get<std::string>();
    if (j.contains("warning") && j["warning"].is_string()) line.warning = j["warning"].get<std::string>();
    line.text = rec.text;
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace

std::vector<OutputLine> read_output(const std::string& path, bool csv, std::string* header) {
  const RawRecords raw = split_records(read_file(path), csv);
  if (raw.torn) {
    throw file_error(ErrorKind::kCorruption, "cannot read diagnose output", path,
                     "its last record is cut short (a run that crashed: --resume it first)");
  }
  return parse_records(raw, path, csv, header);
}

bool transient_error(const std::string& error) {
  if (error.empty()) return false;
  // The errno texts of failures that come from the machine, not from the image.
  static const int kTransient[] = {ENOSPC, EDQUOT, EIO, ENOMEM, EMFILE, ENFILE, EAGAIN, EINTR,
                                   ETIMEDOUT, ESTALE, EROFS, EACCES, EPERM, ENOLCK, EBUSY};
  for (int e : kTransient) {
    if (error.find(std::strerror(e)) != std::string::npos) return true;
  }
  return error.find("out of memory") != std::string::npos || error.find("bad_alloc") != std::string::npos;
}

bool retry_on_resume(const OutputLine& line) {
  return transient_error(line.error) ||
         (line.warning.find(kHeatmapNotWritten) != std::string::npos && transient_error(line.warning));
}

Recorded read_recorded(const std::string& path, bool csv, const std::string& model_id, const std::string& csv_header) {
  Recorded rec;
  std::error_code ec;
  if (!fs::exists(path, ec)) return rec;
  const std::string text = read_file(path);
  RawRecords raw = split_records(text, csv);
  rec.truncated = raw.torn;  // a crash mid-write: the partial record is dropped
  std::string header;
  const auto lines = parse_records(raw, path, csv, &header);
  if (csv && !csv_header.empty() && !header.empty() && header != csv_header) {
    throw file_error(ErrorKind::kCorruption, "cannot resume", path,
                     "its csv columns (" + header + ") differ from this model's (" + csv_header +
                         "); write to another file or use the model that wrote it");
  }
  std::string kept = csv && !header.empty() ? header + "\n" : "";
  for (const auto& line : lines) {
    ++rec.records;
    if (line.model == model_id && retry_on_resume(line)) {
      ++rec.retried;  // diagnosed again: its record leaves the file
      continue;
    }
    kept += line.text + "\n";
    if (line.model == model_id) {
      rec.files.insert(line.file);
    } else {
      ++rec.other_model;
    }
  }
  if (rec.truncated || rec.retried > 0) {
    // Rewritten whole and renamed into place (the caller holds the output's lock), so that a
    // crash now leaves the old file or the new one.
    write_file_atomic(path, kept);
  }
  return rec;
}

MergeReport merge_outputs(const std::vector<std::string>& shard_files, const std::string& out,
                          const std::vector<std::string>& inputs) {
  // Never over a shard file, a folder or into a missing one (report/output_file.h).
  report::check_outputs({{out, "output"}}, shard_files, "");
  // The records' syntax from the output format table (report/output_format.h): csv by the
  // extension, JSON lines otherwise.
  const bool csv = report::resolve_output_format("", out).read_back == report::ReadBack::kCsv;
  MergeReport report;
  std::string header;
  std::map<std::string, std::string> by_file;  // file -> the first record's text
  std::vector<std::string> first_seen;
  for (const auto& shard : shard_files) {
    std::string h;
    for (auto& line : read_output(shard, csv, &h)) {
      report.models.insert(line.model);
      if (by_file.count(line.file)) {
        report.duplicates.push_back(line.file);
        continue;
      }
      first_seen.push_back(line.file);
      by_file.emplace(line.file, std::move(line.text));
    }
    if (csv && !h.empty()) {
      if (!header.empty() && h != header) {
        throw file_error(ErrorKind::kInvalidArgument, "cannot merge", shard, "its csv columns differ from the first shard's (another model?)");
      }
      header = h;
    }
    ++report.shards;
  }
  std::vector<std::string> order;
  if (!inputs.empty()) {
    io::InputWalker walker(inputs, nullptr);
    io::InputWalker::Event e;
    std::set<std::string> expected;
    while (walker.next(e)) {
      if (e.kind == io::InputWalker::Kind::kSkipped) continue;
      if (!expected.insert(e.item.path).second) continue;
      if (by_file.count(e.item.path)) {
        order.push_back(e.item.path);
      } else {
        report.missing.push_back(e.item.path);
      }
    }
    for (const auto& f : first_seen) {
      if (!expected.count(f)) {
        report.unexpected.push_back(f);
        order.push_back(f);
      }
    }
  } else {
    order = first_seen;
    std::sort(order.begin(), order.end());
  }
  std::string text = csv && !header.empty() ? header + "\n" : "";
  for (const auto& f : order) text += by_file[f] + "\n";
  write_file_atomic(out, text);
  report.records = static_cast<int>(order.size());
  return report;
}

}  // namespace medattn::pipeline
