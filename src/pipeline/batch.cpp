#include "pipeline/batch.h"

#include <unistd.h>

#include <algorithm>
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

namespace fs = std::filesystem;

namespace medattn::pipeline {
namespace {

bool parse_int(const std::string& s, int* out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = std::stoi(s);
  return true;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
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

int shard_of(const std::string& key, int count) {
  return static_cast<int>(fnv1a64(key.data(), key.size()) % static_cast<uint64_t>(std::max(1, count)));
}

std::vector<OutputLine> read_output(const std::string& path, bool csv, std::string* header) {
  const std::string text = read_file(path);
  std::vector<OutputLine> out;
  if (csv) {
    const auto rows = io::parse_csv(text, path);
    if (rows.empty()) return out;
    const CsvColumns col = csv_columns(rows[0].fields, path);
    if (header != nullptr) *header = text.substr(0, text.find('\n'));
    const auto lines = split_lines(text);
    for (size_t r = 1; r < rows.size(); ++r) {
      const auto& f = rows[r].fields;
      if (static_cast<int>(f.size()) <= col.file || f.size() != rows[0].fields.size()) {
        throw file_error(ErrorKind::kCorruption, "cannot read diagnose output", path,
                         "line " + std::to_string(rows[r].line) + ": expected " + std::to_string(rows[0].fields.size()) + " fields");
      }
      OutputLine line;
      line.file = f[col.file];
      if (col.model >= 0) line.model = f[col.model];
      line.text = lines.at(rows[r].line - 1);  // records never span lines: fields carry no newlines
      out.push_back(std::move(line));
    }
    return out;
  }
  int number = 0;
  for (const auto& l : split_lines(text)) {
    ++number;
    if (l.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l);
    } catch (const nlohmann::json::exception&) {
      throw file_error(ErrorKind::kCorruption, "cannot read diagnose output", path,
                       "line " + std::to_string(number) + " is not JSON");
    }
    if (!j.is_object() || !j.contains("file") || !j["file"].is_string()) {
      throw file_error(ErrorKind::kCorruption, "cannot read diagnose output", path,
                       "line " + std::to_string(number) + " is not a diagnose record (no \"file\")");
    }
    OutputLine line;
    line.file = j["file"].get<std::string>();
    // A name that is not UTF-8: its exact bytes are in "file_hex" (report/record.h).
    if (j.contains("file_hex") && (!j["file_hex"].is_string() || !from_hex(j["file_hex"].get<std::string>(), &line.file))) {
      throw file_error(ErrorKind::kCorruption, "cannot read diagnose output", path,
                       "line " + std::to_string(number) + ": \"file_hex\" is not hex");
    }
    if (j.contains("model") && j["model"].is_string()) line.model = j["model"].get<std::string>();
    line.text = l;
    out.push_back(std::move(line));
  }
  return out;
}

Recorded read_recorded(const std::string& path, bool csv, const std::string& model_id) {
  Recorded rec;
  std::error_code ec;
  if (!fs::exists(path, ec)) return rec;
  std::string text = read_file(path);
  if (!text.empty() && text.back() != '\n') {
    // A crash mid-write: drop the partial line, on disk too, so the run appends cleanly.
    const size_t keep = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
      throw file_error(ErrorKind::kIOError, "cannot repair", path, std::strerror(errno));
    }
    rec.truncated = true;
  }
  for (const auto& line : read_output(path, csv, nullptr)) {
    ++rec.records;
    if (line.model == model_id) {
      rec.files.insert(line.file);
    } else {
      ++rec.other_model;
    }
  }
  return rec;
}

MergeReport merge_outputs(const std::vector<std::string>& shard_files, const std::string& out,
                          const std::vector<std::string>& inputs) {
  const bool csv = fs::path(out).extension() == ".csv";
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
