// diagnose's output-file handling as a library object (pipeline/diagnose_output.h): the format
// from -o's extension, what --resume accepts, the lock, read-back and append, json through a
// temporary file, and the closing summary's counts. No binary, no model run: records are written
// by hand, as run_diagnose would pass them.
#include <catch2/catch.hpp>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "model/card.h"
#include "pipeline/diagnose_output.h"
#include "support/helpers.h"
#include "support/temp_dir.h"

using namespace medattn;
using namespace medattn::pipeline;
namespace fs = std::filesystem;

namespace {

const std::string kModel = std::string(MEDATTN_SOURCE_DIR) + "/models/phantom";

DiagnoseOptions diagnose_options(const testing::TempDir& dir) {
  DiagnoseOptions d;
  d.model_dir = kModel;
  d.inputs = {dir / "in"};
  return d;
}

report::DiagnosisRecord diagnosed(const std::string& file, const std::string& model_id) {
  report::DiagnosisRecord r;
  r.file = file;
  r.ok = true;
  r.diagnosis = "nodule";
  r.probability = 0.5;
  r.probabilities = {{"normal", 0.25}, {"nodule", 0.5}, {"consolidation", 0.25}};
  r.model = model_id;
  return r;
}

size_t entries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST_CASE("diagnose output: the format comes from -o's extension unless --format says", "[pipeline][output]") {
  testing::TempDir dir;
  for (const auto& [path, format, expected] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"r.jsonl", "", "jsonl"}, {"r.csv", "", "csv"}, {"r.json", "", "json"}, {"r.txt", "", "table"}, {"r.jsonl", "csv", "csv"}}) {
    INFO(path << " --format '" << format << "'");
    auto d = diagnose_options(dir);
    OutputOptions o;
    o.path = dir / path;
    o.format = format;
    DiagnoseOutput out(o, d);
    CHECK(out.format().name == expected);
  }
}

TEST_CASE("diagnose output: --resume needs -o in a format that is read back", "[pipeline][output]") {
  testing::TempDir dir;
  auto d = diagnose_options(dir);
  const std::string message = "--resume needs -o FILE in jsonl or csv format (the records already written are read back)";
  OutputOptions o;
  o.resume = true;
  testing::require_error([&] { DiagnoseOutput out(o, d); }, ErrorKind::kInvalidArgument, message);
  o.path = dir / "r.json";
  testing::require_error([&] { DiagnoseOutput out(o, d); }, ErrorKind::kInvalidArgument, message);
  CHECK_FALSE(fs::exists(dir / "r.json"));
  o.path = dir / "r.jsonl";
  CHECK_NOTHROW(DiagnoseOutput(o, d));
}

TEST_CASE("diagnose output: one run at a time per output, and never over the heatmap folder", "[pipeline][output]") {
  testing::TempDir dir;
  auto d = diagnose_options(dir);
  OutputOptions o;
  o.path = dir / "r.jsonl";
  DiagnoseOutput first(o, d);
  testing::require_error([&] { DiagnoseOutput second(o, d); }, ErrorKind::kIOError,
                         "cannot write output '" + o.path + "': another run holds it (" + o.path + ".lock)");
  auto h = diagnose_options(dir);
  h.heatmap_dir = dir / "maps.csv";
  OutputOptions same;
  same.path = h.heatmap_dir;
  testing::require_error([&] { DiagnoseOutput out(same, h); }, ErrorKind::kInvalidArgument,
                         "refusing to write '" + same.path + "': it is also the heatmap folder of this run");
}

TEST_CASE("diagnose output: json is written whole through a temporary file", "[pipeline][output]") {
  testing::TempDir dir;
  auto d = diagnose_options(dir);
  OutputOptions o;
  o.path = dir / "r.json";
  {
    DiagnoseOutput out(o, d);
    out.start({"normal", "nodule", "consolidation"}, "phantom@x");
    out.write(diagnosed("a.png", "phantom@x"));
    CHECK_FALSE(fs::exists(o.path));  // not before it is complete
    out.finish({});
    CHECK(out.counts().per_diagnosis.at("nodule") == 1);
  }
  const auto text = read_file(o.path);
  CHECK(text.rfind("[\n  {", 0) == 0);
  CHECK(text.substr(text.size() - 3) == "\n]\n");
  CHECK(entries(dir.path) == 1);  // no temporary, no lock left behind
}

TEST_CASE("diagnose output: --resume skips what the same model recorded and appends", "[pipeline][output]") {
  testing::TempDir dir;
  const std::string id = model::model_id(kModel);
  OutputOptions o;
  o.path = dir / "r.jsonl";
  o.resume = true;
  write_file_atomic(o.path, report::record_to_json(diagnosed("a.png", id)).dump() + "\n" +
                                report::record_to_json(diagnosed("b.png", "other@1")).dump() + "\n{\"file\":\"c.p");
  auto d = diagnose_options(dir);
  {
    DiagnoseOutput out(o, d);
    CHECK(out.recorded().files == std::set<std::string>{"a.png"});
    CHECK(out.recorded().other_model == 1);
    CHECK(out.recorded().truncated);
    CHECK(d.skip_files == std::set<std::string>{"a.png"});
    out.start({"normal", "nodule", "consolidation"}, id);
    out.write(diagnosed("c.png", id));
    out.finish({});
  }
  const auto lines = read_output(o.path, /*csv=*/false, nullptr);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].file == "a.png");
  CHECK(lines[1].file == "b.png");
  CHECK(lines[2].file == "c.png");
}

TEST_CASE("diagnose output: a resumed csv gets no second header, and other columns are refused", "[pipeline][output]") {
  testing::TempDir dir;
  const std::string id = model::model_id(kModel);
  const std::vector<std::string> classes = model::read_card(kModel).classes;
  OutputOptions o;
  o.path = dir / "r.csv";
  {
    auto d = diagnose_options(dir);
    DiagnoseOutput out(o, d);
    out.start(classes, id);
    out.write(diagnosed("a.png", id));
    out.finish({});
  }
  o.resume = true;
  {
    auto d = diagnose_options(dir);
    DiagnoseOutput out(o, d);
    CHECK(d.skip_files == std::set<std::string>{"a.png"});
    out.start(classes, id);
    out.write(diagnosed("b.png", id));
    out.finish({});
  }
  std::string header;
  const auto lines = read_output(o.path, /*csv=*/true, &header);
  CHECK(header == report::csv_header(classes));
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].file == "b.png");

  write_file_atomic(o.path, "file,diagnosis,model\na.png,x," + id + "\n");
  auto d = diagnose_options(dir);
  try {
    DiagnoseOutput out(o, d);
    FAIL("a csv with other columns was resumed");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kCorruption);
    CHECK(std::string(e.what()).rfind("cannot resume '" + o.path + "': its csv columns (file,diagnosis,model) differ", 0) == 0);
  }
}

TEST_CASE("diagnose output: the closing summary counts diagnoses, abstentions by check, failures by reason", "[pipeline][output]") {
  RecordCounts c;
  auto r = diagnosed("a.png", "m");
  c.add(r);
  c.add(r);
  auto abstained = r;
  abstained.abstained = "out of scope: DICOM Modality 'MR' (expected CR, DX)";
  c.add(abstained);
  auto ood = r;
  ood.abstained = "out of distribution: score 31.2 above 22.8";
  c.add(ood);
  report::DiagnosisRecord failed;
  failed.file = "b.png";
  failed.error = "cannot read image 'b.png': not an image";
  c.add(failed);
  auto no_map = r;
  no_map.warning = std::string(kHeatmapNotWritten) + "cannot write 'x': No space left on device";
  c.add(no_map);
  CHECK(c.per_diagnosis == std::map<std::string, int>{{"nodule", 3}});
  CHECK(c.per_abstention == std::map<std::string, int>{{"out of scope: DICOM Modality", 1}, {"out of distribution: score", 1}});
  CHECK(c.per_reason.size() == 1);
  CHECK(c.per_reason.begin()->second == 1);
  CHECK(c.heatmap_failures == 1);
}

TEST_CASE("merge refuses to write over one of its shard files, in the library", "[pipeline][output]") {
  testing::TempDir dir;
  const std::string shard = dir / "part-0.jsonl";
  write_file_atomic(shard, "{\"file\":\"a.png\",\"model\":\"m@1\",\"error\":null}\n");
  testing::require_error([&] { merge_outputs({shard}, shard, {}); }, ErrorKind::kInvalidArgument,
                         "refusing to write '" + shard + "': it is an input; choose another file");
  CHECK(merge_outputs({shard}, dir / "all.jsonl", {}).records == 1);
}
