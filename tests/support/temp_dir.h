// A fresh directory for one test, unique to the process and the object, removed at the end.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace medattn::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test") {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("medattn_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // path / name, as a string.
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string operator/(const std::string& name) const { return file(name); }

  std::filesystem::path path;
};

// A fresh directory unique to the process, removed when the test process exits (also after a
// test that failed part-way), for tests that hand paths around.
inline std::filesystem::path scratch_dir(const std::string& tag) {
  static std::vector<std::unique_ptr<TempDir>> dirs;  // destroyed, and so removed, at exit
  dirs.push_back(std::make_unique<TempDir>(tag));
  return dirs.back()->path;
}

}  // namespace medattn::testing
