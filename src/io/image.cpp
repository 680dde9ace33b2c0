// read_image() dispatch through the input-format registry (io/formats.h), the OpenCV reader
// (PNG, JPEG, TIFF, BMP) and to_display().
#include "io/image.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/bounded_io.h"
#include "core/error.h"
#include "io/format_raster.h"
#include "io/formats.h"
#include "io/jpeg.h"

namespace medattn::io {
namespace {

// Reads the whole file (at most `max_bytes`). Throws kIOError when it cannot be read.
std::vector<unsigned char> read_bytes(const std::string& path, const std::string& what, int64_t max_bytes) {
  const std::string s = read_file_bounded(path, ErrorKind::kIOError, what, static_cast<uint64_t>(max_bytes));
  return std::vector<unsigned char>(s.begin(), s.end());
}

// The longer side reduced to `max_side` (area averaging), else `m` itself.
cv::Mat reduce_to(const cv::Mat& m, int max_side) {
  const int longer = std::max(m.cols, m.rows);
  if (max_side <= 0 || longer <= max_side) return m;
  const double scale = static_cast<double>(max_side) / longer;
  const cv::Size size(std::max(1, static_cast<int>(std::lround(m.cols * scale))),
                      std::max(1, static_cast<int>(std::lround(m.rows * scale))));
  cv::Mat out;
  cv::resize(m, out, size, 0, 0, cv::INTER_AREA);
  return out;
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
uint32_t le32(const unsigned char* p) {
  return p[0] | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

enum class Completeness { kComplete, kTruncated, kMalformed, kBadChecksum };

// Walks the JPEG marker structure (skipping segments by their length, so that an EXIF
// thumbnail's EOI is not mistaken for the end) and the entropy-coded data after each SOS,
// until the top-level EOI marker. Running out of bytes first means the file was cut.
Completeness jpeg_completeness(const std::vector<unsigned char>& b) {
  const size_t n = b.size();
  size_t i = 2;  // after SOI
  while (true) {
    if (i >= n) return Completeness::kTruncated;
    if (b[i] != 0xFF) return Completeness::kMalformed;
    while (i < n && b[i] == 0xFF) ++i;  // fill bytes
    if (i >= n) return Completeness::kTruncated;
    const unsigned char marker = b[i++];
    if (marker == 0xD9) return Completeness::kComplete;                  // EOI
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no length
    if (marker == 0x00) return Completeness::kMalformed;
    if (i + 2 > n) return Completeness::kTruncated;
    const size_t length = (size_t(b[i]) << 8) | b[i + 1];
    if (length < 2) return Completeness::kMalformed;
    i += length;
    if (i > n) return Completeness::kTruncated;
    if (marker != 0xDA) continue;  // not SOS
    // Entropy-coded data: ends at an FF that is not stuffing (FF00), a restart marker
    // (FFD0-FFD7) or fill (FFFF).
    while (true) {
      while (i < n && b[i] != 0xFF) ++i;
      if (i + 1 >= n) return Completeness::kTruncated;
      size_t j = i + 1;
      while (j < n && b[j] == 0xFF) ++j;
      if (j >= n) return Completeness::kTruncated;
      if (b[j] == 0x00 || (b[j] >= 0xD0 && b[j] <= 0xD7)) {
        i = j + 1;
        continue;
      }
      i = j - 1;  // the FF before the marker
      break;
    }
  }
}

// Walks the PNG chunks after the signature until IEND, checking each chunk's CRC (libpng
// would report a bad one on stderr; `bad_chunk` names it).
Completeness png_completeness(const std::vector<unsigned char>& b, std::string* bad_chunk) {
  const size_t n = b.size();
  size_t i = 8;
  while (true) {
    if (i + 8 > n) return Completeness::kTruncated;
    const uint32_t length = be32(&b[i]);
    if (length > 0x7FFFFFFFu) return Completeness::kMalformed;
    const bool iend = std::memcmp(&b[i + 4], "IEND", 4) == 0;
    const size_t next = i + 12 + length;
    if (next > n) return Completeness::kTruncated;
    const uLong crc = crc32(crc32(0L, Z_NULL, 0), &b[i + 4], static_cast<uInt>(length + 4));
    if (crc != be32(&b[i + 8 + length])) {
      bad_chunk->assign(reinterpret_cast<const char*>(&b[i + 4]), 4);
      return Completeness::kBadChecksum;
    }
    if (iend) return Completeness::kComplete;
    i = next;
  }
}

// Uncompressed BMPs must hold every row the header announces.
Completeness bmp_completeness(const std::vector<unsigned char>& b) {
  const size_t n = b.size();
  if (n < 34) return Completeness::kTruncated;
  const uint32_t dib = le32(&b[14]);
  if (dib < 40) return Completeness::kComplete;  // OS/2 headers: left to the decoder
  const uint32_t offset = le32(&b[10]);
  const int64_t width = static_cast<int32_t>(le32(&b[18]));
  const int64_t height = static_cast<int32_t>(le32(&b[22]));
  const int bpp = b[28] | (b[29] << 8);
  const uint32_t compression = le32(&b[30]);
  if (compression != 0 && compression != 3) return Completeness::kComplete;  // RLE
  if (width <= 0 || height == 0 || bpp <= 0) return Completeness::kMalformed;
  const uint64_t stride = ((uint64_t(width) * uint64_t(bpp) + 31) / 32) * 4;
  const uint64_t rows = static_cast<uint64_t>(height < 0 ? -height : height);
  return uint64_t(offset) + stride * rows <= n ? Completeness::kComplete : Completeness::kTruncated;
}

}  // namespace

void check_pixel_limit(int64_t width, int64_t height, const ReadOptions& options, const std::string& what,
                       const std::string& path) {
  if (width <= 0 || height <= 0) {
    throw file_error(ErrorKind::kCorruption, what, path,
                     "invalid image size (" + std::to_string(width) + "x" + std::to_string(height) + ")");
  }
  const double pixels = static_cast<double>(width) * static_cast<double>(height);
  if (pixels > static_cast<double>(options.max_pixels)) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "image too large (%lldx%lld = %.1f megapixels, limit %.1f; see --max-pixels)",
                  static_cast<long long>(width), static_cast<long long>(height), pixels / 1e6,
                  static_cast<double>(options.max_pixels) / 1e6);
    throw file_error(ErrorKind::kUnsupported, what, path, buf);
  }
}

Image read_image(const std::string& path, const ReadOptions& options) {
  const std::string what = "cannot read image";
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status))
    throw file_error(ErrorKind::kNotFound, what, path, "no such file");
  if (std::filesystem::is_directory(status))
    throw file_error(ErrorKind::kInvalidArgument, what, path, "is a directory");
  // A FIFO would block the open and a device such as /dev/zero never ends: refused unopened.
  if (!std::filesystem::is_regular_file(status)) {
    const std::string kind = special_file_kind(path);
    throw file_error(ErrorKind::kInvalidArgument, what, path,
                     "not a regular file" + (kind.empty() || kind == "not a regular file" ? std::string() : " (" + kind + ")"));
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && static_cast<int64_t>(size) > options.max_file_bytes) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "file too large (%.1f MB, limit %.1f MB; see --max-file-size)", size / 1048576.0,
                  options.max_file_bytes / 1048576.0);
    throw file_error(ErrorKind::kUnsupported, what, path, buf);
  }
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw file_error(ErrorKind::kIOError, what, path, std::strerror(errno));
    if (in.peek() == std::ifstream::traits_type::eof())
      throw file_error(ErrorKind::kCorruption, what, path, "file is empty");
  }
  const FileFormat format = sniff_format(path);
  const InputFormat* row = find_input_format(format);
  if (row == nullptr) {
    throw file_error(ErrorKind::kUnsupported, what, path,
                     "not a supported image (unknown format; supported: " + supported_formats() + ")");
  }
  if (row->read == nullptr) throw file_error(ErrorKind::kUnsupported, what, path, row->refusal);
  if (row->check_header != nullptr) row->check_header(path, format, options);
  Image image = row->read(path, format, options);
  // Readers that decode at full size (DICOM, NIfTI) are reduced here; read_opencv_image
  // reduces before converting to float. The window stays the one of the full-resolution values.
  if (image.width == 0) {
    image.width = image.pixels.cols;
    image.height = image.pixels.rows;
  }
  image.pixels = reduce_to(image.pixels, options.max_side);
  return image;
}

Image read_opencv_image(const std::string& path, FileFormat format, const ReadOptions& options) {
  const std::string what = std::string("cannot read ") + display_name(format);
  std::vector<unsigned char> bytes = read_bytes(path, what, options.max_file_bytes);
  if (bytes.empty()) throw file_error(ErrorKind::kCorruption, what, path, "file is empty");
  // What the header claims, before anything is decoded or checked further.
  const auto [claimed_w, claimed_h] = raster_header_size(bytes, format);
  if (claimed_w != 0 || claimed_h != 0) check_pixel_limit(claimed_w, claimed_h, options, what, path);

  // libjpeg only warns about a cut file and OpenCV then returns an image padded with grey:
  // check that the stream is complete before decoding.
  Completeness completeness = Completeness::kComplete;
  std::string bad_chunk;
  if (format == FileFormat::kJpeg) completeness = jpeg_completeness(bytes);
  if (format == FileFormat::kPng) completeness = png_completeness(bytes, &bad_chunk);
  if (format == FileFormat::kBmp) completeness = bmp_completeness(bytes);
  if (completeness == Completeness::kTruncated)
    throw file_error(ErrorKind::kCorruption, what, path, "truncated (no end-of-image marker)");
  if (completeness == Completeness::kBadChecksum)
    throw file_error(ErrorKind::kCorruption, what, path,
                     "corrupt data (CRC error in " + bad_chunk + " chunk)");

  cv::Mat raw;
  if (format == FileFormat::kJpeg) raw = decode_jpeg(bytes.data(), bytes.size());  // the same pixels, less work
  try {
    if (raw.empty()) raw = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw file_error(ErrorKind::kCorruption, what, path, "decoder failed (" + e.msg + ")");
  }
  if (raw.empty()) throw file_error(ErrorKind::kCorruption, what, path, "decoder failed");
  std::vector<unsigned char>().swap(bytes);  // the file's bytes go before the pixels are converted

  Image image;
  image.format = format;
  switch (raw.depth()) {
    case CV_8U:
    case CV_8S:
      image.bits_stored = 8;
      break;
    case CV_16U:
    case CV_16S:
      image.bits_stored = 16;
      break;
    case CV_32S:
    case CV_32F:
      image.bits_stored = 32;
      break;
    default:
      image.bits_stored = 64;
      break;
  }

  image.width = raw.cols;
  image.height = raw.rows;
  if (options.max_side > 0 && std::max(raw.cols, raw.rows) > options.max_side &&
      (raw.channels() == 1 || raw.channels() == 3 || raw.channels() == 4 || raw.channels() == 2)) {
    // Bounded working size: the channels are chosen and the window measured on the decoded
    // values, then the image is reduced before it becomes float (4 bytes per value).
    cv::Mat chosen;
    if (raw.channels() == 2) {
      cv::extractChannel(raw, chosen, 0);
    } else if (raw.channels() == 4) {
      cv::cvtColor(raw, chosen, cv::COLOR_BGRA2BGR);
    } else {
      chosen = raw;
    }
    const int depth = raw.depth();
    raw.release();
    if (chosen.depth() != CV_8U && chosen.depth() != CV_16U && chosen.depth() != CV_32F) {
      cv::Mat f;
      chosen.convertTo(f, CV_32F);
      chosen = f;
    }
    if (options.window) {
      image.window = *options.window;
    } else if (depth == CV_8U) {
      image.window = window_from_range(0.0, 255.0);
    } else {
      double lo = 0.0, hi = 0.0;
      cv::minMaxLoc(chosen.reshape(1), &lo, &hi);
      image.window = window_from_range(lo, hi);
    }
    const cv::Mat small = reduce_to(chosen, options.max_side);
    chosen.release();
    small.convertTo(image.pixels, CV_32F);
    return image;
  }

  cv::Mat converted;
  raw.convertTo(converted, CV_32F);  // keeps the values: 16-bit stays 0..65535
  switch (converted.channels()) {
    case 1:
      image.pixels = converted;
      break;
    case 2:
      cv::extractChannel(converted, image.pixels, 0);
      break;  // grey + alpha
    case 3:
      image.pixels = converted;
      break;
    case 4:
      cv::cvtColor(converted, image.pixels, cv::COLOR_BGRA2BGR);
      break;
    default:
      throw file_error(ErrorKind::kUnsupported, what, path,
                       "unsupported channel count (got " + std::to_string(converted.channels()) +
                           ", expected 1 to 4)");
  }

  if (options.window) {
    image.window = *options.window;
  } else if (raw.depth() == CV_8U) {
    image.window = window_from_range(0.0, 255.0);
  } else {
    double lo = 0.0, hi = 0.0;
    cv::minMaxLoc(image.pixels.reshape(1), &lo, &hi);
    image.window = window_from_range(lo, hi);
  }
  return image;
}

namespace {

// The VOI function of one value with apply_window's own arithmetic (c: center - 0.5, w: width
// - 1, lo/hi: the window's edges), so that the display is exactly the documented function (a
// vectorised float version differs at the window edges).
inline float window_value(double v, double c, double w, double lo, double hi, bool invert) {
  double d;
  if (w <= 0.0) {
    d = v > c ? 1.0 : 0.0;
  } else if (v <= lo) {
    d = 0.0;
  } else if (v > hi) {
    d = 1.0;
  } else {
    d = std::clamp((v - c) / w + 0.5, 0.0, 1.0);
  }
  return static_cast<float>(invert ? 1.0 - d : d);
}

}  // namespace

cv::Mat to_display(const Image& image) {
  CV_Assert(image.pixels.depth() == CV_32F);
  const double c = image.window.center - 0.5;
  const double w = image.window.width - 1.0;
  const double lo = c - w / 2.0;
  const double hi = c + w / 2.0;
  const bool invert = image.invert;
  if (image.bits_stored == 8 && !image.pixels.empty()) {
    // 8-bit content (every value an integer in 0..255: JPEG, 8-bit PNG): the same function
    // through a table of its 256 values, with vectorised OpenCV operations. Exact.
    cv::Mat u8, back;
    image.pixels.convertTo(u8, CV_8U);
    u8.convertTo(back, CV_32F);
    if (cv::norm(back, image.pixels, cv::NORM_INF) == 0.0) {  // NaN makes the norm NaN
      cv::Mat lut(1, 256, CV_32FC1);
      for (int i = 0; i < 256; ++i) lut.at<float>(i) = window_value(i, c, w, lo, hi, invert);
      cv::Mat out;
      cv::LUT(u8, lut, out);
      return out;
    }
  }
  cv::Mat out(image.pixels.size(), image.pixels.type());
  const int rows = image.pixels.rows;
  const int cols = image.pixels.cols * image.pixels.channels();
  for (int r = 0; r < rows; ++r) {
    const float* src = image.pixels.ptr<float>(r);
    float* dst = out.ptr<float>(r);
    for (int i = 0; i < cols; ++i) dst[i] = window_value(src[i], c, w, lo, hi, invert);
  }
  return out;
}

}  // namespace medattn::io
