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

// Runs `fn`, accepting success or medattn::Error; anything else fails the test.
template <typename Fn>
void survives(const std::string& name, Fn fn) {
  INFO(name);
  try {
    fn();
    SUCCEED();
  } catch (const Error& e) {
    CHECK(std::string(e.what()).size() > 0);
  }
}

std::vector<fs::path> inputs_of(const std::string& target) {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(MEDATTN_SOURCE_DIR) / "tests" / "fuzz_regressions" / target;
  if (!fs::is_directory(dir)) return out;
  for (const auto& f : fs::directory_iterator(dir)) out.push_back(f.path());
  std::sort(out.begin(), out.end());
  return out;
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
    survives(f.filename().string(), [&] { model::load_model(dir.path.string()); });
  }
}

TEST_CASE("fuzz regressions: readers", "[fuzz]") {
  for (const char* target : {"image", "dicom", "nifti", "npz", "csv"}) {
    for (const auto& f : inputs_of(target)) {
      const std::string t = target;
      survives(t + "/" + f.filename().string(), [&] {
        if (t == "image") io::read_image(f.string());
        if (t == "dicom") io::read_dicom(f.string(), {});
        if (t == "nifti") io::read_nifti(f.string(), {});
        if (t == "npz") io::read_npz(f.string());
        if (t == "csv") io::load_dataset(f.string());
      });
    }
  }
}
