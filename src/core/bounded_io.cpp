#include "core/bounded_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace medattn {
namespace {

std::string kind_of(mode_t mode) {
  if (S_ISREG(mode)) return "";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISDIR(mode)) return "a directory";
  return "not a regular file";
}

std::string not_regular(const std::string& kind) {
  return kind == "not a regular file" ? kind : "not a regular file (" + kind + ")";
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens without blocking (a FIFO without a writer would), checks the descriptor, then clears
// O_NONBLOCK so that reads of a regular file behave as usual. Returns the size.
uint64_t open_checked(const std::string& path, ErrorKind kind, const std::string& what, uint64_t max_bytes, int* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int e = errno;
    throw file_error(e == ENOENT ? ErrorKind::kNotFound : kind, what, path, e == ENOENT ? "no such file" : std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw file_error(kind, what, path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw file_error(kind, what, path, not_regular(kind_of(st.st_mode)));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    throw file_error(kind, what, path, "file too large (" + megabytes(size) + ", limit " + megabytes(max_bytes) + ")");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  *out = fd;
  return size;
}

std::string read_up_to(const std::string& path, ErrorKind kind, const std::string& what, uint64_t open_limit,
                       uint64_t read_limit) {
  int raw = -1;
  const uint64_t size = open_checked(path, kind, what, open_limit, &raw);
  Fd fd(raw);
  std::string out;
  out.resize(static_cast<size_t>(std::min(size, read_limit)));
  size_t done = 0;
  for (;;) {
    if (done == out.size()) {
      if (done >= read_limit) break;
      out.resize(std::min<uint64_t>(read_limit, out.size() + 65536));  // the file grew
      if (done == out.size()) break;
    }
    const ssize_t n = ::read(fd.get(), &out[done], out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw file_error(kind, what, path, std::strerror(errno));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

}  // namespace

std::string megabytes(uint64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f MB", static_cast<double>(bytes) / 1048576.0);
  return buf;
}

std::string special_file_kind(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return kind_of(st.st_mode);
}

uint64_t require_regular_file(const std::string& path, ErrorKind kind, const std::string& what, uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    throw file_error(e == ENOENT ? ErrorKind::kNotFound : kind, what, path, e == ENOENT ? "no such file" : std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) throw file_error(kind, what, path, not_regular(kind_of(st.st_mode)));
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    throw file_error(kind, what, path, "file too large (" + megabytes(size) + ", limit " + megabytes(max_bytes) + ")");
  }
  return size;
}

std::string read_file_bounded(const std::string& path, ErrorKind kind, const std::string& what, uint64_t max_bytes) {
  std::string bytes = read_up_to(path, kind, what, max_bytes, max_bytes + 1);
  if (bytes.size() > max_bytes) {
    throw file_error(kind, what, path, "file too large (more than " + megabytes(max_bytes) + ")");
  }
  return bytes;
}

std::string read_prefix(const std::string& path, ErrorKind kind, const std::string& what, uint64_t max_bytes) {
  return read_up_to(path, kind, what, UINT64_MAX, max_bytes);
}

}  // namespace medattn
