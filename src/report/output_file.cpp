#include "report/output_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "io/image.h"

namespace fs = std::filesystem;

namespace medattn::report {
namespace {

constexpr size_t kMaxPending = 1 << 20;

// A path's identity: its device and inode when it exists.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  std::error_code e1, e2;
  const fs::path ca = fs::weakly_canonical(a, e1), cb = fs::weakly_canonical(b, e2);
  return !e1 && !e2 && ca == cb;
}

fs::path canonical_or_normal(const std::string& p) {
  std::error_code ec;
  const fs::path c = fs::weakly_canonical(p, ec);
  return ec ? fs::absolute(p, ec).lexically_normal() : c;
}

}  // namespace

OutputLock::OutputLock(const std::string& path) : lock_path_(lock_path(path)) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd_ < 0) throw file_error(ErrorKind::kIOError, "cannot write output", path, errno_text(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      if (err == EWOULDBLOCK) {
        throw file_error(ErrorKind::kIOError, "cannot write output", path, "another run holds it (" + lock_path_ + ")");
      }
      throw file_error(ErrorKind::kIOError, "cannot write output", path, "cannot lock " + lock_path_ + ": " + errno_text(err));
    }
    // The holder removes the lock file when it ends; if it did so between our open and our
    // flock, we hold a lock on a removed file: try again with the file now at the path.
    struct stat held {}, now {};
    if (::fstat(fd_, &held) == 0 && ::stat(lock_path_.c_str(), &now) == 0 && held.st_dev == now.st_dev &&
        held.st_ino == now.st_ino) {
      slot_ = register_cleanup(lock_path_);
      return;
    }
    ::close(fd_);
    fd_ = -1;
  }
  throw file_error(ErrorKind::kIOError, "cannot write output", path, "cannot lock " + lock_path_ + ": it keeps changing");
}

OutputLock::~OutputLock() {
  if (fd_ < 0) return;
  ::unlink(lock_path_.c_str());  // while still held: nobody can be holding it after us
  unregister_cleanup(slot_);
  ::close(fd_);
}

FdBuf::FdBuf(int fd, bool rollback) : fd_(fd), rollback_(rollback) {
  if (rollback_) {
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    rollback_ = end >= 0;
    committed_ = end < 0 ? 0 : end;
  }
}

bool FdBuf::drain() {
  for (size_t done = 0; done < pending_.size();) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = n < 0 ? errno : ENOSPC;
      if (rollback_ && ::ftruncate(fd_, committed_) != 0) {
        // Nothing more can be done: the error already reported says why.
      }
      pending_.clear();
      return false;
    }
    done += static_cast<size_t>(n);
  }
  unsynced_ += static_cast<long long>(pending_.size());
  pending_.clear();
  return true;
}

FdBuf::int_type FdBuf::overflow(int_type c) {
  if (error_ != 0) return traits_type::eof();
  if (!traits_type::eq_int_type(c, traits_type::eof())) pending_.push_back(traits_type::to_char_type(c));
  if (pending_.size() > kMaxPending && !drain()) return traits_type::eof();
  return traits_type::not_eof(c);
}

std::streamsize FdBuf::xsputn(const char* s, std::streamsize n) {
  if (error_ != 0) return 0;
  pending_.append(s, static_cast<size_t>(n));
  if (pending_.size() > kMaxPending && !drain()) return 0;
  return n;
}

int FdBuf::sync() {
  if (error_ != 0 || !drain()) return -1;
  committed_ += unsynced_;
  unsynced_ = 0;
  return 0;
}

int open_append(const std::string& path, bool truncate) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0666);
  if (fd < 0) throw file_error(ErrorKind::kIOError, "cannot write output", path, errno_text(errno));
  return fd;
}

void check_outputs(const std::vector<OutputCheck>& outputs, const std::vector<std::string>& inputs,
                   const std::string& model_dir) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& o = outputs[i];
    if (o.path.empty() || o.path == "-") continue;
    const std::string what = "cannot write " + o.role;
    struct stat st {};
    if (::stat(o.path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) throw file_error(ErrorKind::kIOError, what, o.path, errno_text(EISDIR));
    } else if (errno != ENOENT) {
      throw file_error(ErrorKind::kIOError, what, o.path, errno_text(errno));  // a symlink loop, a file as folder, ...
    } else {
      // Missing: its folder must exist and be a folder we can write into.
      const fs::path parent = fs::path(o.path).parent_path();
      const std::string dir = parent.empty() ? "." : parent.string();
      struct stat pst {};
      if (::stat(dir.c_str(), &pst) != 0) throw file_error(ErrorKind::kIOError, what, o.path, errno_text(errno));
      if (!S_ISDIR(pst.st_mode)) throw file_error(ErrorKind::kIOError, what, o.path, errno_text(ENOTDIR));
    }
    {
      const fs::path parent = fs::path(o.path).parent_path();
      const std::string dir = parent.empty() ? "." : parent.string();
      if (::access(dir.c_str(), W_OK | X_OK) != 0) throw file_error(ErrorKind::kIOError, what, o.path, errno_text(errno));
    }
    for (const auto& in : inputs) {
      if (in.empty() || in == "-") continue;
      if (same_file(o.path, in)) throw file_error(ErrorKind::kInvalidArgument, "refusing to write", o.path, "it is an input; choose another file");
    }
    if (S_ISREG(st.st_mode) && ::stat(o.path.c_str(), &st) == 0 && io::sniff_format(o.path) != io::FileFormat::kUnknown) {
      throw file_error(ErrorKind::kInvalidArgument, "refusing to write", o.path, "it is an image (an input?); choose another file");
    }
    if (!model_dir.empty()) {
      const fs::path m = canonical_or_normal(model_dir);
      for (fs::path p = canonical_or_normal(o.path).parent_path(); !p.empty(); p = p.parent_path()) {
        if (p == m) {
          throw file_error(ErrorKind::kInvalidArgument, "refusing to write", o.path,
                           "it is in the model folder '" + model_dir + "'; choose another file");
        }
        if (p == p.root_path()) break;
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (!outputs[j].path.empty() && (same_file(o.path, outputs[j].path) ||
                                       canonical_or_normal(o.path) == canonical_or_normal(outputs[j].path))) {
        throw file_error(ErrorKind::kInvalidArgument, "refusing to write", o.path,
                         "it is also the " + outputs[j].role + " of this run; choose another file");
      }
    }
  }
}

}  // namespace medattn::report
