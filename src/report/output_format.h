// The output formats of diagnose: one table, from which everything else is derived. `--format`'s
// allowed values and help, the format inferred from `-o`'s extension, what `--resume` and
// `merge` accept, how the file is written (appended record by record, or whole through a
// temporary file), the bash completion and the man page all read it.
//
// Adding a format: an enumerator in report::Format (record.h), its writer in a new file (a
// factory like WriterFactory, declared beside the table in output_format.cpp), one line in the
// table, and a test.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "report/record.h"

namespace medattn::report {

// Makes the writer of a format: `classes` (model order) fix csv-like columns; `append` continues
// a file that already holds records (--resume: no header).
using WriterFactory = std::unique_ptr<RecordWriter>(std::ostream& out, const std::vector<std::string>& classes,
                                                    const TableOptions& table, bool append);

// How an earlier output is read back, record by record (--resume, merge, the resumed report).
enum class ReadBack {
  kNone,       // not read back: --resume refuses the format
  kJsonLines,  // one JSON object per line
  kCsv,        // a header record, then one record per input (quoted fields may hold newlines)
};

struct OutputFormat {
  Format id;
  const char* name;         // what --format takes
  const char* extension;    // "-o results.jsonl" implies jsonl; empty: never inferred
  const char* description;  // for --format's help
  // Written record by record and appended to by --resume (then read back with `read_back`);
  // false: one document, written to a temporary file renamed into place when complete.
  bool appendable = false;
  ReadBack read_back = ReadBack::kNone;
  WriterFactory* make_writer = nullptr;
};

// Every format, in the order of --help.
const std::vector<OutputFormat>& output_formats();
std::vector<std::string> output_format_names();

// The format called `name`. Throws medattn::Error(kInvalidArgument) "unknown format '<name>'
// (expected table, json, jsonl or csv)" otherwise.
const OutputFormat& find_output_format(const std::string& name);
const OutputFormat& output_format(Format id);

// The format of a run: `name` when given (not empty), else the one whose extension `path` ends
// with, else table.
const OutputFormat& resolve_output_format(const std::string& name, const std::string& path);

// `--format`'s help: "Output format: table (...), json (...), ..."
std::string output_format_help();

}  // namespace medattn::report
