// Heatmaps written on diagnose's encoding thread while the model runs are those written
// before, and --png-compression changes the files, not the pixels.
#include <catch2/catch.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <string>

#include "support/cli.h"

namespace fs = std::filesystem;
using clitest::fixture;
using clitest::medattn;
using clitest::q;
using clitest::Run;

TEST_CASE("heatmaps and records are the same whatever the batch size and the encoding overlap", "[pipeline][encoder][cli]") {
  const fs::path d = fixture();
  std::string outputs[2];
  const int batches[2] = {1, 5};  // one image at a time (never overlapped) and batches that are
  for (int i = 0; i < 2; ++i) {
    const fs::path heat = d / ("overlap-" + std::to_string(i));
    const Run r = medattn("diagnose -m " + q(d / "model") + " --format jsonl --threads 2 --batch-size " +
                          std::to_string(batches[i]) + " --heatmaps " + q(heat) + " " + q(d / "ph/images"));
    REQUIRE(r.code == 0);
    std::string text = r.out;
    for (size_t p; (p = text.find(heat.string())) != std::string::npos;) text.replace(p, heat.string().size(), "HEAT");
    outputs[i] = text;
  }
  CHECK(outputs[0] == outputs[1]);
  int files = 0;
  for (const auto& f : fs::directory_iterator(d / "overlap-0")) {
    CHECK(clitest::slurp(f.path()) == clitest::slurp(d / "overlap-1" / f.path().filename()));
    ++files;
  }
  CHECK(files == 2 * 24);  // overlay and raw map per phantom
}

TEST_CASE("the PNG compression level changes the size of the heatmap files, never their pixels", "[pipeline][encoder][cli]") {
  const fs::path d = fixture();
  const fs::path image = d / "ph/images/nodule";
  uintmax_t sizes[3] = {0, 0, 0};
  const char* levels[3] = {"", "--png-compression 0", "--png-compression 9"};
  for (int i = 0; i < 3; ++i) {
    const fs::path heat = d / ("png-level-" + std::to_string(i));
    REQUIRE(medattn("diagnose -m " + q(d / "model") + " --format jsonl --quiet " + levels[i] + " --heatmaps " + q(heat) + " " +
                    q(image)).code == 0);
    for (const auto& f : fs::directory_iterator(heat)) {
      sizes[i] += fs::file_size(f.path());
      const cv::Mat base = cv::imread((d / "png-level-0" / f.path().filename()).string(), cv::IMREAD_UNCHANGED);
      const cv::Mat mine = cv::imread(f.path().string(), cv::IMREAD_UNCHANGED);
      REQUIRE(!mine.empty());
      REQUIRE(mine.type() == base.type());
      CHECK(cv::norm(mine, base, cv::NORM_INF) == 0.0);
    }
  }
  CHECK(sizes[1] > sizes[0]);  // stored, not compressed
  CHECK(sizes[2] < sizes[1]);
  CHECK(medattn("diagnose -m " + q(d / "model") + " --png-compression 10 " + q(image)).code == 2);
}
