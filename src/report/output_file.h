// The files a run writes (issue 20): an exclusive lock on the output, a stream that checks
// every write and never leaves a torn record, and the checks that refuse an output before the
// run starts (an input, a model file, another output of the same run, a folder).
#pragma once

#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

namespace medattn::report {

// An exclusive lock on output `path`, held as flock() on "<path>.lock" beside it for the
// object's life; the lock file is removed on release (and by the kernel's lock release if the
// process dies, the file may stay: a later run reuses it). Throws medattn::Error(kIOError)
// "cannot write output '<path>': another run holds it (<path>.lock)" when another process
// holds it, or with the errno's text when the lock file cannot be made.
class OutputLock {
 public:
  explicit OutputLock(const std::string& path);
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
  static std::string lock_path(const std::string& path) { return path + ".lock"; }

 private:
  std::string lock_path_;
  int fd_ = -1;
  int slot_ = -1;  // core/fs.h register_cleanup
};

// A stream buffer over a file descriptor that writes only at flush (sync) or when more than
// 1 MB is pending. The first failed write stops it: error() is the errno from then on, every
// later write is dropped, and when `rollback` (a regular file of our own) the file is cut back
// to its length at the last successful flush, so that a record is either whole or absent.
class FdBuf : public std::streambuf {
 public:
  FdBuf(int fd, bool rollback);
  int error() const { return error_; }

 protected:
  int_type overflow(int_type c) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  int sync() override;

 private:
  bool drain();
  int fd_;
  bool rollback_;
  long long committed_ = 0, unsynced_ = 0;
  int error_ = 0;
  std::string pending_;
};

class FdStream : public std::ostream {
 public:
  FdStream(int fd, bool rollback) : std::ostream(nullptr), buf_(fd, rollback) { rdbuf(&buf_); }
  int error() const { return buf_.error(); }

 private:
  FdBuf buf_;
};

// What an output may not be. Each check throws medattn::Error(kInvalidArgument), one line
// "refusing to write '<path>': <why>" (exit 2):
//   - it is one of `inputs` (the same file, however spelled) or an existing image file;
//   - it lies in `model_dir` (the model's card, weights or gate);
//   - it is the same file as another of `others` (e.g. -o and --report);
// and with kIOError (exit 3) and the errno's text when it is a folder or its folder is
// missing, unwritable or a symlink loop ("cannot write <role> '<path>': Is a directory").
struct OutputCheck {
  std::string path;
  std::string role;  // "output", "report", "ROC plot"
};
void check_outputs(const std::vector<OutputCheck>& outputs, const std::vector<std::string>& inputs,
                   const std::string& model_dir);

// Opens `path` for appending (created if missing; emptied first when `truncate`). A symlink
// output is followed: it is the user's choice. Throws kIOError "cannot write output '<path>':
// <errno text>".
int open_append(const std::string& path, bool truncate);

}  // namespace medattn::report
