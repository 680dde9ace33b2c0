// Showing results in a terminal: the heatmap overlay drawn with Unicode half-blocks, a colour
// legend, and where the heatmap's mass lies in words.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <utility>
#include <vector>

namespace medattn::report {

// Shares of the heatmap's total mass in the cells of a 3x3 grid over the image, in reading
// order: "upper left", "upper middle", "upper right", "middle left", "centre", "middle right",
// "lower left", "lower middle", "lower right" (left/right as the image is shown, not the
// patient's side). Shares sum to 1; a map without mass gives all zeros.
// heatmap: CV_32FC1, values >= 0.
std::vector<std::pair<std::string, double>> attention_regions(const cv::Mat& heatmap);

// "map regions: 61% lower right, 22% middle right": the cells holding at least 10% of the mass,
// largest first, at most three; percentages rounded to whole numbers.
std::string region_summary(const std::vector<std::pair<std::string, double>>& regions);

enum class ColourMode { kTrueColour, k256, kAscii };

// The colour mode a terminal supports: kTrueColour when COLORTERM is "truecolor" or
// "24bit", else k256.
ColourMode detect_colour_mode();

// Draws `bgr` (CV_8UC3) `width` characters wide, two pixel rows per text row (upper half
// block U+2580: foreground = upper pixel, background = lower pixel), each line ending with a
// reset. kAscii draws one character per cell from " .:-=+*#%@" by brightness instead.
// At most 64 text rows: a taller picture is drawn narrower (aspect kept, at least 1x1).
std::string render_halfblocks(const cv::Mat& bgr, int width, ColourMode mode);

// The heatmap itself (CV_32FC1 in [0,1]) in ASCII shades " .:-=+*#%@" (low to high), `width`
// characters wide, one character per 1x2 pixels: what --ascii shows, since plain text has no
// colour to blend the map into the image. At most 64 rows, like render_halfblocks.
std::string render_ascii_heat(const cv::Mat& heatmap, int width);

// "low ████████ high" in the heatmap's colour map (plain "low .:-=+*#%@ high" for kAscii).
std::string legend_line(ColourMode mode, int width = 24);

// xterm-256 colour index (16..255: the 6x6x6 cube or the grey ramp) nearest to an RGB colour in
// CIE L*a*b*, so that the steps of a colour map keep their order.
int xterm256(int r, int g, int b);

}  // namespace medattn::report
