#include "io/csv.h"

#include <algorithm>
#include <filesystem>

#include "core/bounded_io.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"

namespace medattn::io {

std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& path) {
  std::vector<CsvRecord> records;
  size_t i = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;
  int line = 1;
  while (i < text.size()) {
    CsvRecord rec;
    rec.line = line;
    std::string field;
    bool quoted_field = false;
    for (;;) {
      if (i >= text.size()) {
        rec.fields.push_back(field);
        break;
      }
      const char c = text[i];
      if (c == '"' && field.empty() && !quoted_field) {
        quoted_field = true;
        ++i;
        const int start_line = line;
        for (;;) {
          if (i >= text.size())
            throw file_error(ErrorKind::kCorruption, "cannot read CSV", path,
                             "line " + std::to_string(start_line) + ": unterminated quoted field");
          if (text[i] == '"') {
            if (i + 1 < text.size() && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (text[i] == '\n') ++line;
          field += text[i++];
        }
        continue;
      }
      if (c == ',') {
        rec.fields.push_back(field);
        field.clear();
        quoted_field = false;
        ++i;
        continue;
      }
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (c == '\n' || c == '\r') {
        rec.fields.push_back(field);
        ++i;
        ++line;
        break;
      }
      field += c;
      ++i;
    }
    const bool blank = rec.fields.size() == 1 && rec.fields[0].empty();
    if (!blank) records.push_back(std::move(rec));
  }
  return records;
}

int CsvTable::column(const std::string& name) const {
  const auto it = std::find(header.begin(), header.end(), name);
  return it == header.end() ? -1 : static_cast<int>(it - header.begin());
}

std::string CsvTable::resolve(const std::string& field) const {
  const std::filesystem::path p(field), base = std::filesystem::path(path).parent_path();
  return (p.is_absolute() || base.empty() ? p : base / p).string();
}

CsvTable read_csv_table(const std::string& path, const std::string& what, const std::string& empty) {
  // Only a regular file of at most 4 GiB (a FIFO would block, /dev/zero never ends).
  if (const std::string kind = special_file_kind(path); !kind.empty()) {
    throw file_error(ErrorKind::kInvalidArgument, what, path, "not a regular file (" + kind + ")");
  }
  std::string text;
  try {
    text = read_file_bounded(path, ErrorKind::kIOError, what, uint64_t{4} << 30);
  } catch (const Error& e) {
    if (std::string(e.what()).find("file too large") != std::string::npos) throw;
    throw file_error(ErrorKind::kIOError, what, path, "cannot open the file");
  }
  auto records = parse_csv(text, path);
  if (records.empty()) throw file_error(ErrorKind::kCorruption, what, path, empty);
  CsvTable table;
  table.path = path;
  for (const auto& h : records[0].fields) table.header.push_back(lower_trimmed(h));
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].fields.size() != table.header.size()) {
      throw file_error(ErrorKind::kCorruption, what, path,
                       "line " + std::to_string(records[r].line) + ": expected " + std::to_string(table.header.size()) +
                           " fields, got " + std::to_string(records[r].fields.size()));
    }
  }
  records.erase(records.begin());
  table.rows = std::move(records);
  return table;
}

}  // namespace medattn::io
