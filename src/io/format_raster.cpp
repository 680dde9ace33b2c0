// The registry rows of the formats OpenCV decodes (PNG, JPEG, TIFF, BMP) and of JPEG 2000
// (recognised, refused): content tests, header checks and sample files. Their reader is
// read_opencv_image() (io/image.cpp).
#include "io/format_raster.h"

#include <opencv2/imgcodecs.hpp>

#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <system_error>

#include "core/bounded_io.h"
#include "core/error.h"
#include "io/formats.h"

namespace medattn::io {
namespace {

bool starts_with(const std::vector<unsigned char>& bytes, std::initializer_list<int> magic, size_t offset = 0) {
  if (bytes.size() < offset + magic.size()) return false;
  size_t i = offset;
  for (int m : magic) {
    if (bytes[i++] != static_cast<unsigned char>(m)) return false;
  }
  return true;
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
uint32_t le32(const unsigned char* p) {
  return p[0] | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
uint16_t be16(const unsigned char* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// The most bytes a file of this format can need for width x height pixels, before
// kMaxExtraFileBytes of metadata: 16-bit RGBA for PNG, 4 bytes per pixel-channel for the
// rest; 0 when unknown (TIFF may hold several pages).
double raw_bytes_bound(FileFormat format, int64_t width, int64_t height) {
  const double pixels = static_cast<double>(width) * static_cast<double>(height);
  switch (format) {
    case FileFormat::kPng: return pixels * 8.0 + static_cast<double>(height);  // + a filter byte per row
    case FileFormat::kJpeg: return pixels * 4.0 * 2.0;  // 4 components, up to 2 bytes each
    case FileFormat::kBmp: return pixels * 4.0 + 4.0 * static_cast<double>(height) + 1024.0 * 4.0;
    default: return 0.0;
  }
}

bool sniff_png(const std::vector<unsigned char>& head, const std::string&) {
  return starts_with(head, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A});
}
bool sniff_jpeg(const std::vector<unsigned char>& head, const std::string&) { return starts_with(head, {0xFF, 0xD8, 0xFF}); }
bool sniff_tiff(const std::vector<unsigned char>& head, const std::string&) {
  return starts_with(head, {'I', 'I', 0x2A, 0x00}) || starts_with(head, {'M', 'M', 0x00, 0x2A}) ||
         starts_with(head, {'I', 'I', 0x2B, 0x00}) || starts_with(head, {'M', 'M', 0x00, 0x2B});
}
// "BM" is a weak magic, so a plausible DIB header size is required too.
bool sniff_bmp(const std::vector<unsigned char>& head, const std::string&) {
  if (!starts_with(head, {'B', 'M'}) || head.size() < 18) return false;
  const uint32_t dib = le32(&head[14]);
  return dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 || dib == 124;
}
bool sniff_jpeg2000(const std::vector<unsigned char>& head, const std::string&) {
  return starts_with(head, {0x00, 0x00, 0x00, 0x0C, 'j', 'P', ' ', ' '}) || starts_with(head, {0xFF, 0x4F, 0xFF, 0x51});
}

// A 16x16 ramp (16-bit for PNG and TIFF, so that the deep path is seeded too).
void write_ramp(const std::string& path, bool deep) {
  cv::Mat m(16, 16, deep ? CV_16UC1 : CV_8UC1);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      if (deep) m.at<uint16_t>(y, x) = static_cast<uint16_t>(4000 * y + x);
      else m.at<uint8_t>(y, x) = static_cast<uint8_t>(16 * x + y);
    }
  }
  if (!cv::imwrite(path, m)) throw file_error(ErrorKind::kIOError, "cannot write", path, "OpenCV could not encode it");
}

Image read_raster(const std::string& path, FileFormat format, const ReadOptions& options) {
  return read_opencv_image(path, format, options);
}

}  // namespace

std::pair<int64_t, int64_t> raster_header_size(const std::vector<unsigned char>& b, FileFormat format) {
  const size_t n = b.size();
  switch (format) {
    case FileFormat::kPng:
      if (n >= 24 && std::memcmp(&b[12], "IHDR", 4) == 0) return {be32(&b[16]), be32(&b[20])};
      break;
    case FileFormat::kBmp:
      if (n >= 26) {
        const int64_t h = static_cast<int32_t>(le32(&b[22]));
        return {static_cast<int32_t>(le32(&b[18])), h < 0 ? -h : h};
      }
      break;
    case FileFormat::kJpeg: {
      size_t i = 2;
      while (i + 4 <= n && b[i] == 0xFF) {
        const unsigned char m = b[i + 1];
        if (m == 0xFF) { ++i; continue; }
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { i += 2; continue; }
        const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (sof && i + 9 <= n) return {be16(&b[i + 7]), be16(&b[i + 5])};
        if (m == 0xDA || m == 0xD9) break;
        i += 2 + be16(&b[i + 2]);
      }
      break;
    }
    case FileFormat::kTiff: {
      if (n < 8) break;
      const bool le = b[0] == 'I';
      auto u16 = [&](size_t o) -> uint32_t { return le ? (b[o] | (b[o + 1] << 8)) : be16(&b[o]); };
      auto u32 = [&](size_t o) -> uint32_t { return le ? le32(&b[o]) : be32(&b[o]); };
      const size_t ifd = u32(4);
      if (ifd + 2 > n) break;
      const uint32_t entries = u16(ifd);
      int64_t w = 0, h = 0;
      for (uint32_t e = 0; e < entries && ifd + 2 + 12 * (e + 1) <= n; ++e) {
        const size_t at = ifd + 2 + 12 * e;
        const uint32_t tag = u16(at), type = u16(at + 2);
        const int64_t value = type == 3 ? u16(at + 8) : u32(at + 8);  // SHORT or LONG
        if (tag == 256) w = value;
        if (tag == 257) h = value;
      }
      return {w, h};
    }
    default:
      break;
  }
  return {0, 0};
}

void check_raster_header(const std::string& path, FileFormat format, const ReadOptions& options) {
  const std::string what = std::string("cannot read ") + display_name(format);
  const std::string head = read_prefix(path, ErrorKind::kIOError, what, 256 * 1024);
  const std::vector<unsigned char> prefix(head.begin(), head.end());
  const auto [w, h] = raster_header_size(prefix, format);
  if (w == 0 && h == 0) return;
  check_pixel_limit(w, h, options, what, path);
  const double bound = raw_bytes_bound(format, w, h);
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && bound > 0 && static_cast<double>(size) > bound + static_cast<double>(kMaxExtraFileBytes)) {
    throw file_error(ErrorKind::kCorruption, what, path,
                     "file too large for its header (" + megabytes(size) + " for " + std::to_string(w) + "x" +
                         std::to_string(h) + " pixels; at most " +
                         megabytes(static_cast<uint64_t>(bound) + kMaxExtraFileBytes) + ")");
  }
}

InputFormat png_format() {
  return {FileFormat::kPng, "png", "PNG", {".png"}, sniff_png, check_raster_header, read_raster, "",
          [](const std::string& path) { write_ramp(path, /*deep=*/true); }};
}
InputFormat jpeg_format() {
  return {FileFormat::kJpeg, "jpeg", "JPEG", {".jpg", ".jpeg"}, sniff_jpeg, check_raster_header, read_raster, "",
          [](const std::string& path) { write_ramp(path, /*deep=*/false); }};
}
InputFormat tiff_format() {
  return {FileFormat::kTiff, "tiff", "TIFF", {".tif", ".tiff"}, sniff_tiff, check_raster_header, read_raster, "",
          [](const std::string& path) { write_ramp(path, /*deep=*/true); }};
}
InputFormat bmp_format() {
  return {FileFormat::kBmp, "bmp", "BMP", {".bmp"}, sniff_bmp, check_raster_header, read_raster, "",
          [](const std::string& path) { write_ramp(path, /*deep=*/false); }};
}
InputFormat jpeg2000_format() {
  return {FileFormat::kJpeg2000, "jp2", "JPEG 2000", {}, sniff_jpeg2000, nullptr, nullptr,
          "JPEG 2000 is not supported by this build", nullptr};
}

}  // namespace medattn::io
