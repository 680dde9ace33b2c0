// Pieces of batch processing that outlive one run: sharding, resuming from an earlier output,
// and merging shard outputs. Torch-free.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "io/inputs.h"
#include "report/record.h"

namespace medattn::pipeline {

struct Shard {
  int index = 0;  // 0-based: 0..count-1
  int count = 1;
  bool all() const { return count == 1; }
};

// Parses "K/N" with 0 <= K < N (Slurm: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
// with --array=0-(N-1); Kubernetes Indexed Jobs: $JOB_COMPLETION_INDEX). Throws
// medattn::Error(kInvalidArgument) otherwise.
Shard parse_shard(const std::string& text);

// The key that decides an input's shard: its path relative to the INPUT folder it was found
// in, or the path as given for a file argument. Machines that mount the archive in
// different places therefore agree.
std::string shard_key(const io::InputItem& item);

// The shard (0..count-1) of a key: FNV-1a 64 of its bytes, modulo count. Stable across runs,
// machines and releases.
int shard_of(const std::string& key, int count);

// What an earlier output (jsonl or csv, written by diagnose) already holds.
struct Recorded {
  std::set<std::string> files;  // recorded by `model_id` (errors included: they are answers too)
  int other_model = 0;          // records written by a different model (not skipped)
  int records = 0;              // complete records read
  bool truncated = false;       // the last line was cut short (a crash mid-write) and was removed
};

// Reads FILE (format by `csv`) for `--resume`. A missing or empty file gives an empty set.
// A last line without its newline is cut off the file so that appending continues cleanly.
// Throws medattn::Error(kIOError) when the file cannot be read or repaired, and
// kCorruption naming the line when a complete line is not a record.
Recorded read_recorded(const std::string& path, bool csv, const std::string& model_id);

// One record of a diagnose output, as merge needs it: its key and its text.
struct OutputLine {
  std::string file;
  std::string model;
  std::string text;  // the line itself (jsonl) or the CSV row, without the newline
};

// Reads a diagnose output (jsonl or csv; `header` receives the csv header line). Throws
// medattn::Error naming the file and line on anything that is not a diagnose record.
std::vector<OutputLine> read_output(const std::string& path, bool csv, std::string* header);

struct MergeReport {
  int shards = 0;
  int records = 0;                     // distinct files written
  std::vector<std::string> duplicates; // files recorded more than once (the first copy is kept)
  std::vector<std::string> missing;    // expected files (from --inputs) that no shard recorded
  std::vector<std::string> unexpected; // recorded files that --inputs does not produce
  std::set<std::string> models;        // model ids seen
};

// Joins shard outputs (all jsonl or all csv, by the output's extension) into `out`, written
// atomically, in the order of the inputs' walk when `inputs` is given, else sorted by file.
// With `inputs`, reports expected files that are missing and records nobody expected.
MergeReport merge_outputs(const std::vector<std::string>& shard_files, const std::string& out,
                          const std::vector<std::string>& inputs);

}  // namespace medattn::pipeline
