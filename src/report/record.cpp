#include "report/record.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "core/error.h"
#include "core/text.h"
#include "report/output_format.h"
#include "report/terminal.h"

namespace medattn::report {
namespace {

using nlohmann::json;

double round6(double v) { return std::round(v * 1e6) / 1e6; }

// Errors are one line by contract; a decoder message with a newline must not split a csv row.
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

class JsonWriter : public RecordWriter {
 public:
  JsonWriter(std::ostream& out, bool lines) : out_(out), lines_(lines) {}
  void write(const DiagnosisRecord& r) override {
    const std::string text = record_to_json(r).dump();
    if (lines_) {
      out_ << text << "\n" << std::flush;
    } else {
      out_ << (count_ == 0 ? "[\n  " : ",\n  ") << text;
    }
    ++count_;
  }
  void finish() override {
    if (!lines_) out_ << (count_ == 0 ? "[]\n" : "\n]\n");
    out_ << std::flush;
  }

 private:
  std::ostream& out_;
  bool lines_;
  size_t count_ = 0;
};

class CsvWriter : public RecordWriter {
 public:
  CsvWriter(std::ostream& out, std::vector<std::string> classes, bool header) : out_(out), classes_(std::move(classes)) {
    if (header) out_ << csv_header(classes_) << "\n" << std::flush;
  }
  void write(const DiagnosisRecord& r) override {
    const bool diagnosed = r.ok && r.abstained.empty();
    out_ << csv_field(r.file) << "," << csv_field(diagnosed ? r.diagnosis : "") << ","
         << (diagnosed ? fixed(r.probability, 6) : "");
    for (size_t i = 0; i < classes_.size(); ++i) {
      out_ << ",";
      if (r.ok && i < r.probabilities.size()) out_ << fixed(r.probabilities[i].second, 6);
    }
    // One line per record, flushed whole: a crash leaves complete lines (see --resume).
    out_ << "," << csv_field(r.heatmap) << "," << csv_field(one_line(r.error)) << "," << csv_field(r.model) << ","
         << csv_field(one_line(r.abstained)) << "," << (r.ood_score ? fixed(*r.ood_score, 4) : "") << ","
         << csv_field(one_line(r.warning));
    for (const std::string* s : {&r.study_uid, &r.series_uid, &r.sop_uid, &r.patient_id, &r.accession_number, &r.modality,
                                 &r.dicom_sc, &r.dicom_sr}) {
      out_ << "," << csv_field(one_line(*s));
    }
    out_ << "\n" << std::flush;
  }
  void finish() override { out_ << std::flush; }

 private:
  std::ostream& out_;
  std::vector<std::string> classes_;
};

// "covariates: used age, sex; missing localization": which of the model's covariates this
// image had, so that a --clinical CSV without the image's row does not change an answer unseen.
std::string covariate_summary(const DiagnosisRecord& r) {
  std::string used, missing;
  for (const auto& [name, share] : r.clinical_attention) {
    const bool absent = std::find(r.clinical_missing.begin(), r.clinical_missing.end(), name) != r.clinical_missing.end();
    std::string& list = absent ? missing : used;
    list += (list.empty() ? "" : ", ") + printable(name);
  }
  if (used.empty()) return "covariates: all missing (" + missing + ")";
  return "covariates: used " + used + (missing.empty() ? "" : "; missing " + missing);
}

// File names, errors and paths are shown through printable() (core/text.h): a name holding
// ESC or BEL must not drive the terminal. Buffers rows to align columns (people read tables, so the wait is acceptable), unless
// previews are drawn: then each record is printed as it comes, with its picture.
class TableWriter : public RecordWriter {
 public:
  TableWriter(std::ostream& out, const TableOptions& options) : out_(out), options_(options) {}
  void write(const DiagnosisRecord& r) override {
    if (!options_.preview) {
      rows_.push_back(r);
      return;
    }
    print_row(r, std::max<size_t>(4, std::min(options_.max_path, printable(r.file).size())), 9);
    const auto mode = static_cast<ColourMode>(options_.colour_mode);
    if (mode == ColourMode::kAscii && !r.preview_heat.empty()) {
      out_ << render_ascii_heat(r.preview_heat, options_.preview_width) << legend_line(mode) << "\n";
    } else if (!r.preview.empty()) {
      out_ << render_halfblocks(r.preview, options_.preview_width, mode) << legend_line(mode) << "\n";
    }
    out_ << "\n" << std::flush;
  }
  void finish() override {
    if (options_.preview) return;
    size_t wf = 4, wd = 9;
    for (const auto& r : rows_) {
      wf = std::max(wf, std::min(options_.max_path, printable(r.file).size()));
      if (r.ok && r.abstained.empty()) wd = std::max(wd, r.diagnosis.size());
    }
    out_ << std::left << std::setw(static_cast<int>(wf)) << "FILE" << "  " << std::setw(static_cast<int>(wd))
         << "DIAGNOSIS" << "  " << std::setw(6) << "PROB" << "  " << "DETAILS\n";
    for (const auto& r : rows_) print_row(r, wf, wd);
    out_ << std::flush;
  }

 private:
  void print_row(const DiagnosisRecord& r, size_t wf, size_t wd) {
    out_ << std::left << std::setw(static_cast<int>(wf)) << shorten_middle(printable(r.file), wf) << "  ";
    if (!r.ok) {
      out_ << std::setw(static_cast<int>(wd)) << "-" << "  " << std::setw(6) << "-" << "  error: " << printable(r.error) << "\n";
      return;
    }
    if (!r.abstained.empty()) {
      // No diagnosis: the probabilities are shown for whoever wants them, after the reason.
      out_ << std::setw(static_cast<int>(wd)) << "ABSTAINED" << "  " << std::setw(6) << "-" << "  " << printable(r.abstained);
      if (r.ood_score) out_ << "  ood_score=" << fixed(*r.ood_score, 2);
      out_ << "\n" << std::string(wf + 2, ' ');
      for (size_t i = 0; i < r.probabilities.size(); ++i) {
        out_ << (i ? " " : "") << r.probabilities[i].first << "=" << fixed(r.probabilities[i].second, 3);
      }
      if (!r.heatmap.empty()) out_ << "  heatmap: " << printable(r.heatmap);
      out_ << "\n";
      return;
    }
    // Green from 0.9, yellow from 0.6, red below: how sure the model is of its diagnosis.
    const char* tint = r.probability >= 0.9 ? "\x1b[32m" : r.probability >= 0.6 ? "\x1b[33m" : "\x1b[31m";
    std::ostringstream cell;
    cell << std::left << std::setw(static_cast<int>(wd)) << r.diagnosis << "  " << std::setw(6) << fixed(r.probability, 3);
    if (options_.colour) {
      out_ << tint << "\x1b[1m" << cell.str() << "\x1b[0m  ";
    } else {
      out_ << cell.str() << "  ";
    }
    for (size_t i = 0; i < r.probabilities.size(); ++i) {
      out_ << (i ? " " : "") << r.probabilities[i].first << "=" << fixed(r.probabilities[i].second, 3);
    }
    if (r.ood_score) out_ << "  ood_score=" << fixed(*r.ood_score, 2);
    out_ << "\n";
    const std::string indent(wf + 2, ' ');
    if (!r.warning.empty()) out_ << indent << "warning: " << printable(r.warning) << "\n";
    if (!r.clinical_attention.empty()) out_ << indent << covariate_summary(r) << "\n";
    if (!r.attention_regions.empty()) out_ << indent << region_summary(r.attention_regions) << "\n";
    // On its own line: a long heatmap path would wrap the row on an ordinary terminal.
    if (!r.heatmap.empty()) out_ << indent << "heatmap: " << printable(r.heatmap) << "\n";
  }

  std::ostream& out_;
  TableOptions options_;
  std::vector<DiagnosisRecord> rows_;
};

}  // namespace

json record_to_json(const DiagnosisRecord& r) {
  // JSON strings must be UTF-8. Every string is made so (bytes that are not become "\xHH");
  // the file name, which --resume and merge match on, keeps its exact bytes in "file_hex".
  const auto text = [](const std::string& s) { return json(utf8_or_escaped(s)); };
  json j = json::object();
  j["file"] = text(r.file);
  if (!valid_utf8(r.file)) j["file_hex"] = to_hex(r.file);
  if (r.ok) {
    const bool abstained = !r.abstained.empty();
    j["diagnosis"] = abstained ? json(nullptr) : text(r.diagnosis);
    j["probability"] = abstained ? json(nullptr) : json(round6(r.probability));
    json probs = json::object();
    for (const auto& [name, p] : r.probabilities) probs[utf8_or_escaped(name)] = round6(p);
    j["probabilities"] = probs;
  } else {
    j["diagnosis"] = nullptr;
    j["probability"] = nullptr;
    j["probabilities"] = nullptr;
  }
  j["heatmap"] = r.heatmap.empty() ? json(nullptr) : text(r.heatmap);
  j["heatmap_raw"] = r.heatmap_raw.empty() ? json(nullptr) : text(r.heatmap_raw);
  j["error"] = r.ok ? json(nullptr) : text(r.error);
  j["abstained"] = r.abstained.empty() ? json(nullptr) : text(r.abstained);
  j["ood_score"] = r.ood_score ? json(std::round(*r.ood_score * 1e4) / 1e4) : json(nullptr);
  if (!r.warning.empty()) j["warning"] = text(r.warning);
  if (r.width > 0) {
    j["width"] = r.width;
    j["height"] = r.height;
  }
  if (!r.format.empty()) j["format"] = text(r.format);
  if (!r.window_source.empty()) {
    j["window"] = {{"center", std::round(r.window_center * 1e4) / 1e4}, {"width", std::round(r.window_width * 1e4) / 1e4},
                   {"source", r.window_source}};
  }
  if (!r.model.empty()) j["model"] = text(r.model);
  const auto or_null = [&](const std::string& s) { return s.empty() ? json(nullptr) : text(s); };
  j["study_uid"] = or_null(r.study_uid);
  j["series_uid"] = or_null(r.series_uid);
  j["sop_uid"] = or_null(r.sop_uid);
  j["patient_id"] = or_null(r.patient_id);
  j["accession_number"] = or_null(r.accession_number);
  j["modality"] = or_null(r.modality);
  if (!r.dicom_sc.empty()) j["dicom_sc"] = text(r.dicom_sc);
  if (!r.dicom_sr.empty()) j["dicom_sr"] = text(r.dicom_sr);
  if (!r.attention_regions.empty()) {
    json regions = json::object();
    for (const auto& [name, share] : r.attention_regions) regions[utf8_or_escaped(name)] = round6(share);
    j["attention_regions"] = regions;
  }
  if (r.ok && !r.clinical_attention.empty()) {
    json shares = json::object();
    for (const auto& [name, share] : r.clinical_attention) shares[utf8_or_escaped(name)] = round6(share);
    j["clinical_attention"] = shares;
    json missing = json::array();
    for (const auto& name : r.clinical_missing) missing.push_back(text(name));
    j["clinical_missing"] = missing;
  }
  return j;
}

Format parse_format(const std::string& name) { return find_output_format(name).id; }

std::unique_ptr<RecordWriter> make_writer(Format format, std::ostream& out,
                                          const std::vector<std::string>& classes, const TableOptions& table,
                                          bool csv_header) {
  return output_format(format).make_writer(out, classes, table, /*append=*/!csv_header);
}

// The writers of the output format table (report/output_format.cpp).
std::unique_ptr<RecordWriter> make_table_writer(std::ostream& out, const std::vector<std::string>&, const TableOptions& table,
                                                bool) {
  return std::make_unique<TableWriter>(out, table);
}
std::unique_ptr<RecordWriter> make_json_writer(std::ostream& out, const std::vector<std::string>&, const TableOptions&, bool) {
  return std::make_unique<JsonWriter>(out, /*lines=*/false);
}
std::unique_ptr<RecordWriter> make_jsonl_writer(std::ostream& out, const std::vector<std::string>&, const TableOptions&, bool) {
  return std::make_unique<JsonWriter>(out, /*lines=*/true);
}
std::unique_ptr<RecordWriter> make_csv_writer(std::ostream& out, const std::vector<std::string>& classes, const TableOptions&,
                                              bool append) {
  return std::make_unique<CsvWriter>(out, classes, /*header=*/!append);
}

std::string shorten_middle(const std::string& text, size_t width) {
  if (text.size() <= width || width < 5) return text;
  const size_t keep = width - 3;
  const size_t head = keep / 2, tail = keep - head;
  return text.substr(0, head) + "..." + text.substr(text.size() - tail);
}

std::string csv_header(const std::vector<std::string>& classes) {
  std::string h = "file,diagnosis,probability";
  for (const auto& c : classes) h += "," + csv_field("p_" + c);
  return h + ",heatmap,error,model,abstained,ood_score,warning" +
         ",study_uid,series_uid,sop_uid,patient_id,accession_number,modality,dicom_sc,dicom_sr";
}

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  std::string q = "\"";
  for (char c : value) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

}  // namespace medattn::report
