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

// The heatmap file stem of an input (without folder or ".heatmap.png"): io::heatmap_stem
// (the path as given, flattened to [A-Za-z0-9._-]) cut to 200 bytes, then "-" and 8 hex
// digits of FNV-1a 64 of the lexically normal path as given. It depends on that path alone,
// never on the other inputs, --shard or --resume, so a name never changes meaning between runs;
// and "<stem>.heatmap-raw.png" stays within NAME_MAX (255 bytes).
std::string heatmap_stem(const io::InputItem& item);

// What an earlier output (jsonl or csv, written by diagnose) already holds.
struct Recorded {
  std::set<std::string> files;  // recorded by `model_id` (errors included: they are answers too)
  int other_model = 0;          // records written by a different model (not skipped)
  int records = 0;              // complete records read
  bool truncated = false;       // the last record was cut short (a crash mid-write) and was removed
  int retried = 0;              // records of this model whose error was transient: removed, diagnosed again
};

// The note a record's `warning` starts with when its heatmap could not be written (the
// diagnosis is kept): "heatmap not written: <error>".
inline constexpr const char* kHeatmapNotWritten = "heatmap not written: ";

// True for an error that came from the machine rather than the image, which --resume
// diagnoses again: its text holds the errno text of ENOSPC, EDQUOT, EIO, ENOMEM, EMFILE,
// ENFILE, EAGAIN, EINTR, ETIMEDOUT, ESTALE, EROFS, EACCES, EPERM, ENOLCK or EBUSY, or says
// "out of memory". Everything else (a corrupt or unsupported file, a missing one, a
// non-finite image) is permanent: resume keeps it.
bool transient_error(const std::string& error);

// Reads FILE (format by `csv`) for `--resume`. A missing or empty file gives an empty set.
// Records are read as records (a csv field may hold a newline). A last record cut short, and
// the records of `model_id` whose error (or heatmap warning) is transient_error(), are removed
// from the file, which is then rewritten atomically; the caller must hold its lock
// (report::OutputLock). With `csv_header` (the header this run would write), a csv whose header
// differs is refused: kCorruption "cannot resume '<path>': its csv columns (...) differ ...".
// Throws medattn::Error(kIOError) when the file cannot be read or repaired, and kCorruption
// naming the line when a complete record is not a diagnose record.
Recorded read_recorded(const std::string& path, bool csv, const std::string& model_id, const std::string& csv_header = "");

// One record of a diagnose output, as merge needs it: its key and its text.
struct OutputLine {
  std::string file;
  std::string model;
  std::string text;  // the line itself (jsonl) or the CSV record, without its final newline
  std::string error, warning;  // the record's error and warning ("" when none)
};

// Reads a diagnose output (jsonl or csv; `header` receives the csv header record), by records.
// Throws medattn::Error naming the file and line on anything that is not a diagnose record,
// and on a last record cut short.
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
