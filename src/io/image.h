// Reading medical images of any supported format into one representation.
//
// The reader is chosen by the file's content (magic bytes), never by its extension.
// Pixel values are kept in their stored or physical units (DICOM: after rescale
// slope/intercept, e.g. Hounsfield units; 16-bit PNG: 0..65535) as float, together with the
// display window that maps them to [0,1]. Windowing happens only in to_display().
#pragma once

#include <opencv2/core.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "io/patient_age.h"

namespace medattn::io {

enum class FileFormat { kUnknown, kPng, kJpeg, kTiff, kBmp, kDicom, kNifti, kNiftiGz, kJpeg2000 };

// Short lower-case name: "png", "jpeg", "tiff", "bmp", "dicom", "nifti", "nifti.gz", "jp2",
// "unknown".
const char* format_name(FileFormat format);

// Looks at the first bytes of the file (and, for gzip, at the decompressed NIfTI header).
// Returns kUnknown for files that are not a supported image, empty files and files that
// cannot be opened. Never throws.
FileFormat sniff_format(const std::string& path);

// A VOI window in the DICOM sense (PS3.3 C.11.2.1.2.1, linear function):
// v <= c - 0.5 - (w-1)/2 -> 0, v > c - 0.5 + (w-1)/2 -> 1, else ((v - (c-0.5)) / (w-1) + 0.5).
struct Window {
  double center = 0.5;
  double width = 1.0;
};

// The window that maps [lo, hi] exactly onto [0, 1] (lo -> 0, hi -> 1).
Window window_from_range(double lo, double hi);

// Applies `window` to one value; returns a value in [0, 1].
double apply_window(double value, const Window& window);

struct ReadOptions {
  int frame = 0;                 // DICOM multi-frame: which frame (0-based)
  int slice = -1;                // NIfTI 3D: which axial slice (0-based); -1 = the middle one
  std::optional<Window> window;  // overrides the window found in the file
  // Limits, checked from the headers before anything large is allocated, so that a hostile
  // or broken file claiming 60000x60000 pixels is refused at once.
  int64_t max_pixels = 100'000'000;     // per image, DICOM frame or NIfTI slice (--max-pixels)
  int64_t max_file_bytes = 2LL << 30;   // file size (--max-file-size, in MB on the command line)
  int64_t max_frames = 4096;            // DICOM Number of Frames; NIfTI: slices x volumes (--max-frames)
  // > 0: an image whose longer side exceeds this is reduced (area averaging) to this size as
  // soon as it is decoded, so that everything after the decoder works at a bounded size;
  // its window is still taken from the full-resolution values. 0: never reduced.
  int max_side = 0;
};

// What a file in a supported format may weigh beyond its raw pixels before it is refused
// from its header (a PNG or JPEG cannot hold much more than its pixels; a bigger file is
// padding or a decompression bomb, and would otherwise be read whole before being refused).
inline constexpr int64_t kMaxExtraFileBytes = int64_t{64} << 20;

// Throws medattn::Error(kUnsupported) "<what> '<path>': image too large (WxH = N megapixels,
// limit M; see --max-pixels)" when width * height exceeds options.max_pixels (or either side
// is not positive: kCorruption).
void check_pixel_limit(int64_t width, int64_t height, const ReadOptions& options, const std::string& what,
                       const std::string& path);

struct Image {
  // CV_32FC1 (grey) or CV_32FC3 (colour, BGR order as in OpenCV), in stored/physical units.
  cv::Mat pixels;
  // Maps `pixels` to display [0,1]: from ReadOptions::window, else the file's own
  // (DICOM first Window Center/Width; 8-bit images 0..255), else min-max of the pixels.
  Window window;
  // True for DICOM MONOCHROME1 (low values are white): to_display() inverts after windowing.
  bool invert = false;
  FileFormat format = FileFormat::kUnknown;
  int bits_stored = 8;  // 8, 12, 16, 32 (float NIfTI) ...
  std::string modality; // DICOM Modality (CT, MR, ...) when known, else empty
  std::string body_part; // DICOM BodyPartExamined (CHEST, HEAD, ...) when present, else empty
  // DICOM PatientAge, or PatientBirthDate against the study's date, when the file says (io/patient_age.h).
  std::optional<PatientAge> patient_age;
  // The size in the file; differs from `pixels` when ReadOptions::max_side reduced it.
  int width = 0, height = 0;
};

// Reads `path` as an image of whatever supported format its content shows.
// Throws medattn::Error with a message "cannot read <FORMAT> '<path>': <why>" on an
// unreadable, truncated, empty, unsupported or out-of-range (frame/slice) file.
Image read_image(const std::string& path, const ReadOptions& options = {});

// Format-specific readers; read_image() dispatches to them. Same error contract.
Image read_opencv_image(const std::string& path, FileFormat format, const ReadOptions& options);
Image read_dicom(const std::string& path, const ReadOptions& options);
Image read_nifti(const std::string& path, const ReadOptions& options);

// Returns the windowed image: CV_32FC1 or CV_32FC3 with values in [0,1], inverted for
// MONOCHROME1. Same channel count as image.pixels.
cv::Mat to_display(const Image& image);

}  // namespace medattn::io
