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

}  // namespace medattn::io
