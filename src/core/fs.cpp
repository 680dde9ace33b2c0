#include "core/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace medattn {

void write_file_atomic(const std::string& path, const std::string& bytes, bool sync) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(counter.fetch_add(1));
  // O_EXCL | O_NOFOLLOW: never write through a symlink or into a file someone else made.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw file_error(ErrorKind::kIOError, "cannot write", path, std::strerror(errno));
  }
  bool ok = true;
  for (size_t done = 0; ok && done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  if (ok && sync) ok = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    std::remove(tmp.c_str());
    throw file_error(ErrorKind::kIOError, "cannot write", path, std::strerror(err));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);  // replaces a symlink at `path`, never its target
  if (ec) {
    std::remove(tmp.c_str());
    throw file_error(ErrorKind::kIOError, "cannot write", path, ec.message());
  }
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw file_error(ErrorKind::kNotFound, "cannot read", path, "no such file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw file_error(ErrorKind::kIOError, "cannot read", path, "cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace medattn
