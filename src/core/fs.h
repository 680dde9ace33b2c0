// Small filesystem helpers shared by every writer: atomic whole-file writes, temporary files
// beside their target, errno texts, and the clean-up of temporaries on signals and after
// crashes.
#pragma once

#include <string>
#include <string_view>

namespace medattn {

// The errno's text ("No space left on device"); never "Success" (a zero errno gives
// "unknown error").
std::string errno_text(int err);

// A new temporary file beside `target` (same folder, so that the rename into place is
// atomic): created O_CREAT|O_EXCL|O_NOFOLLOW with an unpredictable name
// "<target name>.medattn-tmp.<pid>.<12 random hex digits>" (the target name shortened so that
// the whole fits NAME_MAX), so it is never opened through a planted link or file. While it
// exists its path is registered for install_signal_cleanup(). The destructor removes the
// file unless commit() renamed it into place. Every failure throws
// medattn::Error(kIOError) "<what> '<target>': <errno text>".
class TempFile {
 public:
  TempFile(const std::string& target, std::string what = "cannot write");
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }
  const std::string& target() const { return target_; }
  int fd() const { return fd_; }
  // Writes all of `bytes` (retrying short writes); throws on the first failure.
  void write(std::string_view bytes);
  // fsyncs when `sync`, closes and renames over the target; throws on failure (the temporary
  // is removed).
  void commit(bool sync = true);
  // Throws the house-style error for `err` (an errno), naming the target.
  [[noreturn]] void fail(int err) const;

 private:
  std::string target_, what_, path_;
  int fd_ = -1;
  int slot_ = -1;
};

// Writes `bytes` to `path` atomically through a TempFile, so a crash leaves either the old
// file or the new one, never a part. `sync` also fsyncs before the rename, so that the new
// file survives a power cut too (models, checkpoints); without it the write is still atomic
// for a killed process (heatmaps, thousands per run). Throws medattn::Error(kIOError) naming
// the path on failure.
void write_file_atomic(const std::string& path, const std::string& bytes, bool sync = true);

// Reads a whole file. Throws medattn::Error(kNotFound / kIOError) naming the path.
std::string read_file(const std::string& path);

// Temporaries to remove when SIGINT or SIGTERM ends the process (async-signal-safe: fixed
// slots). register_cleanup() returns a slot (-1 when all are taken), unregister_cleanup()
// frees it. Directories are removed after files.
int register_cleanup(const std::string& path, bool directory = false);
void unregister_cleanup(int slot);
// Installs SIGINT and SIGTERM handlers that remove every registered temporary and then end
// the process by the same signal (its default action), as before.
void install_signal_cleanup();

// Removes temporaries that crashed or killed medattn runs left in `dir`: regular files named
// "<prefix>*.medattn-tmp.<pid>.<hex>" (every prefix when `prefix` is empty) owned by this user
// whose process <pid> no longer exists. Anything else is left alone. Returns how many it
// removed; errors are ignored (a later run tries again).
int remove_stale_temporaries(const std::string& dir, const std::string& prefix = "");

// True when no process `pid` exists (kill(pid, 0) fails with ESRCH).
bool process_gone(long pid);

}  // namespace medattn
