// Shards, resuming and merging: the parts of batch processing that scripts depend on.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "core/fs.h"
#include "pipeline/batch.h"
#include "support/helpers.h"
#include "support/temp_dir.h"

using namespace medattn;
using namespace medattn::pipeline;

TEST_CASE("shard K/N parses 0-based shards and names a bad value", "[batch]") {
  const Shard s = parse_shard("2/5");
  CHECK(s.index == 2);
  CHECK(s.count == 5);
  CHECK(parse_shard("0/1").all());
  for (const char* bad : {"5/5", "1", "-1/4", "a/4", "1/0", "1/", "/4", "1/4/2"}) {
    INFO(bad);
    testing::require_error([&] { parse_shard(bad); }, ErrorKind::kInvalidArgument,
                           std::string("--shard expects K/N with 0 <= K < N, e.g. 0/4 (got '") + bad + "')");
  }
}

TEST_CASE("an input's shard is a stable FNV-1a hash of its relative path", "[batch]") {
  // Pinned: changing them would reshuffle every cluster job's split.
  CHECK(shard_of("nodule/nodule_0001.png", 3) == 0);
  CHECK(shard_of("normal/normal_0000.png", 3) == 1);
  CHECK(shard_of("a.png", 3) == 2);
  CHECK(shard_of("a.png", 7) == 4);
  CHECK(shard_of("anything", 1) == 0);
  // Relative to the INPUT folder, so that two mounts of the archive agree.
  CHECK(shard_key({"/mnt/a/x/y.png", "/mnt/a", "x/y.png"}) == "x/y.png");
  CHECK(shard_key({"/nfs/archive/x/y.png", "/nfs/archive/", "x/y.png"}) == "x/y.png");
  CHECK(shard_key({"./scan.dcm", "./scan.dcm", ""}) == "scan.dcm");
}

TEST_CASE("read_recorded keeps the same model's files, repairs a cut-off line, reads csv", "[batch]") {
  testing::TempDir dir;
  const std::string jl = dir / "out.jsonl";
  write_file_atomic(jl,
                    "{\"file\":\"a.png\",\"model\":\"m@1\",\"error\":null}\n"
                    "{\"file\":\"b.png\",\"model\":\"m@2\",\"error\":null}\n"
                    "{\"file\":\"c.png\",\"model\":\"m@1\",\"error\":\"cannot read\"}\n"
                    "{\"file\":\"d.png\",\"mod");
  const Recorded r = read_recorded(jl, false, "m@1");
  CHECK(r.files == std::set<std::string>{"a.png", "c.png"});
  CHECK(r.other_model == 1);
  CHECK(r.records == 3);
  CHECK(r.truncated);
  CHECK(read_file(jl).back() == '\n');
  CHECK(std::filesystem::file_size(jl) == read_file(jl).size());
  CHECK(read_recorded(dir / "none.jsonl", false, "m@1").records == 0);

  const std::string csv = dir / "out.csv";
  write_file_atomic(csv, "file,diagnosis,probability,p_a,p_b,heatmap,error,model\n"
                         "\"x,1.png\",a,0.9,0.9,0.1,,,m@1\n"
                         "y.png,,,,,,\"cannot read 'y.png': bad\",m@1\n");
  CHECK(read_recorded(csv, true, "m@1").files == std::set<std::string>{"x,1.png", "y.png"});

  write_file_atomic(jl, "{\"file\":\"a.png\"}\nnot json\n");
  testing::require_error([&] { read_recorded(jl, false, "m@1"); }, ErrorKind::kCorruption,
                         "cannot read diagnose output '" + jl + "': line 2 is not JSON");
}

TEST_CASE("merge keeps the first of duplicates, reports missing inputs, writes in walk order", "[batch]") {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path / "in" / "s");
  for (const char* f : {"in/a.png", "in/b.png", "in/s/c.png"}) std::ofstream(dir / f) << "x";
  const std::string a = dir / "in/a.png", b = dir / "in/b.png", c = dir / "in/s/c.png";
  write_file_atomic(dir / "p0.jsonl", "{\"file\":\"" + c + "\",\"model\":\"m@1\"}\n{\"file\":\"" + a + "\",\"model\":\"m@1\"}\n");
  write_file_atomic(dir / "p1.jsonl", "{\"file\":\"" + a + "\",\"model\":\"m@1\",\"again\":1}\n");
  const MergeReport r = merge_outputs({dir / "p0.jsonl", dir / "p1.jsonl"}, dir / "all.jsonl", {dir / "in"});
  CHECK(r.shards == 2);
  CHECK(r.records == 2);
  CHECK(r.duplicates == std::vector<std::string>{a});
  CHECK(r.missing == std::vector<std::string>{b});
  CHECK(r.unexpected.empty());
  CHECK(read_file(dir / "all.jsonl") ==
        "{\"file\":\"" + a + "\",\"model\":\"m@1\"}\n{\"file\":\"" + c + "\",\"model\":\"m@1\"}\n");
}
