#include "report/heatmap_files.h"

#include <algorithm>
#include <filesystem>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "report/terminal.h"

namespace medattn::report {

std::string overlay_caption(const std::vector<std::string>& classes, const std::vector<double>& p, int best, int target,
                            const std::string& method, const std::string& abstained) {
  std::string caption = (abstained.empty() ? "" : "ABSTAINED; model said ") + classes[best] + " " +
                        explain::format_probability(p[best]) + " [" + method + "]";
  if (target >= 0 && target != best) {
    caption += "\nmap for target " + classes[target] + " (p " + explain::format_probability(p[target]) + ")";
  } else if (target >= 0) {
    caption += "\nmap for target " + classes[target];
  }
  return caption;
}

void write_map_outputs(const MapOutputs& in, DiagnosisRecord& r) {
  // The display was kept in 8 bits, which make_overlay takes as they are (no float copy).
  const cv::Mat& display = in.display;
  const cv::Mat heat = preprocess::map_to_original(in.map, in.letterbox, in.size);
  r.attention_regions = attention_regions(heat);
  const cv::Mat shown_heat =  // what the overlay draws: the signed map for contrast
      in.signed_map.empty() ? heat : preprocess::map_to_original(in.signed_map, in.letterbox, in.size);
  explain::OverlayOptions plain = in.look;  // previews and thumbnails are too small for text
  plain.caption.clear();
  plain.legend = false;
  if (in.preview || in.thumbnail_size > 0) {
    const cv::Mat overlay = explain::make_overlay(display, shown_heat, plain);
    if (in.preview) {
      r.preview = overlay;
      r.preview_heat = heat;
    }
    if (in.thumbnail_size > 0) {
      const double scale = static_cast<double>(in.thumbnail_size) / std::max(overlay.cols, overlay.rows);
      if (scale < 1.0) {
        cv::resize(overlay, r.thumbnail, cv::Size(), scale, scale, cv::INTER_AREA);
      } else {
        r.thumbnail = overlay;
      }
    }
  }
  if (in.dicom != nullptr) {
    try {
      const auto written = in.dicom->write(in.source, in.dicom_stem,
                                           explain::burn_caption(explain::make_overlay(display, shown_heat, plain), in.look.caption), r);
      r.dicom_sc = written.sc;
      r.dicom_sr = written.sr;
    } catch (const Error& e) {
      r.ok = false;
      r.error = e.what();
    }
  }
  if (in.stem.empty()) return;
  // A heatmap that cannot be written keeps the diagnosis: the record says why in its
  // warning (in.not_written), and --resume retries it when the cause was transient.
  try {
    explain::write_png(in.stem + ".heatmap.png", explain::make_overlay(display, shown_heat, in.look), in.png_compression);
    try {
      explain::write_png(in.stem + ".heatmap-raw.png", explain::heatmap_to_u16(heat), in.png_compression);
    } catch (const Error&) {
      std::error_code ec;
      std::filesystem::remove(in.stem + ".heatmap.png", ec);  // both maps or neither
      throw;
    }
    r.heatmap = in.stem + ".heatmap.png";
    r.heatmap_raw = in.stem + ".heatmap-raw.png";
  } catch (const Error& e) {
    r.warning += (r.warning.empty() ? "" : "; ") + in.not_written + e.what();
  }
}

}  // namespace medattn::report
