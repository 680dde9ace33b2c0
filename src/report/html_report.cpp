#include "report/html_report.h"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"

namespace fs = std::filesystem;

namespace medattn::report {
namespace {

const char* kStyle = R"(body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:middle}
th{background:#eef;cursor:pointer;user-select:none}th.asc::after{content:" \25B2"}th.desc::after{content:" \25BC"}
tr.error td{background:#fee}tr.abstained td{background:#ffd}td.num{text-align:right;font-variant-numeric:tabular-nums}img{display:block;max-width:160px}
pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}.summary td{border:none;padding:2px 12px 2px 0})";

// Click a header to sort by it; numbers compare as numbers, the rest as text.
const char* kScript = R"(document.querySelectorAll('#results th').forEach(function(th, col){
th.addEventListener('click', function(){
var body = document.querySelector('#results tbody');
var rows = Array.prototype.slice.call(body.rows);
var asc = !th.classList.contains('asc');
document.querySelectorAll('#results th').forEach(function(h){h.classList.remove('asc','desc');});
th.classList.add(asc ? 'asc' : 'desc');
rows.sort(function(a, b){
var x = a.cells[col].getAttribute('data-v') || a.cells[col].textContent;
var y = b.cells[col].getAttribute('data-v') || b.cells[col].textContent;
var nx = parseFloat(x), ny = parseFloat(y);
var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
return asc ? c : -c;});
rows.forEach(function(r){body.appendChild(r);});});});)";

}  // namespace

std::string relative_link(const std::string& target, const std::string& report) {
  std::error_code ec;
  const fs::path from = fs::absolute(fs::path(report), ec).parent_path().lexically_normal();
  const fs::path to = fs::absolute(fs::path(target), ec).lexically_normal();
  const std::string rel = to.lexically_relative(from).generic_string();
  if (rel.empty()) return {};
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : rel) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64(const std::vector<unsigned char>& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(bytes[i]) << 16) | (uint32_t(bytes[i + 1]) << 8) | bytes[i + 2];
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint32_t(bytes[i]) << 16;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint32_t(bytes[i]) << 16) | (uint32_t(bytes[i + 1]) << 8);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string error_reason(const std::string& error) {
  // file_error() writes "<what> '<path>': <why>"; keep <what> and <why>.
  const auto open = error.find(" '");
  const auto close = error.find("': ", open == std::string::npos ? 0 : open);
  if (open == std::string::npos || close == std::string::npos) return error;
  return error.substr(0, open) + ": " + error.substr(close + 3);
}

// The rows go to a temporary file beside the report (core/fs.h TempFile: created new, never
// through a link, removed on failure and on SIGINT/SIGTERM).
HtmlReport::HtmlReport(std::string path, ReportInfo info)
    : path_(std::move(path)), info_(std::move(info)), rows_(std::make_unique<TempFile>(path_, "cannot write report")) {}

HtmlReport::~HtmlReport() = default;

void HtmlReport::add_earlier(const DiagnosisRecord& r) {
  ++earlier_;
  add(r);
}

void HtmlReport::add(const DiagnosisRecord& r) {
  ++count_;
  std::ostringstream row;
  row << "<tr class=\"" << (!r.ok ? "error" : r.abstained.empty() ? "ok" : "abstained") << "\"><td>" << html_escape(r.file);
  // DICOM inputs: the identifiers that trace the result back to its image, and --dicom-out's objects.
  if (!r.study_uid.empty() || !r.sop_uid.empty()) {
    row << "<br><small>study " << html_escape(r.study_uid) << "<br>series " << html_escape(r.series_uid) << "<br>SOP "
        << html_escape(r.sop_uid) << "</small>";
  }
  if (!r.dicom_sr.empty()) {
    ++dicom_out_;
    row << "<br><small>DICOM: " << html_escape(r.dicom_sc) << ", " << html_escape(r.dicom_sr) << "</small>";
  }
  row << "</td>";
  if (r.ok && !r.abstained.empty()) {
    ++abstained_;
    row << "<td data-v=\"~ABSTAINED\">ABSTAINED</td><td class=\"num\" data-v=\"-1\">-</td>";
    for (size_t c = 0; c < info_.classes.size(); ++c) {
      row << "<td class=\"num\">" << (c < r.probabilities.size() ? fixed(r.probabilities[c].second, 4) : "") << "</td>";
    }
  } else if (r.ok) {
    ++per_diagnosis_[r.diagnosis];
    row << "<td>" << html_escape(r.diagnosis) << "</td><td class=\"num\">" << fixed(r.probability, 4) << "</td>";
    for (size_t c = 0; c < info_.classes.size(); ++c) {
      row << "<td class=\"num\">" << (c < r.probabilities.size() ? fixed(r.probabilities[c].second, 4) : "") << "</td>";
    }
  } else {
    ++failed_;
    ++per_reason_[error_reason(r.error)];
    row << "<td data-v=\"~\">-</td><td class=\"num\" data-v=\"-1\">-</td>";
    for (size_t c = 0; c < info_.classes.size(); ++c) row << "<td class=\"num\" data-v=\"-1\"></td>";
  }
  row << "<td>";
  if (!r.thumbnail.empty()) {
    std::vector<unsigned char> jpeg;
    if (cv::imencode(".jpg", r.thumbnail, jpeg, {cv::IMWRITE_JPEG_QUALITY, 80})) {
      // The thumbnail opens the full-size overlay, by a link relative to the report.
      const std::string link = r.heatmap.empty() ? std::string() : relative_link(r.heatmap, path_);
      if (!link.empty()) row << "<a href=\"" << html_escape(link) << "\">";
      row << "<img alt=\"heatmap of " << html_escape(r.file) << "\" src=\"data:image/jpeg;base64," << base64(jpeg) << "\">";
      if (!link.empty()) row << "</a>";
    }
  }
  row << "</td><td>" << html_escape(r.abstained.empty() ? r.warning : r.abstained) << "</td><td class=\"num\">"
      << (r.ood_score ? fixed(*r.ood_score, 2) : "") << "</td><td>" << html_escape(r.error) << "</td></tr>\n";
  rows_->write(row.str());
}

void HtmlReport::finish(const RunTotals& totals) {
  std::ostringstream head;
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
  head << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << html_escape(info_.title)
       << "</title>\n<style>" << kStyle << "</style></head><body>\n<h1>" << html_escape(info_.title) << "</h1>\n";
  head << "<table class=\"summary\">";
  auto line = [&](const std::string& k, const std::string& v) {
    head << "<tr><td>" << html_escape(k) << "</td><td>" << html_escape(v) << "</td></tr>";
  };
  line("finished", when);
  line("model", info_.model_id);
  line("images", std::to_string(count_) + " (" + std::to_string(count_ - failed_ - abstained_) + " diagnosed, " +
                     std::to_string(abstained_) + " abstained, " + std::to_string(failed_) + " failed)");
  for (const auto& [name, n] : per_diagnosis_) line("diagnosed " + name, std::to_string(n));
  for (const auto& [reason, n] : per_reason_) line("failed: " + reason, std::to_string(n));
  line("wall time", fixed(totals.seconds, 1) + " s (" + fixed(count_ / std::max(1e-9, totals.seconds), 1) + " images/s)");
  line("threads", std::to_string(totals.threads) + " model, " + std::to_string(totals.workers) + " decoding");
  if (!totals.shard.empty()) line("shard", totals.shard);
  if (totals.resumed > 0) line("resumed", std::to_string(totals.resumed) + " input(s) recorded by an earlier run, not repeated here");
  if (earlier_ > 0) line("from earlier runs", std::to_string(earlier_) + " of these records were read back from the output file");
  if (!info_.method.empty()) line("heatmaps", info_.method);
  if (dicom_out_ > 0) line("DICOM output", std::to_string(dicom_out_) + " input(s) with a Secondary Capture and an SR");
  line("command", info_.command);
  head << "</table>\n<h2>Results</h2>\n"
       << "<p>Click a column header to sort.</p>\n<table id=\"results\"><thead><tr><th>file</th><th>diagnosis</th><th>probability</th>";
  for (const auto& c : info_.classes) head << "<th>p(" << html_escape(c) << ")</th>";
  head << "<th>heatmap</th><th>abstained</th><th>ood_score</th><th>error</th></tr></thead>\n<tbody>\n";

  TempFile out(path_, "cannot write report");
  out.write(head.str());
  std::ifstream rows(rows_->path(), std::ios::binary);
  if (!rows) throw file_error(ErrorKind::kIOError, "cannot write report", path_, "cannot read back " + rows_->path());
  std::vector<char> chunk(1 << 16);
  while (rows.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || rows.gcount() > 0) {
    out.write(std::string_view(chunk.data(), static_cast<size_t>(rows.gcount())));
  }
  std::ostringstream tail;
  tail << "</tbody></table>\n<h2>Model</h2>\n<pre>" << html_escape(info_.model_summary) << "</pre>\n<script>" << kScript
       << "</script>\n</body></html>\n";
  out.write(tail.str());
  out.commit(/*sync=*/false);
  rows_.reset();
  finished_ = true;
}

}  // namespace medattn::report
