// The output-format table (report/output_format.h): names, extensions, what --resume can read
// back, and that every format's writer is the one the table names.
#include <catch2/catch.hpp>
#include <sstream>

#include "core/error.h"
#include "report/output_format.h"

using namespace medattn;
using namespace medattn::report;

TEST_CASE("the output format table names each format once, and the error lists them", "[report][output-format]") {
  CHECK(output_format_names() == std::vector<std::string>{"table", "json", "jsonl", "csv"});
  for (const auto& f : output_formats()) {
    INFO(f.name);
    CHECK(&find_output_format(f.name) == &f);
    CHECK(&output_format(f.id) == &f);
    CHECK(parse_format(f.name) == f.id);
    CHECK(f.make_writer != nullptr);
    CHECK(f.appendable == (f.read_back != ReadBack::kNone));  // what is appended must be read back
  }
  CHECK_THROWS_WITH(find_output_format("xml"), "unknown format 'xml' (expected table, json, jsonl or csv)");
  CHECK(output_format_help().rfind("Output format: table (", 0) == 0);
}

TEST_CASE("the format follows --format, else -o's extension, else table", "[report][output-format]") {
  CHECK(resolve_output_format("", "out/results.jsonl").id == Format::kJsonl);
  CHECK(resolve_output_format("", "results.json").id == Format::kJson);
  CHECK(resolve_output_format("", "a.b/results.csv").id == Format::kCsv);
  CHECK(resolve_output_format("", "results.txt").id == Format::kTable);
  CHECK(resolve_output_format("", "").id == Format::kTable);
  CHECK(resolve_output_format("", "jsonl").id == Format::kTable);  // a name, not an extension
  CHECK(resolve_output_format("csv", "results.jsonl").id == Format::kCsv);  // --format wins
  CHECK_THROWS_AS(resolve_output_format("xml", "results.csv"), Error);
}

TEST_CASE("a format's writer continues an appended file without a second header", "[report][output-format]") {
  DiagnosisRecord r;
  r.file = "a.png";
  r.ok = true;
  r.diagnosis = "B";
  r.probability = 0.75;
  r.probabilities = {{"A", 0.25}, {"B", 0.75}};
  std::ostringstream fresh, appended;
  auto w = find_output_format("csv").make_writer(fresh, {"A", "B"}, {}, /*append=*/false);
  w->write(r);
  w->finish();
  auto a = find_output_format("csv").make_writer(appended, {"A", "B"}, {}, /*append=*/true);
  a->write(r);
  a->finish();
  CHECK(fresh.str() == csv_header({"A", "B"}) + "\n" + appended.str());
  CHECK(appended.str().rfind("a.png,B,0.750000,0.250000,0.750000,", 0) == 0);
}
