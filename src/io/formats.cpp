// Content sniffing and VOI windowing: the parts of io/image.h that every reader shares.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <fstream>

#include "core/bounded_io.h"
#include "io/image.h"

namespace medattn::io {
namespace {

bool starts_with(const std::vector<unsigned char>& bytes, std::initializer_list<int> magic,
                 size_t offset = 0) {
  if (bytes.size() < offset + magic.size()) return false;
  size_t i = offset;
  for (int m : magic) {
    if (bytes[i++] != static_cast<unsigned char>(m)) return false;
  }
  return true;
}

// A NIfTI-1 header is 348 bytes, announced by sizeof_hdr == 348 in either byte order, with
// magic "n+1\0" (single file) at byte 344. NIfTI-2: 540 and "n+2\0" at byte 4.
bool is_nifti_header(const std::vector<unsigned char>& h) {
  if (h.size() >= 348) {
    int32_t le = h[0] | (h[1] << 8) | (h[2] << 16) | (h[3] << 24);
    int32_t be = h[3] | (h[2] << 8) | (h[1] << 16) | (h[0] << 24);
    if ((le == 348 || be == 348) && std::memcmp(&h[344], "n+1", 4) == 0) return true;
  }
  if (h.size() >= 12) {
    int32_t le = h[0] | (h[1] << 8) | (h[2] << 16) | (h[3] << 24);
    int32_t be = h[3] | (h[2] << 8) | (h[1] << 16) | (h[0] << 24);
    if ((le == 540 || be == 540) && std::memcmp(&h[4], "n+2", 4) == 0) return true;
  }
  return false;
}

// DICOM files without the 128-byte preamble (older or "raw" dumps) start directly with a
// little-endian group 0x0002 or 0x0008 element.
bool looks_like_raw_dicom(const std::vector<unsigned char>& b) {
  if (b.size() < 8) return false;
  const int group = b[0] | (b[1] << 8);
  if (group != 0x0002 && group != 0x0008) return false;
  const int element = b[2] | (b[3] << 8);
  if (element > 0x0100) return false;
  // Explicit VR: two upper-case letters; implicit VR: a 4-byte length that is small.
  const bool explicit_vr = std::isupper(b[4]) && std::isupper(b[5]);
  const uint32_t implicit_len = b[4] | (b[5] << 8) | (b[6] << 16) | (uint32_t(b[7]) << 24);
  return explicit_vr || implicit_len < 1024;
}

}  // namespace

const char* format_name(FileFormat format) {
  switch (format) {
    case FileFormat::kPng: return "png";
    case FileFormat::kJpeg: return "jpeg";
    case FileFormat::kTiff: return "tiff";
    case FileFormat::kBmp: return "bmp";
    case FileFormat::kDicom: return "dicom";
    case FileFormat::kNifti: return "nifti";
    case FileFormat::kNiftiGz: return "nifti.gz";
    case FileFormat::kJpeg2000: return "jp2";
    case FileFormat::kUnknown: break;
  }
  return "unknown";
}

FileFormat sniff_format(const std::string& path) {
  // Only regular files are opened: a FIFO would block, /dev/zero never ends.
  if (!special_file_kind(path).empty()) return FileFormat::kUnknown;
  std::ifstream in(path, std::ios::binary);
  if (!in) return FileFormat::kUnknown;
  std::vector<unsigned char> head(352);
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.empty()) return FileFormat::kUnknown;

  // DICOM first: its 128-byte preamble may itself hold another format's header (pydicom's
  // test files carry a TIFF header there, so that TIFF readers can open them).
  if (starts_with(head, {'D', 'I', 'C', 'M'}, 128)) return FileFormat::kDicom;
  if (starts_with(head, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})) return FileFormat::kPng;
  if (starts_with(head, {0xFF, 0xD8, 0xFF})) return FileFormat::kJpeg;
  if (starts_with(head, {'I', 'I', 0x2A, 0x00}) || starts_with(head, {'M', 'M', 0x00, 0x2A}) ||
      starts_with(head, {'I', 'I', 0x2B, 0x00}) || starts_with(head, {'M', 'M', 0x00, 0x2B}))
    return FileFormat::kTiff;
  if (starts_with(head, {0x00, 0x00, 0x00, 0x0C, 'j', 'P', ' ', ' '}) ||
      starts_with(head, {0xFF, 0x4F, 0xFF, 0x51}))
    return FileFormat::kJpeg2000;
  if (is_nifti_header(head)) return FileFormat::kNifti;
  if (starts_with(head, {0x1F, 0x8B})) {
    gzFile gz = gzopen(path.c_str(), "rb");
    if (gz == nullptr) return FileFormat::kUnknown;
    std::vector<unsigned char> inner(352);
    const int n = gzread(gz, inner.data(), static_cast<unsigned>(inner.size()));
    gzclose(gz);
    if (n <= 0) return FileFormat::kUnknown;
    inner.resize(static_cast<size_t>(n));
    return is_nifti_header(inner) ? FileFormat::kNiftiGz : FileFormat::kUnknown;
  }
  // BMP last: "BM" is a weak magic, so also require a plausible header size field.
  if (starts_with(head, {'B', 'M'}) && head.size() >= 18) {
    const uint32_t dib = head[14] | (head[15] << 8) | (head[16] << 16) | (uint32_t(head[17]) << 24);
    if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 || dib == 124)
      return FileFormat::kBmp;
  }
  if (looks_like_raw_dicom(head)) return FileFormat::kDicom;
  return FileFormat::kUnknown;
}

Window window_from_range(double lo, double hi) {
  if (hi < lo) std::swap(lo, hi);
  // Solve the DICOM linear function for lo -> 0 and hi -> 1: w - 1 = hi - lo, c - 0.5 = mid.
  Window w;
  w.width = (hi - lo) + 1.0;
  w.center = lo + (hi - lo) / 2.0 + 0.5;
  return w;
}

double apply_window(double value, const Window& window) {
  const double c = window.center - 0.5;
  const double w = window.width - 1.0;
  if (w <= 0.0) return value > c ? 1.0 : 0.0;
  if (value <= c - w / 2.0) return 0.0;
  if (value > c + w / 2.0) return 1.0;
  return std::clamp((value - c) / w + 0.5, 0.0, 1.0);
}

}  // namespace medattn::io
