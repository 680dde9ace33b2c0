// The terminal view: where the heatmap's mass lies in words, and half-block previews.
#include <algorithm>
#include <catch2/catch.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "report/record.h"
#include "report/terminal.h"

using namespace medattn::report;

TEST_CASE("all of the heatmap's mass in one cell reads 100% for that cell", "[report][terminal]") {
  cv::Mat heat(90, 90, CV_32FC1, cv::Scalar(0));
  heat(cv::Rect(60, 60, 30, 30)).setTo(0.7);
  const auto regions = attention_regions(heat);
  REQUIRE(regions.size() == 9);
  CHECK(regions[8].first == "lower right");
  CHECK(regions[8].second == Approx(1.0));
  CHECK(region_summary(regions) == "map regions: 100% lower right");
}

TEST_CASE("the region summary lists the cells with at least 10%, largest first", "[report][terminal]") {
  cv::Mat heat(30, 30, CV_32FC1, cv::Scalar(0));
  heat(cv::Rect(20, 20, 10, 10)).setTo(61.0);  // lower right
  heat(cv::Rect(20, 10, 10, 10)).setTo(22.0);  // middle right
  heat(cv::Rect(10, 10, 10, 10)).setTo(12.0);  // centre
  heat(cv::Rect(0, 0, 10, 10)).setTo(5.0);     // upper left: under 10%, not named
  CHECK(region_summary(attention_regions(heat)) == "map regions: 61% lower right, 22% middle right, 12% centre");
  cv::Mat flat(30, 30, CV_32FC1, cv::Scalar(1));
  CHECK(region_summary(attention_regions(flat)) == "map regions: 11% upper left, 11% upper middle, 11% upper right");
  cv::Mat none(30, 30, CV_32FC1, cv::Scalar(0));
  CHECK(region_summary(attention_regions(none)) == "map regions: spread evenly (no region holds 10%)");
}

TEST_CASE("half blocks: upper pixel in the foreground, lower in the background", "[report][terminal]") {
  // 1 pixel wide, 2 tall: red over blue -> one character.
  cv::Mat img(2, 1, CV_8UC3);
  img.at<cv::Vec3b>(0, 0) = {0, 0, 255};
  img.at<cv::Vec3b>(1, 0) = {255, 0, 0};
  CHECK(render_halfblocks(img, 1, ColourMode::kTrueColour) == "\x1b[38;2;255;0;0m\x1b[48;2;0;0;255m\u2580\x1b[0m\n");
  CHECK(render_halfblocks(img, 1, ColourMode::k256) == "\x1b[38;5;196m\x1b[48;5;21m\u2580\x1b[0m\n");
  cv::Mat bw(2, 2, CV_8UC3, cv::Scalar(0, 0, 0));
  bw.col(1).setTo(cv::Scalar(255, 255, 255));
  CHECK(render_halfblocks(bw, 2, ColourMode::kAscii) == " @\n");
  // Two pixel rows per text row: a 40x40 image 20 wide gives 10 rows.
  cv::Mat sq(40, 40, CV_8UC3, cv::Scalar(10, 20, 30));
  const std::string out = render_halfblocks(sq, 20, ColourMode::kTrueColour);
  CHECK(std::count(out.begin(), out.end(), '\n') == 10);
}

TEST_CASE("ASCII previews show the heatmap in shades", "[report][terminal]") {
  cv::Mat heat(2, 3, CV_32FC1);
  heat.at<float>(0, 0) = 0.0f;
  heat.at<float>(0, 1) = 0.5f;
  heat.at<float>(0, 2) = 1.0f;
  heat.row(0).copyTo(heat.row(1));
  // Shades " .:-=+*#%@": 0 -> ' ', 0.5 -> index round(4.5) = 5 -> '+', 1 -> '@'.
  CHECK(render_ascii_heat(heat, 3) == " +@\n");
}

TEST_CASE("xterm-256 colours, legend and shortened paths", "[report][terminal]") {
  CHECK(xterm256(255, 0, 0) == 196);
  CHECK(xterm256(0, 0, 255) == 21);
  CHECK(xterm256(128, 128, 128) == 244);
  CHECK(xterm256(0, 0, 0) == 16);
  CHECK(legend_line(ColourMode::kAscii) == "low .:-=+*#%@ high");
  CHECK(legend_line(ColourMode::kTrueColour).rfind("low \x1b[38;2;", 0) == 0);
  CHECK(shorten_middle("abcdefghijklmnopqrstuvwxyz", 11) == "abcd...wxyz");
  CHECK(shorten_middle("short.png", 20) == "short.png");
}

TEST_CASE("the 256-colour fallback keeps the colour map's order", "[report][terminal]") {
  // TURBO's 256 steps through the palette: once the ramp leaves a palette colour it never comes
  // back to it (the old per-channel rounding went orange, brown, orange and greyed dark blues),
  // and the ramp keeps enough distinct colours to read.
  cv::Mat ramp(1, 256, CV_8UC1), colours;
  for (int i = 0; i < 256; ++i) ramp.at<uint8_t>(0, i) = static_cast<uint8_t>(i);
  cv::applyColorMap(ramp, colours, cv::COLORMAP_TURBO);
  std::vector<int> runs;
  for (int i = 0; i < 256; ++i) {
    const auto c = colours.at<cv::Vec3b>(0, i);
    const int index = xterm256(c[2], c[1], c[0]);
    CHECK(index >= 16);
    CHECK(index <= 255);
    if (runs.empty() || runs.back() != index) runs.push_back(index);
  }
  std::vector<int> sorted = runs;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
  CHECK(runs.size() >= 20);
  // Exact palette colours map to themselves: cube corners and greys.
  const int level[6] = {0, 95, 135, 175, 215, 255};
  for (int i = 0; i < 216; ++i) CHECK(xterm256(level[i / 36], level[i / 6 % 6], level[i % 6]) == 16 + i);
  for (int i = 0; i < 24; ++i) CHECK(xterm256(8 + 10 * i, 8 + 10 * i, 8 + 10 * i) == 232 + i);
  // TURBO's blue blended 40% into a grey image stays blue (the old rule rounded each channel
  // and drew it grey, 59 = (95,95,95)); its dark purple over a dark image is no saturated navy
  // (the old 17 = (0,0,95)). Over TURBO blended at 60% into greys 40, 128 and 200, the mean
  // colour error (CIE76) fell from 13.8 to 10.3 and the largest from 46.3 to 25.5.
  CHECK(xterm256(54, 54, 113) == 61);
  CHECK(xterm256(44, 26, 51) != 17);
  // A grey ramp stays grey and dark to light.
  int last = -1;
  for (int v = 0; v < 256; ++v) {
    const int index = xterm256(v, v, v);
    const int luma = index >= 232 ? 8 + 10 * (index - 232) : level[(index - 16) / 36];
    CHECK(luma >= last);
    last = luma;
  }
}

TEST_CASE("the table prints the region line under each diagnosed row", "[report][terminal]") {
  DiagnosisRecord r;
  r.file = "x.png";
  r.ok = true;
  r.diagnosis = "nodule";
  r.probability = 0.9;
  r.probabilities = {{"normal", 0.1}, {"nodule", 0.9}};
  cv::Mat heat(9, 9, CV_32FC1, cv::Scalar(0));
  heat.at<float>(0, 0) = 1.0f;
  r.attention_regions = attention_regions(heat);
  std::ostringstream out;
  auto w = make_writer(Format::kTable, out, {"normal", "nodule"});
  w->write(r);
  w->finish();
  CHECK(out.str() ==
        "FILE   DIAGNOSIS  PROB    DETAILS\n"
        "x.png  nodule     0.900   normal=0.100 nodule=0.900\n"
        "       map regions: 100% upper left\n");
  CHECK(out.str().find('\x1b') == std::string::npos);  // no colour unless asked
}
