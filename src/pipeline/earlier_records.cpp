#include "pipeline/earlier_records.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/text.h"
#include "io/csv.h"
#include "pipeline/batch.h"

namespace fs = std::filesystem;

namespace medattn::pipeline {
namespace {

using nlohmann::json;

std::string str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

report::DiagnosisRecord from_json(const json& j, const std::vector<std::string>& classes) {
  report::DiagnosisRecord r;
  r.file = str(j, "file");
  if (std::string bytes; j.contains("file_hex") && j["file_hex"].is_string() && from_hex(j["file_hex"].get<std::string>(), &bytes)) r.file = bytes;
  r.error = str(j, "error");
  r.ok = r.error.empty();
  r.diagnosis = str(j, "diagnosis");
  if (j.contains("probability") && j["probability"].is_number()) r.probability = j["probability"].get<double>();
  if (j.contains("probabilities") && j["probabilities"].is_object()) {
    for (const auto& c : classes) {
      const auto& p = j["probabilities"];
      r.probabilities.emplace_back(c, p.contains(c) && p[c].is_number() ? p[c].get<double>() : 0.0);
    }
  }
  r.heatmap = str(j, "heatmap");
  r.abstained = str(j, "abstained");
  if (j.contains("ood_score") && j["ood_score"].is_number()) r.ood_score = j["ood_score"].get<double>();
  r.warning = str(j, "warning");
  r.model = str(j, "model");
  return r;
}

// The csv columns of report::make_writer: file,diagnosis,probability,p_<class>...,heatmap,
// error,model,abstained,ood_score,warning.
report::DiagnosisRecord from_csv(const std::vector<std::string>& f, const std::vector<std::string>& classes) {
  report::DiagnosisRecord r;
  const size_t K = classes.size();
  auto at = [&](size_t i) { return i < f.size() ? f[i] : std::string(); };
  r.file = at(0);
  r.diagnosis = at(1);
  r.heatmap = at(3 + K);
  r.error = at(4 + K);
  r.model = at(5 + K);
  r.abstained = at(6 + K);
  r.warning = at(8 + K);
  r.ok = r.error.empty();
  try {
    if (!at(2).empty()) r.probability = std::stod(at(2));
    if (!at(7 + K).empty()) r.ood_score = std::stod(at(7 + K));
    for (size_t c = 0; c < K && r.ok; ++c) r.probabilities.emplace_back(classes[c], at(3 + c).empty() ? 0.0 : std::stod(at(3 + c)));
  } catch (const std::exception&) {
    // A number that does not parse is shown as 0; the record is still listed.
  }
  return r;
}

void attach_thumbnail(report::DiagnosisRecord& r, int size) {
  std::error_code ec;
  if (size <= 0 || r.heatmap.empty() || !fs::is_regular_file(r.heatmap, ec)) return;
  const cv::Mat overlay = cv::imread(r.heatmap, cv::IMREAD_COLOR);
  if (overlay.empty()) return;
  const double scale = static_cast<double>(size) / std::max(overlay.cols, overlay.rows);
  if (scale < 1.0) {
    cv::resize(overlay, r.thumbnail, cv::Size(), scale, scale, cv::INTER_AREA);
  } else {
    r.thumbnail = overlay;
  }
}

}  // namespace

std::vector<report::DiagnosisRecord> read_earlier_records(const std::string& path, bool csv,
                                                          const std::vector<std::string>& classes,
                                                          const std::set<std::string>& keep, int thumbnail_size) {
  std::vector<report::DiagnosisRecord> out;
  std::error_code ec;
  if (!fs::exists(path, ec) || fs::file_size(path, ec) == 0) return out;
  std::string header;
  for (const auto& line : read_output(path, csv, &header)) {
    if (!keep.count(line.file)) continue;
    report::DiagnosisRecord r;
    if (csv) {
      const auto rows = io::parse_csv(line.text + "\n", path);
      if (rows.empty()) continue;
      r = from_csv(rows[0].fields, classes);
      r.file = line.file;
    } else {
      r = from_json(json::parse(line.text, nullptr, /*allow_exceptions=*/false), classes);
      r.file = line.file;
    }
    attach_thumbnail(r, thumbnail_size);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace medattn::pipeline
