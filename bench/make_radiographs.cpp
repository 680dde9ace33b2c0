// medattn_make_radiographs: writes synthetic 16-bit grey "radiographs" for memory benchmarks.
// Usage: medattn_make_radiographs OUT_DIR COUNT [SIDE]   (SIDE default 3000)
// Four distinct images (smooth anatomy-like shapes with film-grain noise, 12 bits used of
// 16) are written; the rest of COUNT are hard links to them, so that a thousand inputs cost
// the disk of four. Peak memory depends on the image size and the queue, not on the content.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: medattn_make_radiographs OUT_DIR COUNT [SIDE]\n");
    return 2;
  }
  const fs::path out = argv[1];
  const int count = std::stoi(argv[2]);
  const int side = argc > 3 ? std::stoi(argv[3]) : 3000;
  fs::create_directories(out);
  for (int i = 0; i < count; ++i) {
    char name[64];
    std::snprintf(name, sizeof(name), "rad_%05d.png", i);
    const fs::path path = out / name;
    if (fs::exists(path)) continue;
    if (i >= 4) {
      char first[64];
      std::snprintf(first, sizeof(first), "rad_%05d.png", i % 4);
      fs::create_hard_link(out / first, path);
      continue;
    }
    cv::Mat img(side, side, CV_32FC1, cv::Scalar(300));
    const cv::Point c(side / 2, side / 2);
    cv::ellipse(img, c, cv::Size(side * 2 / 5, side * 9 / 20), 0, 0, 360, cv::Scalar(1400), -1);  // chest
    cv::ellipse(img, c - cv::Point(side / 6, 0), cv::Size(side / 8, side / 4), 0, 0, 360, cv::Scalar(700), -1);  // lungs
    cv::ellipse(img, c + cv::Point(side / 6, 0), cv::Size(side / 8, side / 4), 0, 0, 360, cv::Scalar(700), -1);
    cv::rectangle(img, cv::Rect(side / 2 - side / 40, side / 10, side / 20, side * 4 / 5), cv::Scalar(2600), -1);  // spine
    cv::circle(img, c + cv::Point((i % 2 ? 1 : -1) * side / 6, side / 10 * (i - 1)), side / 30, cv::Scalar(1800), -1);
    cv::GaussianBlur(img, img, cv::Size(0, 0), side / 150.0);
    cv::Mat noise(side, side, CV_32FC1);
    cv::theRNG().state = 1234 + i;
    cv::randn(noise, 0.0, 6.0);
    img += noise;
    cv::Mat u16;
    img.convertTo(u16, CV_16U, 16.0);  // 12-bit values in a 16-bit PNG, as detectors store them
    if (!cv::imwrite(path.string(), u16)) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
  }
  return 0;
}
