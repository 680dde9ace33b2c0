// Every input the fuzzers found a crash with, replayed through the same entry point as its
// fuzz target: each must now end in a medattn::Error or succeed, and (under SANITIZE=1) do so
// without a sanitizer report. Files: tests/fuzz_regressions/<target>/*.
// LibTorch (through glog) defines its own CHECK; its headers come before Catch's so that
// Catch's CHECK is the one in force.
#include "model/net.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/fs.h"
#include "io/csv.h"
#include "io/dataset.h"
#include "io/image.h"
#include "io/npz.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace medattn;

namespace {

// Runs `fn`, which must throw medattn::Error with exactly `expected` ({path} stands for the
// input's path); a crash, another exception or success fails the test.
template <typename Fn>
void fails_with(const std::string& name, const std::string& path, std::string expected, Fn fn) {
  INFO(name);
  for (size_t at; (at = expected.find("{path}")) != std::string::npos;) expected.replace(at, 6, path);
  try {
    fn();
    FAIL("no error; expected: " << expected);
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == expected);
  }
}

// The inputs kept for a fuzz target (tests/fuzz_regressions/<target>/*, without the
// <input>.expected files that hold each one's error text).
std::vector<fs::path> inputs_of(const std::string& target) {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(MEDATTN_SOURCE_DIR) / "tests" / "fuzz_regressions" / target;
  REQUIRE(fs::is_directory(dir));
  for (const auto& f : fs::directory_iterator(dir)) {
    if (f.path().extension() != ".expected") out.push_back(f.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The error text kept beside an input, without its final newline.
std::string expected_of(const fs::path& input) {
  const fs::path p = input.string() + ".expected";
  REQUIRE(fs::exists(p));
  std::string text = read_file(p.string());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

TEST_CASE("fuzz regressions: model loader", "[fuzz]") {
  const auto files = inputs_of("model");
  REQUIRE(!files.empty());
  for (const auto& f : files) {
    testing::TempDir dir;
    const std::string bytes = read_file(f.string());
    const size_t nul = bytes.find('\0');
    write_file_atomic(dir / "model.json", bytes.substr(0, nul));
    write_file_atomic(dir / "weights.bin", nul == std::string::npos ? "" : bytes.substr(nul + 1));
    fails_with(f.filename().string(), dir.path.string(), expected_of(f), [&] { model::load_model(dir.path.string()); });
  }
}

TEST_CASE("fuzz regressions: readers", "[fuzz]") {
  for (const std::string target : {"image", "dicom", "nifti", "npz", "csv"}) {
    const auto files = inputs_of(target);
    INFO(target);
    REQUIRE(!files.empty());  // at least one kept input per reader
    for (const auto& f : files) {
      const std::string path = f.string();
      fails_with(target + "/" + f.filename().string(), path, expected_of(f), [&] {
        if (target == "image") io::read_image(path);
        if (target == "dicom") io::read_dicom(path, {});
        if (target == "nifti") io::read_nifti(path, {});
        if (target == "npz") io::read_npz(path);
        if (target == "csv") io::load_dataset(path);
      });
    }
  }
}
