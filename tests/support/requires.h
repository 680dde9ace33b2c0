// Tests that need something from outside the project: the shared data (../shared/data, the
// CMake cache variable MEDATTN_SHARED_DATA), tmux or Chromium. Such a test is tagged [shared],
// [tmux] or [browser], which CMake turns into a CTest label, and starts with
// MEDATTN_NEEDS(present, what). When the dependency is missing the test prints
// "MEDATTN_SKIP: <what>" and stops: CTest's SKIP_REGULAR_EXPRESSION then reports it as
// skipped, never as passed. With CI=true in the environment a missing dependency fails the test.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

namespace testdeps {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && (std::string(ci) == "true" || std::string(ci) == "1");
}

// The shared data folder (the build's MEDATTN_SHARED_DATA); "" when it is not there.
inline std::string shared_data_dir() {
  const std::string dir = MEDATTN_SHARED_DATA;
  return std::filesystem::is_directory(dir) ? dir : "";
}

// A path inside the shared data, whether or not it exists.
inline std::string shared_data(const std::string& relative) { return std::string(MEDATTN_SHARED_DATA) + "/" + relative; }

inline bool has_program(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace testdeps

#define MEDATTN_NEEDS(present, what)                                                       \
  do {                                                                                     \
    if (!(present)) {                                                                      \
      if (::testdeps::in_ci()) FAIL("CI=true and a test dependency is missing: " << what); \
      std::cout << "MEDATTN_SKIP: " << what << std::endl;                                  \
      return;                                                                              \
    }                                                                                      \
  } while (false)
