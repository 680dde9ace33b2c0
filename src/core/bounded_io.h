// Reading files with limits known before the first byte is read: only regular files (a FIFO,
// a device such as /dev/zero or a socket would block or never end), and never more bytes
// than a limit. Shared by the image readers, the model loader and the dataset readers.
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"

namespace medattn {

// What `path` is when it is not a regular file, after following symlinks: "a FIFO",
// "a character device", "a block device", "a socket", "a directory", "not a regular file";
// empty for a regular file and for a path that cannot be examined (the caller's open then
// reports why). Never opens the file, so it never blocks.
std::string special_file_kind(const std::string& path);

// Throws file_error(kind, what, path, "not a regular file (a FIFO)") when `path` is not a
// regular file, file_error(kNotFound, ..., "no such file") when it is missing, and
// file_error(kind, ..., "file too large (N MB, limit M MB)") when it is larger than
// `max_bytes`. Returns the file's size.
uint64_t require_regular_file(const std::string& path, ErrorKind kind, const std::string& what,
                              uint64_t max_bytes);

// Reads a whole regular file of at most `max_bytes`, checked on the opened descriptor
// (O_NONBLOCK, fstat) before reading, and reading at most `max_bytes` + 1 bytes whatever the
// file does meanwhile. Errors as require_regular_file(), read errors with the errno's text.
std::string read_file_bounded(const std::string& path, ErrorKind kind, const std::string& what, uint64_t max_bytes);

// Reads at most `max_bytes` from the start of a regular file (fewer when it is shorter).
std::string read_prefix(const std::string& path, ErrorKind kind, const std::string& what, uint64_t max_bytes);

// "12.3 MB" for messages.
std::string megabytes(uint64_t bytes);

}  // namespace medattn
