// One diagnosed (or failed) input, and the writers that print records in the formats of
// ../shared/CLI.md: table, json, jsonl, csv.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace medattn::report {

struct DiagnosisRecord {
  std::string file;       // the path as given
  bool ok = false;        // false: `error` says why
  std::string diagnosis;  // the predicted class
  double probability = 0; // its probability
  std::vector<std::pair<std::string, double>> probabilities;  // every class, in model order
  std::string heatmap;      // overlay PNG path, empty when none was written
  std::string heatmap_raw;  // 16-bit raw map PNG path, empty when none
  std::string error;        // one line, empty when ok
  int width = 0, height = 0;  // original image size
  std::string format;         // "dicom", "png", ...
};

// The JSON object of CLI.md: file, diagnosis, probability, probabilities, heatmap, error
// (null where absent), plus heatmap_raw, width, height, format. Probabilities rounded to 6
// decimals so output is stable across platforms.
nlohmann::json record_to_json(const DiagnosisRecord& record);

enum class Format { kTable, kJson, kJsonl, kCsv };

// Parses "table", "json", "jsonl", "csv"; throws medattn::Error(kInvalidArgument) otherwise.
Format parse_format(const std::string& name);

// Streams records in one format. jsonl and csv write (and flush) each record as it comes;
// json writes the array as it goes and closes it in finish(); table aligns columns.
class RecordWriter {
 public:
  virtual ~RecordWriter() = default;
  virtual void write(const DiagnosisRecord& record) = 0;
  virtual void finish() = 0;  // REQUIRES: called once, after the last write()
};

// `classes` (model order) fixes the csv columns. The writer does not own `out`.
std::unique_ptr<RecordWriter> make_writer(Format format, std::ostream& out,
                                          const std::vector<std::string>& classes);

// Quotes a CSV field when it holds a comma, quote or newline (RFC 4180).
std::string csv_field(const std::string& value);

}  // namespace medattn::report
