// The shift benchmark's reports: its JSON, its table and what a model card keeps of it
// (eval/shift.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "eval/shift.h"

namespace medattn::eval {
namespace {

double round4(double v) { return std::round(v * 1e4) / 1e4; }

}  // namespace

namespace {

nlohmann::json cell_json(const ShiftCell& c) {
  nlohmann::json j = {{"n", c.n}, {"accuracy", round4(c.accuracy)}, {"balanced_accuracy", round4(c.balanced_accuracy)},
                      {"auc", round4(c.auc)}, {"ece", round4(c.ece)},
                      {"coverage", c.coverage < 0 ? nlohmann::json(nullptr) : nlohmann::json(round4(c.coverage))}};
  return j;
}

nlohmann::json summary_json(const ShiftSummary& s) {
  return {{"corruptions", s.corruptions},
          {"accuracy", round4(s.accuracy)},
          {"balanced_accuracy", round4(s.balanced_accuracy)},
          {"auc", round4(s.auc)},
          {"ece", round4(s.ece)},
          {"coverage", s.coverage < 0 ? nlohmann::json(nullptr) : nlohmann::json(round4(s.coverage))},
          {"relative_accuracy_drop", round4(s.relative_accuracy_drop)},
          {"relative_balanced_accuracy_drop", round4(s.relative_balanced_accuracy_drop)}};
}

std::string f4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f", v);
  return buf;
}

}  // namespace

nlohmann::json shift_to_json(const ShiftResult& r) {
  nlohmann::json j;
  j["set"] = r.set;
  j["seed"] = r.seed;
  j["severities"] = kShiftSeverities;
  j["n"] = r.clean.n;
  j["seen_families"] = r.seen_families;
  j["clean"] = cell_json(r.clean);
  j["corruptions"] = nlohmann::json::array();
  for (const auto& row : r.rows) {
    nlohmann::json cells = nlohmann::json::array();
    for (const auto& c : row.cells) {
      auto cj = cell_json(c);
      cj["severity"] = c.severity;
      cj["parameter"] = c.param;
      cells.push_back(cj);
    }
    j["corruptions"].push_back({{"name", row.name}, {"family", row.family}, {"models", row.models}, {"parameter", row.unit},
                                {"seen", row.seen}, {"severities", cells}});
  }
  j["summary"] = {{"unseen", summary_json(r.unseen)}, {"all", summary_json(r.all)}};
  return j;
}

nlohmann::json shift_card_record(const ShiftResult& r, const std::string& data) {
  nlohmann::json j;
  j["set"] = r.set;
  j["seed"] = r.seed;
  j["n"] = r.clean.n;
  j["data"] = data;
  j["clean"] = cell_json(r.clean);
  j["summary"] = {{"unseen", summary_json(r.unseen)}, {"all", summary_json(r.all)}};
  nlohmann::json rows = nlohmann::json::object();
  for (const auto& row : r.rows) {
    double acc = 0, auc = 0;
    for (const auto& c : row.cells) {
      acc += c.accuracy;
      auc += c.auc;
    }
    const double n = std::max<size_t>(1, row.cells.size());
    const auto& last = row.cells.back();
    rows[row.name] = {{"seen", row.seen},
                      {"mean_accuracy", round4(acc / n)},
                      {"mean_auc", round4(auc / n)},
                      {"accuracy_at_5", round4(last.accuracy)},
                      {"auc_at_5", round4(last.auc)}};
  }
  j["corruptions"] = rows;
  return j;
}

std::string shift_limitation(const ShiftResult& r) {
  // The worst corruption by its accuracy at the strongest severity, among the unseen ones
  // (all of them when every corruption is seen).
  const ShiftRow* worst = nullptr;
  bool unseen_only = false;
  for (const auto& row : r.rows) unseen_only = unseen_only || !row.seen;
  for (const auto& row : r.rows) {
    if (row.cells.empty() || (unseen_only && row.seen)) continue;
    if (worst == nullptr || row.cells.back().accuracy < worst->cells.back().accuracy) worst = &row;
  }
  const ShiftSummary& s = unseen_only ? r.unseen : r.all;
  char text[512];
  std::snprintf(text, sizeof(text), "%s%s set, %d images): under %s, accuracy %.3f -> %.3f and AUC %.3f -> %.3f on average",
                kShiftLimitationPrefix, r.set.c_str(), r.clean.n,
                unseen_only ? "acquisition changes its training never applied" : "acquisition changes (all of them seen in training)",
                r.clean.accuracy, s.accuracy, r.clean.auc, s.auc);
  std::string out = text;
  if (worst != nullptr) {
    std::snprintf(text, sizeof(text), "; worst: %s (accuracy %.3f, AUC %.3f at severity %d)", worst->name.c_str(),
                  worst->cells.back().accuracy, worst->cells.back().auc, worst->cells.back().severity);
    out += text;
  }
  return out + ".";
}

std::string replace_shift_limitation(const std::string& limitations, const std::string& sentence) {
  const size_t at = limitations.find(kShiftLimitationPrefix);
  if (at == std::string::npos) return limitations.empty() ? sentence : limitations + " " + sentence;
  // The old sentence runs to its closing ". " (or the end); what follows it is kept.
  size_t end = limitations.find(". ", at);
  std::string rest = end == std::string::npos ? "" : limitations.substr(end + 2);
  std::string head = limitations.substr(0, at);
  while (!head.empty() && head.back() == ' ') head.pop_back();
  std::string out = head.empty() ? sentence : head + " " + sentence;
  return rest.empty() ? out : out + " " + rest;
}

std::string shift_table(const ShiftResult& r) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "\nshift benchmark: %s set, %d severities, seed %llu, %d images (seen: the model's training augmentation applies the same kind of change)\n",
                r.set.c_str(), kShiftSeverities, static_cast<unsigned long long>(r.seed), r.clean.n);
  out += line;
  std::snprintf(line, sizeof(line), "%-20s %-6s %7s %7s %7s %7s %7s   %8s %8s %8s %8s\n", "corruption", "", "acc@1", "acc@2", "acc@3",
                "acc@4", "acc@5", "mean acc", "mean auc", "mean ece", "coverage");
  out += line;
  for (const auto& row : r.rows) {
    double acc = 0, auc = 0, ece = 0, cov = 0;
    bool gated = true;
    std::snprintf(line, sizeof(line), "%-20s %-6s", row.name.c_str(), row.seen ? "seen" : "unseen");
    out += line;
    for (const auto& c : row.cells) {
      out += " " + std::string(7 - std::min<size_t>(7, f4(c.accuracy).size()), ' ') + f4(c.accuracy);
      acc += c.accuracy;
      auc += c.auc;
      ece += c.ece;
      cov += c.coverage;
      gated = gated && c.coverage >= 0;
    }
    const double k = std::max<size_t>(1, row.cells.size());
    std::snprintf(line, sizeof(line), "   %8.4f %8.4f %8.4f %8s\n", acc / k, auc / k, ece / k, gated ? f4(cov / k).c_str() : "-");
    out += line;
  }
  std::snprintf(line, sizeof(line), "%-20s %-6s %7s %7s %7s %7s %7s   %8.4f %8.4f %8.4f %8s\n", "clean", "", "", "", "", "", "", r.clean.accuracy,
                r.clean.auc, r.clean.ece, r.clean.coverage >= 0 ? f4(r.clean.coverage).c_str() : "-");
  out += line;
  auto summary = [&](const char* what, const ShiftSummary& s) {
    if (s.corruptions == 0) {
      std::snprintf(line, sizeof(line), "%s: no corruption\n", what);
    } else {
      std::snprintf(line, sizeof(line),
                    "%s (%d corruptions): accuracy %.4f (relative drop %.1f%%), balanced accuracy %.4f (drop %.1f%%), auc %.4f, ece %.4f%s\n",
                    what, s.corruptions, s.accuracy, 100 * s.relative_accuracy_drop, s.balanced_accuracy,
                    100 * s.relative_balanced_accuracy_drop, s.auc, s.ece,
                    s.coverage >= 0 ? (", coverage " + f4(s.coverage)).c_str() : "");
    }
    out += line;
  };
  summary("unseen mean", r.unseen);
  summary("all mean", r.all);
  return out;
}


}  // namespace medattn::eval
