#include "io/csv.h"

#include "core/error.h"

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

}  // namespace medattn::io
