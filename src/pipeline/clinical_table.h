// The rows of a --clinical CSV, keyed by the file they describe (diagnose's covariates).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "model/card.h"

namespace medattn::pipeline {

class ClinicalTable {
 public:
  // Reads `csv` (a `path` column and the model's covariate columns). Throws medattn::Error:
  // kInvalidArgument without a path column, the CSV reader's errors.
  ClinicalTable(const std::string& csv, const std::vector<model::ClinicalField>& fields);
  // The covariates the CSV has no column for.
  const std::vector<std::string>& absent() const { return absent_; }
  // The row for `path`: the row whose path resolves to the same file, else the row with the
  // same file name when that name is unique in the CSV; nullptr when none.
  const std::vector<std::string>* find(const std::string& path) const;

 private:
  static std::string key(const std::filesystem::path& p);
  std::vector<std::string> absent_;
  std::vector<std::vector<std::string>> rows_;
  std::map<std::string, size_t> by_path_, by_name_;
};

}  // namespace medattn::pipeline
