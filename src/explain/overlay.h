// Turning a heatmap into pictures: the overlay a person looks at and the raw map a script
// reads back.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace medattn::explain {

struct OverlayOptions {
  double alpha = 0.5;        // colour opacity at the hottest point; it falls with the heatmap
  // Printed in a strip above the image (never over it), one entry per '\n'-separated line,
  // each wrapped to the canvas width. Empty: no strip.
  std::string caption;
  double contour_top = 0.0;  // > 0: outline the top fraction of the map's pixels (e.g. 0.05)
  bool legend = true;        // a colour bar with values in a strip right of the image
  // The heatmap is signed, in [-1,1] (method "contrast"): evidence for the class in red,
  // against it in blue, opacity alpha * |h|; the legend runs from +1 to -1.
  bool diverging = false;
  std::string legend_title = "relevance";  // above the bar
  std::string legend_note;   // below the bar, e.g. "per image" (how the map was scaled)
  // The image part is enlarged (bilinear) until its shorter side is at least this many
  // pixels, so that small images (64x64 MR, 33x41 NIfTI slices) give a readable overlay.
  // 0: the image's own size. Only when a caption or legend is drawn.
  int min_side = 256;
};

// Where make_overlay() put things, in canvas pixels (for tests and for callers that crop).
struct OverlayLayout {
  cv::Rect image;                  // the overlaid image (scaled)
  cv::Rect caption;                // the caption strip (empty when no caption)
  cv::Rect legend;                 // the legend strip (empty when no legend)
  std::vector<cv::Rect> text;      // every text line's bounding box, all inside the canvas
  double font_scale = 0;
};

// display: the windowed original, CV_32FC1 or CV_32FC3 (BGR) in [0,1], or the same in 8 bits
// (CV_8UC1 or CV_8UC3, 0..255: what the float display rounds to, without its 4 bytes a
// pixel); heatmap: CV_32FC1 in
// [0,1] of the same size ([-1,1] with options.diverging). Returns a CV_8UC3 BGR image: the original (in colour when it has
// three channels, else grey) with the heatmap in the TURBO colour map blended in, weighted by
// alpha * heatmap (cold regions stay the original), and the contour. With a caption or a
// legend the canvas grows: the image part is scaled to at least options.min_side on its
// shorter side, the caption goes in a dark strip above it and the legend (bar, values 0 to 1,
// title and note) in a strip to its right, sized from the text so that nothing is clipped.
// Without either, the result has the image's size. `layout`, when given, receives the places.
cv::Mat make_overlay(const cv::Mat& display, const cv::Mat& heatmap, const OverlayOptions& options = {},
                     OverlayLayout* layout = nullptr);

// The caption burned into `overlay` itself (CV_8UC3), for outputs that must keep the image's
// rows and columns (DICOM Secondary Capture): wrapped to the width, white on a dark band
// across the top, at a font scaled to the image (smaller than make_overlay's for small
// images, never below OpenCV's legible minimum of 0.3). Returns a copy.
cv::Mat burn_caption(const cv::Mat& overlay, const std::string& caption);

// "0.996", ">0.999", "<0.001": a probability in three decimals that never rounds to 1 or 0.
std::string format_probability(double p);

// The threshold above which the top `fraction` of the map's pixels lie.
float top_fraction_threshold(const cv::Mat& heatmap, double fraction);

// Encodes `image` as PNG and writes it atomically. compression: zlib level 0 (none, fastest)
// to 9 (smallest), through OpenCV; < 0: the fast default (encode_png_fast: Up filter, level 1
// with run-length matching; other image types OpenCV's default). The pixels read back the
// same at every level. Throws medattn::Error(kIOError).
void write_png(const std::string& path, const cv::Mat& image, int compression = -1);

// The raw map as a 16-bit grey PNG: value v in [0,1] stored as round(v * 65535).
cv::Mat heatmap_to_u16(const cv::Mat& heatmap);

}  // namespace medattn::explain
