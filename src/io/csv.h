// RFC 4180 CSV parsing, shared by the CSV dataset reader and the readers of medattn's own
// csv outputs (resume, merge).
#pragma once

#include <string>
#include <vector>

namespace medattn::io {

struct CsvRecord {
  int line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

// Comma-separated, double-quoted fields may hold commas, quotes ("") and newlines. CRLF and
// LF line ends; a UTF-8 byte-order mark is ignored; blank lines are skipped. Throws
// medattn::Error(kCorruption) naming `path` and the line of an unterminated quoted field.
std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& path);

// A CSV file with a header row, as people write them for medattn (datasets, covariates).
struct CsvTable {
  std::string path;                 // as given
  std::vector<std::string> header;  // column names, trimmed and lower case
  std::vector<CsvRecord> rows;      // the records after the header, each with header.size() fields
  // The index of column `name` (lower case), or -1.
  int column(const std::string& name) const;
  // A path written in the CSV: relative paths are taken from the CSV's folder.
  std::string resolve(const std::string& field) const;
};

// Reads `path` as a CsvTable. Throws medattn::Error naming the file after `what` (e.g.
// "cannot read CSV"): kIOError when it cannot be read; kCorruption when it is empty (the
// reason given is `empty`), a quoted field is unterminated, or a record has another number of
// fields than the header (naming its line).
CsvTable read_csv_table(const std::string& path, const std::string& what, const std::string& empty);

}  // namespace medattn::io
