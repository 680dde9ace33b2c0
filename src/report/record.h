// One diagnosed (or failed) input, and the writers that print records in the formats of
// ../shared/CLI.md: table, json, jsonl, csv.
#pragma once

#include <memory>
#include <optional>
#include <opencv2/core.hpp>
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
  // An answer without a diagnosis: the scope check or the OOD gate that said no, with its score
  // and threshold (one line); then `diagnosis` is empty and `ok` stays true, and the
  // probabilities are kept. Empty: not abstained.
  std::string abstained;
  std::optional<double> ood_score;  // the gate's score; none for a model without a gate
  // A check that would have abstained but was overridden (--ignore-scope, --no-abstain); empty: none.
  std::string warning;
  int width = 0, height = 0;  // original image size
  std::string format;         // "dicom", "png", ...
  // The window (centre, width) that mapped the pixels to the model's input and the display, and
  // where it came from ("file" or "--window"); recorded for DICOM and NIfTI inputs and whenever
  // --window was given, because it changes the diagnosis. Empty source: not recorded.
  double window_center = 0, window_width = 0;
  std::string window_source;
  // Share of the heatmap's mass per cell of a 3x3 grid (report/terminal.h); empty when no
  // heatmap was computed.
  std::vector<std::pair<std::string, double>> attention_regions;
  // Models with clinical covariates: the share of the CLS token's attention rollout that went
  // to each covariate (in the card's order), and the covariates that were missing for this image.
  std::vector<std::pair<std::string, double>> clinical_attention;
  std::vector<std::string> clinical_missing;
  std::string model;      // id of the model that wrote it ("name@sha256-prefix"); empty: unknown
  // DICOM inputs: the identifiers that trace the result back to its image (empty: absent, or
  // not a DICOM input), and the objects `--dicom-out` wrote (report/dicom_out.h).
  std::string study_uid, series_uid, sop_uid, patient_id, accession_number, modality;
  std::string dicom_sc, dicom_sr;
  cv::Mat thumbnail;     // a small overlay (CV_8UC3) for the HTML report; empty when not wanted
  cv::Mat preview;       // the overlay (CV_8UC3) for a terminal preview; empty when not wanted
  cv::Mat preview_heat;  // the heatmap (CV_32FC1) for an ASCII preview; empty when not wanted
};

// The JSON object of CLI.md: file, diagnosis, probability, probabilities, heatmap, error,
// abstained, ood_score (null where absent), plus heatmap_raw, width, height, format, model,
// study_uid, series_uid, sop_uid, patient_id, accession_number, modality (null for non-DICOM
// inputs or when absent), dicom_sc and dicom_sr when written, and warning when there is one. Strings are UTF-8: a byte that is not part of well-formed UTF-8
// is written "\xHH", and a file name holding one also gets "file_hex", the hex of its exact
// bytes (what --resume and merge read back; see README "Outputs"). An abstained record has "diagnosis" and "probability" null and
// keeps "probabilities". Probabilities rounded to 6
// decimals so output is stable across platforms.
nlohmann::json record_to_json(const DiagnosisRecord& record);

// The output formats; their names, extensions and writers are in the table of
// report/output_format.h.
enum class Format { kTable, kJson, kJsonl, kCsv };

// Parses a format's name (report/output_format.h); throws medattn::Error(kInvalidArgument)
// naming the choices otherwise.
Format parse_format(const std::string& name);

// Streams records in one format. jsonl and csv write (and flush) each record as it comes;
// json writes the array as it goes and closes it in finish(); table aligns columns.
class RecordWriter {
 public:
  virtual ~RecordWriter() = default;
  virtual void write(const DiagnosisRecord& record) = 0;
  virtual void finish() = 0;  // REQUIRES: called once, after the last write()
};

// How the table looks on a terminal.
struct TableOptions {
  bool colour = false;         // colour the diagnosis by confidence (terminals without NO_COLOR)
  bool preview = false;        // draw each record's preview image under its row
  int preview_width = 48;      // characters
  int colour_mode = 0;         // report::ColourMode as int: 0 truecolour, 1 256 colours, 2 ASCII
  size_t max_path = 60;        // longer file names are shortened in the middle
};

// `classes` (model order) fixes the csv columns; `csv_header` false continues an existing csv
// (--resume). The writer does not own `out`.
std::unique_ptr<RecordWriter> make_writer(Format format, std::ostream& out,
                                          const std::vector<std::string>& classes,
                                          const TableOptions& table = {}, bool csv_header = true);

// "abcdef...uvwxyz": at most `width` characters, the middle replaced by "...".
std::string shorten_middle(const std::string& text, size_t width);

// The csv header line (without its newline) for a model with `classes`: what --resume
// compares with an existing file's header.
std::string csv_header(const std::vector<std::string>& classes);

// Quotes a CSV field when it holds a comma, quote or newline (RFC 4180).
std::string csv_field(const std::string& value);

}  // namespace medattn::report
