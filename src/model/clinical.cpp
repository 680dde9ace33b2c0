// The clinical schema of a model card (model/card.h): parsing --clinical, fitting the
// covariates' statistics on training rows, and encoding one row for the network.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"
#include "model/card.h"

namespace medattn::model {

std::vector<ClinicalField> parse_clinical_spec(const std::string& spec) {
  std::vector<ClinicalField> fields;
  std::stringstream in(spec);
  std::string entry;
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::kInvalidArgument, "--clinical '" + spec + "': " + why);
  };
  for (std::string raw; std::getline(in, raw, ',');) {
    entry.clear();
    for (char ch : raw) {
      if (!std::isspace(static_cast<unsigned char>(ch))) entry += ch;
    }
    const auto colon = entry.find(':');
    if (colon == std::string::npos) throw bad("entry '" + entry + "' is not NAME:TYPE (TYPE num or cat)");
    ClinicalField f;
    for (char ch : entry.substr(0, colon)) f.name += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const std::string type = entry.substr(colon + 1);
    if (f.name.empty()) throw bad("entry '" + entry + "' has no column name");
    if (type == "num" || type == "numeric") {
      f.type = ClinicalField::Type::kNumeric;
    } else if (type == "cat" || type == "categorical") {
      f.type = ClinicalField::Type::kCategorical;
    } else {
      throw bad("type '" + type + "' of '" + f.name + "' is not num or cat");
    }
    for (const auto& other : fields) {
      if (other.name == f.name) throw bad("column '" + f.name + "' is named twice");
    }
    if (f.name == "path" || f.name == "label" || f.name == "split" || f.name == "group" || f.name == "mask") {
      throw bad("column '" + f.name + "' is not a covariate");
    }
    fields.push_back(std::move(f));
  }
  if (fields.empty()) throw bad("no covariates");
  return fields;
}

std::vector<ClinicalField> clinical_spec_from_argument(const std::string& argument) {
  std::error_code ec;
  if (argument.find(':') != std::string::npos || !std::filesystem::is_regular_file(argument, ec)) {
    return parse_clinical_spec(argument);
  }
  std::stringstream in(read_file(argument));
  std::string spec, line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    std::string entry;
    for (char ch : line) {
      if (!std::isspace(static_cast<unsigned char>(ch))) entry += ch;
    }
    if (!entry.empty()) spec += (spec.empty() ? "" : ",") + entry;
  }
  try {
    return parse_clinical_spec(spec);
  } catch (const Error& e) {
    throw file_error(ErrorKind::kInvalidArgument, "invalid clinical schema", argument, e.what());
  }
}

namespace {

// A finite number filling the whole field, or nullopt.
bool parse_number(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

}  // namespace
bool is_missing_value(const std::string& value) {
  const std::string v = lower_trimmed(value);
  return v.empty() || v == "unknown" || v == "na" || v == "n/a" || v == "nan" || v == "none" || v == "?" || v == "null";
}

void fit_clinical(std::vector<ClinicalField>& fields, const std::vector<std::vector<std::string>>& rows) {
  for (size_t f = 0; f < fields.size(); ++f) {
    auto& field = fields[f];
    if (field.type == ClinicalField::Type::kNumeric) {
      double sum = 0, sum2 = 0;
      int64_t n = 0;
      for (const auto& row : rows) {
        if (is_missing_value(row[f])) continue;
        double v;
        if (!parse_number(lower_trimmed(row[f]), &v)) {
          throw Error(ErrorKind::kInvalidArgument, "clinical column '" + field.name + "' is numeric but holds '" + row[f] + "'");
        }
        sum += v;
        sum2 += v * v;
        ++n;
      }
      if (n == 0) throw Error(ErrorKind::kInvalidArgument, "clinical column '" + field.name + "' has no values");
      field.mean = sum / static_cast<double>(n);
      const double var = sum2 / static_cast<double>(n) - field.mean * field.mean;
      field.std = var > 1e-12 ? std::sqrt(var) : 1.0;
    } else {
      std::set<std::string> seen;
      for (const auto& row : rows) {
        if (!is_missing_value(row[f])) seen.insert(lower_trimmed(row[f]));
      }
      if (seen.empty()) throw Error(ErrorKind::kInvalidArgument, "clinical column '" + field.name + "' has no categories");
      field.vocabulary.assign(seen.begin(), seen.end());
    }
  }
}

std::vector<float> encode_clinical(const std::vector<ClinicalField>& fields, const std::vector<std::string>& values,
                                   int* unknown) {
  std::vector<float> out(fields.size(), std::numeric_limits<float>::quiet_NaN());
  for (size_t f = 0; f < fields.size() && f < values.size(); ++f) {
    if (is_missing_value(values[f])) continue;
    const std::string v = lower_trimmed(values[f]);
    const auto& field = fields[f];
    bool known = false;
    if (field.type == ClinicalField::Type::kNumeric) {
      double x;
      if (parse_number(v, &x)) {
        out[f] = static_cast<float>((x - field.mean) / field.std);
        known = true;
      }
    } else {
      const auto it = std::find(field.vocabulary.begin(), field.vocabulary.end(), v);
      if (it != field.vocabulary.end()) {
        out[f] = static_cast<float>(it - field.vocabulary.begin());
        known = true;
      }
    }
    if (!known && unknown != nullptr) ++*unknown;
  }
  return out;
}

}  // namespace medattn::model
