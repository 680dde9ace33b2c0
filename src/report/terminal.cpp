#include "report/terminal.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <vector>

namespace medattn::report {
namespace {

const char* const kCellNames[9] = {"upper left",  "upper middle", "upper right",  "middle left", "centre",
                                   "middle right", "lower left",   "lower middle", "lower right"};
const char kShades[] = " .:-=+*#%@";

void colour(std::ostringstream& out, bool foreground, const cv::Vec3b& bgr, ColourMode mode) {
  if (mode == ColourMode::kTrueColour) {
    out << "\x1b[" << (foreground ? 38 : 48) << ";2;" << int(bgr[2]) << ";" << int(bgr[1]) << ";" << int(bgr[0]) << "m";
  } else {
    out << "\x1b[" << (foreground ? 38 : 48) << ";5;" << xterm256(bgr[2], bgr[1], bgr[0]) << "m";
  }
}

}  // namespace

std::vector<std::pair<std::string, double>> attention_regions(const cv::Mat& heatmap) {
  CV_Assert(heatmap.type() == CV_32FC1);
  std::vector<std::pair<std::string, double>> out;
  double cells[9] = {0};
  double total = 0;
  // Each pixel's cell column, once per map (the sums run in the same order as pixel by pixel).
  std::vector<int> cell_x(static_cast<size_t>(heatmap.cols));
  for (int x = 0; x < heatmap.cols; ++x) cell_x[static_cast<size_t>(x)] = std::min(2, x * 3 / heatmap.cols);
  for (int y = 0; y < heatmap.rows; ++y) {
    const float* row = heatmap.ptr<float>(y);
    double* cells_row = cells + std::min(2, y * 3 / heatmap.rows) * 3;
    for (int x = 0; x < heatmap.cols; ++x) {
      const double v = std::max(0.0f, row[x]);
      cells_row[cell_x[static_cast<size_t>(x)]] += v;
      total += v;
    }
  }
  for (int i = 0; i < 9; ++i) out.emplace_back(kCellNames[i], total > 0 ? cells[i] / total : 0.0);
  return out;
}

std::string region_summary(const std::vector<std::pair<std::string, double>>& regions) {
  auto sorted = regions;
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out = "map regions:";
  int shown = 0;
  for (const auto& [name, share] : sorted) {
    if (share < 0.10 || shown == 3) break;
    out += (shown++ ? ", " : " ") + std::to_string(static_cast<int>(std::lround(share * 100))) + "% " + name;
  }
  if (shown == 0) out += " spread evenly (no region holds 10%)";
  return out;
}

ColourMode detect_colour_mode() {
  const char* ct = std::getenv("COLORTERM");
  const std::string v = ct ? ct : "";
  return (v == "truecolor" || v == "24bit") ? ColourMode::kTrueColour : ColourMode::k256;
}

namespace {

// CIE L*a*b* (D65) of an sRGB colour: distances in it follow what the eye sees, so the nearest
// palette colour of each step of a colour map keeps the map's order.
std::array<float, 3> srgb_to_lab(int r, int g, int b) {
  auto linear = [](int v) {
    const double c = v / 255.0;
    return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
  };
  const double R = linear(r), G = linear(g), B = linear(b);
  const double x = (0.4124 * R + 0.3576 * G + 0.1805 * B) / 0.95047;
  const double y = 0.2126 * R + 0.7152 * G + 0.0722 * B;
  const double z = (0.0193 * R + 0.1192 * G + 0.9505 * B) / 1.08883;
  auto f = [](double t) { return t > 216.0 / 24389 ? std::cbrt(t) : (24389.0 / 27 * t + 16) / 116; };
  return {static_cast<float>(116 * f(y) - 16), static_cast<float>(500 * (f(x) - f(y))),
          static_cast<float>(200 * (f(y) - f(z)))};
}

// The 240 colours a 256-colour terminal shares everywhere (16..231: the 6x6x6 cube with levels
// 0, 95, 135, ..., 255; 232..255: greys 8, 18, ..., 238), in L*a*b*. Indices 0..15 are left out:
// every terminal theme redefines them.
struct Palette {
  std::array<std::array<float, 3>, 240> lab;
  Palette() {
    const int level[6] = {0, 95, 135, 175, 215, 255};
    for (int i = 0; i < 216; ++i) lab[i] = srgb_to_lab(level[i / 36], level[i / 6 % 6], level[i % 6]);
    for (int i = 0; i < 24; ++i) lab[216 + i] = srgb_to_lab(8 + 10 * i, 8 + 10 * i, 8 + 10 * i);
  }
};

}  // namespace

int xterm256(int r, int g, int b) {
  // The nearest palette colour in L*a*b*. The old rule (each channel rounded to its nearest cube
  // level) moved hues: TURBO's dark blues and oranges came out muddy browns and greys, and the
  // legend's ramp went back and forth between colours.
  static const Palette palette;
  const auto lab = srgb_to_lab(r, g, b);
  int best = 0;
  float best_d = 1e30f;
  for (int i = 0; i < 240; ++i) {
    const auto& p = palette.lab[i];
    const float d = (p[0] - lab[0]) * (p[0] - lab[0]) + (p[1] - lab[1]) * (p[1] - lab[1]) + (p[2] - lab[2]) * (p[2] - lab[2]);
    if (d < best_d) {
      best_d = d;
      best = i;
    }
  }
  return 16 + best;
}

namespace {

// At most this many text rows per picture: a 1x100000 sliver at 62 columns would otherwise
// be 3 million lines (gigabytes of escapes). A picture taller than that is drawn narrower,
// keeping its aspect; a sliver becomes one column or one row.
constexpr int kMaxPreviewRows = 64;

// The picture's size in text cells: `width` columns (fewer for a tall image) and rows of
// two pixels' height, since a cell is about twice as tall as wide.
cv::Size preview_cells(int cols, int rows, int width) {
  const double aspect = static_cast<double>(rows) / std::max(1, cols) / 2;  // text rows per column
  double w = width, h = width * aspect;
  if (h > kMaxPreviewRows) {
    h = kMaxPreviewRows;
    w = kMaxPreviewRows / aspect;
  }
  return {std::clamp(static_cast<int>(std::lround(w)), 1, width), std::clamp(static_cast<int>(std::lround(h)), 1, kMaxPreviewRows)};
}

}  // namespace

std::string render_halfblocks(const cv::Mat& bgr, int width, ColourMode mode) {
  CV_Assert(bgr.type() == CV_8UC3 && width > 0);
  std::ostringstream out;
  if (mode == ColourMode::kAscii) {
    // Text cells are about twice as tall as wide: one cell per 1x2 pixels.
    const cv::Size cells = preview_cells(bgr.cols, bgr.rows, width);
    const int rows = cells.height;
    width = cells.width;
    cv::Mat small, grey;
    cv::resize(bgr, small, cv::Size(width, rows), 0, 0, cv::INTER_AREA);
    cv::cvtColor(small, grey, cv::COLOR_BGR2GRAY);
    for (int y = 0; y < rows; ++y) {
      for (int x = 0; x < width; ++x) out << kShades[grey.at<uint8_t>(y, x) * 9 / 255];
      out << "\n";
    }
    return out.str();
  }
  const cv::Size cells = preview_cells(bgr.cols, bgr.rows, width);
  const int rows = cells.height;
  width = cells.width;
  cv::Mat small;
  cv::resize(bgr, small, cv::Size(width, 2 * rows), 0, 0, cv::INTER_AREA);
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < width; ++x) {
      colour(out, true, small.at<cv::Vec3b>(2 * y, x), mode);
      colour(out, false, small.at<cv::Vec3b>(2 * y + 1, x), mode);
      out << "\u2580";
    }
    out << "\x1b[0m\n";
  }
  return out.str();
}

std::string render_ascii_heat(const cv::Mat& heatmap, int width) {
  CV_Assert(heatmap.type() == CV_32FC1 && width > 0);
  const cv::Size cells = preview_cells(heatmap.cols, heatmap.rows, width);
  const int rows = cells.height;
  width = cells.width;
  cv::Mat small;
  cv::resize(heatmap, small, cv::Size(width, rows), 0, 0, cv::INTER_AREA);
  std::ostringstream out;
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < width; ++x) {
      const float v = std::clamp(small.at<float>(y, x), 0.0f, 1.0f);
      out << kShades[static_cast<int>(std::lround(v * 9))];
    }
    out << "\n";
  }
  return out.str();
}

std::string legend_line(ColourMode mode, int width) {
  std::ostringstream out;
  out << "low ";
  if (mode == ColourMode::kAscii) {
    out << (kShades + 1);
  } else {
    cv::Mat ramp(1, width, CV_8UC1), colours;
    for (int i = 0; i < width; ++i) ramp.at<uint8_t>(0, i) = static_cast<uint8_t>(255 * i / std::max(1, width - 1));
    cv::applyColorMap(ramp, colours, cv::COLORMAP_TURBO);
    for (int i = 0; i < width; ++i) {
      colour(out, true, colours.at<cv::Vec3b>(0, i), mode);
      out << "\u2588";
    }
    out << "\x1b[0m";
  }
  out << " high";
  return out.str();
}

}  // namespace medattn::report
