// Small filesystem helpers shared by every writer.
#pragma once

#include <string>

namespace medattn {

// Writes `bytes` to `path` atomically: a temporary file in the same directory (created new,
// never through a symlink), then renamed over `path`, so a crash leaves either the old file
// or the new one, never a part. `sync` also fsyncs before the rename, so that the new file
// survives a power cut too (models, checkpoints); without it the write is still atomic for a
// killed process (heatmaps, thousands per run). Throws medattn::Error(kIOError) naming the
// path on failure.
void write_file_atomic(const std::string& path, const std::string& bytes, bool sync = true);

// Reads a whole file. Throws medattn::Error(kNotFound / kIOError) naming the path.
std::string read_file(const std::string& path);

}  // namespace medattn
