// What diagnose makes of one image's heatmap once the model has run: the map at the image's
// size, the attention regions of the record, the preview and thumbnail attached to it, the
// DICOM Secondary Capture and the heatmap PNGs. Runs on diagnose's encoding thread.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "explain/overlay.h"
#include "preprocess/preprocess.h"
#include "report/dicom_out.h"
#include "report/record.h"

namespace medattn::report {

struct MapOutputs {
  cv::Mat display;           // the windowed original in 8 bits (CV_8UC1 or CV_8UC3), as decoded
  cv::Mat map;               // CV_32FC1 size x size over the model input, in [0,1]
  cv::Mat signed_map;        // CV_32FC1 size x size in [-1,1] (contrast), else empty
  preprocess::Letterbox letterbox;
  int size = 0;              // the model input's side
  explain::OverlayOptions look;  // of the heatmap file (caption, legend, contour); `diverging` with a signed map
  bool preview = false;      // attach the overlay and the map to the record
  int thumbnail_size = 0;    // > 0: attach a thumbnail this many pixels on its long side
  std::string stem;          // heatmap files' path without suffix; empty: none written
  std::string not_written = "heatmap not written: ";  // r.warning's prefix when they cannot be
  int png_compression = -1;  // zlib level of the heatmap PNGs (0-9); < 0: the fast default (explain/png.h)
  // --dicom-out: the writer, the input it came from and the output path without suffix.
  DicomWriter* dicom = nullptr;
  std::string source, dicom_stem;
};

// The overlay's caption: the answer (p: the probabilities, best: the diagnosis), the method,
// and for a target (>= 0) the class the map is for; "ABSTAINED; model said ..." when abstained.
std::string overlay_caption(const std::vector<std::string>& classes, const std::vector<double>& p, int best, int target,
                            const std::string& method, const std::string& abstained);

// Fills r.attention_regions (and r.preview, r.preview_heat, r.thumbnail as asked), writes the
// DICOM objects (r.dicom_sc, r.dicom_sr; a failure is the record's error) and the heatmap files
// `<stem>.heatmap.png` and `<stem>.heatmap-raw.png` atomically, both or neither (r.heatmap,
// r.heatmap_raw; a failure keeps the diagnosis and says why in r.warning).
void write_map_outputs(const MapOutputs& in, DiagnosisRecord& r);

}  // namespace medattn::report
