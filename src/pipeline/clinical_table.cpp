#include "pipeline/clinical_table.h"

#include "core/error.h"
#include "core/text.h"
#include "io/csv.h"

namespace fs = std::filesystem;

namespace medattn::pipeline {

ClinicalTable::ClinicalTable(const std::string& csv, const std::vector<model::ClinicalField>& fields) {
  const io::CsvTable table = io::read_csv_table(csv, "cannot read clinical data", "empty file (expected a header with path)");
  const int col_path = table.column("path");
  if (col_path < 0) throw file_error(ErrorKind::kInvalidArgument, "cannot read clinical data", csv, "no 'path' column");
  std::vector<int> cols;
  for (const auto& f : fields) {
    cols.push_back(table.column(f.name));
    if (cols.back() < 0) absent_.push_back(f.name);
  }
  std::map<std::string, int> name_count;
  for (const auto& rec : table.rows) {
    std::vector<std::string> values;
    for (int c : cols) values.push_back(c < 0 ? std::string() : rec.fields[c]);
    const fs::path full = table.resolve(trim(rec.fields[col_path]));
    rows_.push_back(values);
    by_path_[key(full)] = rows_.size() - 1;
    const std::string name = full.filename().string();
    if (++name_count[name] == 1) {
      by_name_[name] = rows_.size() - 1;
    } else {
      by_name_.erase(name);
    }
  }
}

const std::vector<std::string>* ClinicalTable::find(const std::string& path) const {
  auto it = by_path_.find(key(path));
  if (it != by_path_.end()) return &rows_[it->second];
  auto n = by_name_.find(fs::path(path).filename().string());
  return n == by_name_.end() ? nullptr : &rows_[n->second];
}

std::string ClinicalTable::key(const fs::path& p) {
  std::error_code ec;
  auto k = fs::weakly_canonical(p, ec);
  return (ec ? p.lexically_normal() : k).string();
}

}  // namespace medattn::pipeline
