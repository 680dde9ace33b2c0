// The table of output formats (report/output_format.h).
#include "report/output_format.h"

#include <filesystem>

#include "core/error.h"

namespace medattn::report {

// Each format's writer (report/record.cpp).
WriterFactory make_table_writer, make_json_writer, make_jsonl_writer, make_csv_writer;

namespace {

const std::vector<OutputFormat>& formats_table() {
  // id, name, extension, description, appendable, read back, writer
  static const std::vector<OutputFormat> kFormats = {
      {Format::kTable, "table", "", "aligned columns for people", false, ReadBack::kNone, make_table_writer},
      {Format::kJson, "json", ".json", "one JSON array", false, ReadBack::kNone, make_json_writer},
      {Format::kJsonl, "jsonl", ".jsonl", "one JSON object per line, as each image finishes", true, ReadBack::kJsonLines,
       make_jsonl_writer},
      {Format::kCsv, "csv", ".csv", "a header, then one row per image", true, ReadBack::kCsv, make_csv_writer},
  };
  return kFormats;
}

// "a, b, c or d"
std::string choice_list(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  return s;
}

}  // namespace

const std::vector<OutputFormat>& output_formats() { return formats_table(); }

std::vector<std::string> output_format_names() {
  std::vector<std::string> names;
  for (const auto& f : formats_table()) names.emplace_back(f.name);
  return names;
}

const OutputFormat& find_output_format(const std::string& name) {
  for (const auto& f : formats_table()) {
    if (name == f.name) return f;
  }
  throw Error(ErrorKind::kInvalidArgument, "unknown format '" + name + "' (expected " + choice_list(output_format_names()) + ")");
}

const OutputFormat& output_format(Format id) {
  for (const auto& f : formats_table()) {
    if (f.id == id) return f;
  }
  throw Error(ErrorKind::kInvalidArgument, "unknown format");
}

const OutputFormat& resolve_output_format(const std::string& name, const std::string& path) {
  if (!name.empty()) return find_output_format(name);
  const std::string ext = std::filesystem::path(path).extension().string();
  for (const auto& f : formats_table()) {
    if (!ext.empty() && ext == f.extension) return f;
  }
  return find_output_format("table");
}

std::string output_format_help() {
  std::vector<std::string> items;
  for (const auto& f : formats_table()) items.push_back(std::string(f.name) + " (" + f.description + ")");
  return "Output format: " + choice_list(items) + "; default: from -o's extension, else table";
}

}  // namespace medattn::report
