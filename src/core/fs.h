// Small filesystem helpers shared by every writer.
#pragma once

#include <string>

namespace medattn {

// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed, then
// renamed over `path`, so a crash leaves either the old file or the new one, never a part.
// Throws medattn::Error(kIOError) naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Reads a whole file. Throws medattn::Error(kNotFound / kIOError) naming the path.
std::string read_file(const std::string& path);

}  // namespace medattn
