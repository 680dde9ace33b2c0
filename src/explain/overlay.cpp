#include "explain/overlay.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "explain/png.h"

namespace medattn::explain {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kStrip(32, 32, 32);
const cv::Scalar kText(255, 255, 255);

const cv::Vec3f kFor(40, 40, 230);      // BGR red: evidence for the class
const cv::Vec3f kAgainst(230, 120, 30); // BGR blue: evidence against it

// A signed map's colours: red where h > 0, blue where h < 0 (CV_8UC3).
cv::Mat diverging_colours(const cv::Mat& signed_map) {
  cv::Mat out(signed_map.size(), CV_8UC3);
  for (int y = 0; y < signed_map.rows; ++y) {
    const float* h = signed_map.ptr<float>(y);
    auto* o = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < signed_map.cols; ++x) o[x] = h[x] >= 0 ? cv::Vec3b(kFor) : cv::Vec3b(kAgainst);
  }
  return out;
}

// The image with the map blended in, at the image's size. `clipped` in [0,1], or in [-1,1]
// when `diverging`.
cv::Mat blend(const cv::Mat& display, const cv::Mat& clipped, double alpha, bool diverging) {
  cv::Mat base;
  const double to8 = display.depth() == CV_8U ? 1.0 : 255.0;
  if (display.channels() == 3) {
    display.convertTo(base, CV_8UC3, to8);  // colour models: the colours a reader reads
  } else {
    cv::Mat base8;
    display.convertTo(base8, CV_8U, to8);
    cv::cvtColor(base8, base, cv::COLOR_GRAY2BGR);
  }
  cv::Mat colour, weight;
  if (diverging) {
    colour = diverging_colours(clipped);
    weight = cv::abs(clipped) * alpha;
  } else {
    cv::Mat heat8;
    clipped.convertTo(heat8, CV_8U, 255.0);
    cv::applyColorMap(heat8, colour, cv::COLORMAP_TURBO);
    // Per-pixel weight alpha * h: strong evidence shows in colour, the rest stays readable.
    clipped.convertTo(weight, CV_32F, alpha);
  }
  // base * (1 - w) + colour * w per channel, in float and rounded to 8 bits: the operations
  // OpenCV's matrix expressions did (subtract, two products, a sum, convertTo), fused into one
  // pass without float temporaries; the same operations in the same order give the same bits.
  CV_Assert(colour.type() == CV_8UC3 && weight.type() == CV_32FC1 && base.type() == CV_8UC3);
  cv::Mat out(base.size(), CV_8UC3);
  for (int y = 0; y < base.rows; ++y) {
    const uchar* b = base.ptr<uchar>(y);
    const uchar* c = colour.ptr<uchar>(y);
    const float* w = weight.ptr<float>(y);
    uchar* o = out.ptr<uchar>(y);
    for (int x = 0; x < base.cols; ++x) {
      const float wx = w[x], keep = 1.0f - wx;
      for (int k = 3 * x; k < 3 * x + 3; ++k) {
        const float product_base = static_cast<float>(b[k]) * keep;
        const float product_colour = static_cast<float>(c[k]) * wx;
        o[k] = cv::saturate_cast<uchar>(product_base + product_colour);
      }
    }
  }
  return out;
}

struct Font {
  double scale = 0.5;
  int thick = 1;
  int height = 0;   // ascent + descent + thickness of one line
  int ascent = 0;
};

Font font_for(int side) {
  Font f;
  f.scale = std::clamp(side / 560.0, 0.45, 2.0);
  f.thick = f.scale < 0.8 ? 1 : f.scale < 1.5 ? 2 : 3;
  int base = 0;
  const cv::Size s = cv::getTextSize("Ag|]", kFont, f.scale, f.thick, &base);
  f.ascent = s.height + f.thick;
  f.height = s.height + base + 2 * f.thick;
  return f;
}

int text_width(const std::string& text, const Font& f) {
  int base = 0;
  return cv::getTextSize(text, kFont, f.scale, f.thick, &base).width + f.thick + 1;
}

// Greedy word wrap to `width` pixels; a word wider than a line is cut between characters.
std::vector<std::string> wrap(const std::string& caption, int width, const Font& f) {
  std::vector<std::string> lines;
  std::stringstream paragraphs(caption);
  std::string paragraph;
  while (std::getline(paragraphs, paragraph, '\n')) {
    std::stringstream words(paragraph);
    std::string word, line;
    auto flush = [&] {
      if (!line.empty()) lines.push_back(line);
      line.clear();
    };
    while (words >> word) {
      const std::string joined = line.empty() ? word : line + " " + word;
      if (text_width(joined, f) <= width) {
        line = joined;
        continue;
      }
      flush();
      while (text_width(word, f) > width && word.size() > 1) {
        size_t n = word.size() - 1;
        while (n > 1 && text_width(word.substr(0, n), f) > width) --n;
        lines.push_back(word.substr(0, n));
        word = word.substr(n);
      }
      line = word;
    }
    flush();
  }
  return lines;
}

// Draws `text` with its top-left corner at `top_left`; returns its box.
cv::Rect draw_text(cv::Mat& canvas, const std::string& text, cv::Point top_left, const Font& f) {
  cv::putText(canvas, text, cv::Point(top_left.x, top_left.y + f.ascent), kFont, f.scale, kText, f.thick, cv::LINE_AA);
  return cv::Rect(top_left.x, top_left.y, text_width(text, f), f.height);
}

std::string tick(double v, bool diverging) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), diverging && v > 0 ? "+%.0f" : diverging ? "%.0f" : "%.1f", v);
  return buf;
}

}  // namespace

cv::Mat burn_caption(const cv::Mat& overlay, const std::string& caption) {
  cv::Mat out = overlay.clone();
  if (caption.empty() || out.empty()) return out;
  Font f = font_for(std::min(out.cols, out.rows));
  f.scale = std::clamp(std::min(out.cols, out.rows) / 700.0, 0.3, 2.0);
  f.thick = f.scale < 0.8 ? 1 : 2;
  int base = 0;
  const cv::Size s = cv::getTextSize("Ag|]", kFont, f.scale, f.thick, &base);
  f.ascent = s.height + f.thick;
  f.height = s.height + base + 2 * f.thick;
  const int margin = std::max(2, f.height / 4);
  const auto lines = wrap(caption, std::max(1, out.cols - 2 * margin), f);
  const int band = std::min(out.rows, static_cast<int>(lines.size()) * f.height + 2 * margin);
  cv::Mat top = out.rowRange(0, band);
  top.convertTo(top, -1, 0.35, 0);  // darkened, so that the text reads on any image
  for (size_t i = 0; i < lines.size(); ++i) {
    const int y = margin + static_cast<int>(i) * f.height;
    if (y + f.height > out.rows) break;
    draw_text(out, lines[i], cv::Point(margin, y), f);
  }
  return out;
}

std::string format_probability(double p) {
  if (p >= 0.9995) return ">0.999";
  if (p < 0.0005) return "<0.001";
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%.3f", p);
  return buf;
}

float top_fraction_threshold(const cv::Mat& heatmap, double fraction) {
  std::vector<float> values(heatmap.begin<float>(), heatmap.end<float>());
  if (values.empty()) return 1.0f;
  const size_t k = std::min(values.size() - 1, static_cast<size_t>(fraction * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<long>(k), values.end(), std::greater<float>());
  return values[k];
}

cv::Mat make_overlay(const cv::Mat& display, const cv::Mat& heatmap, const OverlayOptions& options, OverlayLayout* layout) {
  CV_Assert(heatmap.type() == CV_32FC1 && display.size() == heatmap.size());
  cv::Mat clipped;
  cv::min(cv::max(heatmap, options.diverging ? -1.0 : 0.0), 1.0, clipped);
  const bool annotated = !options.caption.empty() || options.legend;

  // The image part: enlarged for the annotations when it is small.
  cv::Mat picture = blend(display, clipped, options.alpha, options.diverging);
  cv::Mat heat = clipped;
  const int side0 = std::min(picture.rows, picture.cols);
  if (annotated && options.min_side > 0 && side0 < options.min_side) {
    const double k = static_cast<double>(options.min_side) / side0;
    const cv::Size size(std::max(1, static_cast<int>(picture.cols * k + 0.5)), std::max(1, static_cast<int>(picture.rows * k + 0.5)));
    cv::resize(picture, picture, size, 0, 0, cv::INTER_LINEAR);
    cv::resize(clipped, heat, size, 0, 0, cv::INTER_LINEAR);
  }
  const int side = std::min(picture.rows, picture.cols);
  if (options.contour_top > 0.0) {
    const int thick = std::max(1, side / 300);
    cv::Mat top = heat >= std::max(1e-6f, top_fraction_threshold(heat, options.contour_top));  // the positive part
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(top, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    cv::drawContours(picture, contours, -1, cv::Scalar(255, 255, 255), thick + 1, cv::LINE_AA);
    cv::drawContours(picture, contours, -1, cv::Scalar(0, 0, 0), std::max(1, thick / 2), cv::LINE_AA);
  }
  OverlayLayout where;
  if (!annotated) {
    where.image = cv::Rect(0, 0, picture.cols, picture.rows);
    if (layout) *layout = where;
    return picture;
  }

  const Font f = font_for(side);
  const int m = std::max(4, f.height / 3);  // margin

  // Legend strip: title, bar with ticks 1.0 / 0.5 / 0.0, note.
  int legend_w = 0, legend_h = 0, bar_w = 0;
  if (options.legend) {
    bar_w = std::max(8, f.height);
    const int ticks_w = std::max({text_width("1.0", f), text_width("0.5", f), text_width("0.0", f), text_width("+1", f)});
    legend_w = m + bar_w + m / 2 + ticks_w + m;
    legend_w = std::max(legend_w, 2 * m + text_width(options.legend_title, f));
    if (!options.legend_note.empty()) legend_w = std::max(legend_w, 2 * m + text_width(options.legend_note, f));
    const int note_h = options.legend_note.empty() ? 0 : f.height + m / 2;
    legend_h = m + f.height + m + f.height / 2 + 4 * f.height + f.height / 2 + note_h + m + 2;  // the bar at least four lines tall
  }
  const int body_h = std::max(picture.rows, legend_h);
  const int canvas_w = picture.cols + legend_w;
  std::vector<std::string> lines;
  if (!options.caption.empty()) lines = wrap(options.caption, std::max(1, canvas_w - 2 * m), f);
  const int caption_h = lines.empty() ? 0 : 2 * m + static_cast<int>(lines.size()) * f.height + (static_cast<int>(lines.size()) - 1) * (m / 2);

  cv::Mat canvas(caption_h + body_h, canvas_w, CV_8UC3, kStrip);
  where.image = cv::Rect(0, caption_h, picture.cols, picture.rows);
  picture.copyTo(canvas(where.image));
  where.font_scale = f.scale;
  if (!lines.empty()) {
    where.caption = cv::Rect(0, 0, canvas_w, caption_h);
    int y = m;
    for (const auto& line : lines) {
      where.text.push_back(draw_text(canvas, line, cv::Point(m, y), f));
      y += f.height + m / 2;
    }
  }
  if (options.legend) {
    where.legend = cv::Rect(picture.cols, caption_h, legend_w, body_h);
    const int x0 = picture.cols + m;
    int y = caption_h + m;
    where.text.push_back(draw_text(canvas, options.legend_title, cv::Point(x0, y), f));
    y += f.height + m;
    const int bottom = caption_h + body_h - m;
    const int note_top = bottom - (options.legend_note.empty() ? 0 : f.height);
    const int bar_y = y + f.height / 2;  // room for the top tick's upper half
    const int bar_h = std::max(2, note_top - f.height / 2 - (options.legend_note.empty() ? 0 : m / 2) - bar_y);
    cv::Mat bar;
    if (options.diverging) {
      // +1 (red) at the top through the grey of an unmarked image to -1 (blue) at the bottom.
      bar.create(bar_h, 1, CV_8UC3);
      for (int i = 0; i < bar_h; ++i) {
        const float v = 1.0f - 2.0f * static_cast<float>(i) / std::max(1, bar_h - 1);
        const cv::Vec3f c = v >= 0 ? kFor : kAgainst;
        const float w = std::abs(v);
        bar.at<cv::Vec3b>(i) = cv::Vec3b(cv::Vec3f(128, 128, 128) * (1 - w) + c * w);
      }
    } else {
      cv::Mat ramp(bar_h, 1, CV_8UC1);
      for (int i = 0; i < bar_h; ++i) ramp.at<uint8_t>(i) = static_cast<uint8_t>(255 - (255 * i) / std::max(1, bar_h - 1));
      cv::applyColorMap(ramp, bar, cv::COLORMAP_TURBO);
    }
    cv::resize(bar, bar, cv::Size(bar_w, bar_h), 0, 0, cv::INTER_NEAREST);
    bar.copyTo(canvas(cv::Rect(x0, bar_y, bar_w, bar_h)));
    cv::rectangle(canvas, cv::Rect(x0, bar_y, bar_w, bar_h), cv::Scalar(255, 255, 255), 1);
    const int tx = x0 + bar_w + m / 2;
    for (double v : {1.0, 0.5, 0.0}) {
      const int cy = bar_y + static_cast<int>((1.0 - v) * (bar_h - 1));
      const int ty = std::clamp(cy - f.height / 2, caption_h, caption_h + body_h - f.height);
      const double shown = options.diverging ? 2 * v - 1 : v;  // +1, 0, -1
      where.text.push_back(draw_text(canvas, tick(shown, options.diverging), cv::Point(tx, ty), f));
    }
    if (!options.legend_note.empty()) {
      where.text.push_back(draw_text(canvas, options.legend_note, cv::Point(x0, note_top), f));
    }
  }
  if (layout) *layout = where;
  return canvas;
}

void write_png(const std::string& path, const cv::Mat& image, int compression) {
  if (compression < 0 && fast_png_takes(image)) {
    write_file_atomic(path, encode_png_fast(image), /*sync=*/false);
    return;
  }
  std::vector<uchar> bytes;
  std::vector<int> params;
  if (compression >= 0) params = {cv::IMWRITE_PNG_COMPRESSION, std::min(compression, 9)};
  if (!cv::imencode(".png", image, bytes, params)) {
    throw file_error(ErrorKind::kIOError, "cannot write", path, "PNG encoding failed");
  }
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()), /*sync=*/false);
}

cv::Mat heatmap_to_u16(const cv::Mat& heatmap) {
  cv::Mat clipped, out;
  cv::min(cv::max(heatmap, 0.0), 1.0, clipped);
  clipped.convertTo(out, CV_16U, 65535.0);
  return out;
}

}  // namespace medattn::explain
