// explain/png.h. The format: signature, IHDR, IDAT, IEND, each chunk as length, type, data and
// the CRC-32 of type and data (PNG specification, 2nd edition, sections 5 and 11). Filter and
// compressor were chosen by measurement on the overlays and raw maps of chest X-rays: the Up
// filter with libdeflate at level 1 wrote files 13-22% smaller than OpenCV's default (Sub
// filter, zlib level 1 with run-length matching) in 55-65% of its time (docs/performance.md).
#include "explain/png.h"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "core/error.h"

namespace medattn::explain {
namespace {

void put32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

void chunk(std::string& out, const char type[4], const unsigned char* data, size_t size) {
  put32(out, static_cast<uint32_t>(size));
  const size_t at = out.size();
  out.append(type, 4);
  if (size > 0) out.append(reinterpret_cast<const char*>(data), size);
  put32(out, libdeflate_crc32(0, out.data() + at, size + 4));
}

// One row in PNG byte order: RGB for BGR (unless `rgb`: already in that order), big-endian for
// 16 bits.
void png_row(const cv::Mat& image, int y, unsigned char* out, bool rgb) {
  const unsigned char* src = image.ptr<unsigned char>(y);
  const int n = image.cols;
  if (image.type() == CV_8UC3 && !rgb) {
    for (int x = 0; x < n; ++x) {
      out[3 * x] = src[3 * x + 2];
      out[3 * x + 1] = src[3 * x + 1];
      out[3 * x + 2] = src[3 * x];
    }
  } else if (image.type() == CV_16UC1) {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src);
    for (int x = 0; x < n; ++x) {
      out[2 * x] = static_cast<unsigned char>(s[x] >> 8);
      out[2 * x + 1] = static_cast<unsigned char>(s[x]);
    }
  } else {
    std::memcpy(out, src, static_cast<size_t>(n) * image.elemSize());
  }
}

// Images whose filtered bytes fit in this are compressed whole by libdeflate (about half of
// zlib's time at level 1, and smaller files); larger ones are streamed through zlib, so that a
// 3000x3000 overlay does not need a second full-size copy.
constexpr size_t kWholeBufferBytes = size_t{4} << 20;

// Row y behind its filter-type byte (2: Up, every byte minus the one above it); `above` holds
// the previous row in PNG byte order on entry, this one on return.
void up_filtered_row(const cv::Mat& image, int y, std::vector<unsigned char>& above, std::vector<unsigned char>& row,
                     unsigned char* out, bool rgb = false) {
  png_row(image, y, row.data(), rgb);
  out[0] = 2;
  for (size_t i = 0; i < row.size(); ++i) out[i + 1] = static_cast<unsigned char>(row[i] - above[i]);
  above.swap(row);
}

// The signature and IHDR, then an IDAT of `bound` bytes reserved after its length and type.
// Returns where the IDAT chunk starts.
size_t begin_png(std::string& out, const cv::Mat& image, size_t bound) {
  out.append("\x89PNG\r\n\x1a\n", 8);
  unsigned char header[13];
  const uint32_t w = static_cast<uint32_t>(image.cols), h = static_cast<uint32_t>(image.rows);
  for (int i = 0; i < 4; ++i) {
    header[i] = static_cast<unsigned char>(w >> (24 - 8 * i));
    header[4 + i] = static_cast<unsigned char>(h >> (24 - 8 * i));
  }
  header[8] = image.type() == CV_16UC1 ? 16 : 8;  // bit depth
  header[9] = image.type() == CV_8UC3 ? 2 : 0;    // colour type: truecolour or greyscale
  header[10] = header[11] = header[12] = 0;       // deflate, adaptive filtering, no interlace
  chunk(out, "IHDR", header, sizeof header);
  const size_t idat = out.size();
  out.resize(idat + 8 + bound);
  std::memcpy(&out[idat + 4], "IDAT", 4);
  return idat;
}

// The IDAT holds `size` bytes of zlib stream: its length and CRC, then IEND.
void end_png(std::string& out, size_t idat, size_t size) {
  out.resize(idat + 8 + size);
  for (int i = 0; i < 4; ++i) out[idat + i] = static_cast<char>(static_cast<uint32_t>(size) >> (24 - 8 * i));
  put32(out, libdeflate_crc32(0, &out[idat + 4], size + 4));
  chunk(out, "IEND", nullptr, 0);
}

std::string encode_whole(const cv::Mat& image, size_t row_bytes) {
  struct Free {
    void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
  };
  thread_local std::unique_ptr<libdeflate_compressor, Free> compressor(libdeflate_alloc_compressor(1));
  if (!compressor) throw Error(ErrorKind::kIOError, "libdeflate: cannot allocate a compressor");
  // Small enough for a whole RGB copy, converted by OpenCV's vector code in one call.
  cv::Mat rgb;
  if (image.type() == CV_8UC3) cv::cvtColor(image, rgb, cv::COLOR_BGR2RGB);
  const cv::Mat& pixels = rgb.empty() ? image : rgb;
  std::vector<unsigned char> filtered((row_bytes + 1) * static_cast<size_t>(image.rows));
  std::vector<unsigned char> above(row_bytes, 0), row(row_bytes);
  for (int y = 0; y < image.rows; ++y) {
    up_filtered_row(pixels, y, above, row, &filtered[(row_bytes + 1) * static_cast<size_t>(y)], !rgb.empty());
  }
  std::string out;
  const size_t bound = libdeflate_zlib_compress_bound(compressor.get(), filtered.size());
  const size_t idat = begin_png(out, image, bound);
  const size_t size = libdeflate_zlib_compress(compressor.get(), filtered.data(), filtered.size(), &out[idat + 8], bound);
  if (size == 0) throw Error(ErrorKind::kIOError, "libdeflate: compression failed");
  end_png(out, idat, size);
  return out;
}

std::string encode_streamed(const cv::Mat& image, size_t row_bytes) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15, 8, Z_RLE) != Z_OK) throw Error(ErrorKind::kIOError, "zlib: deflateInit2 failed");
  struct End {
    z_stream& z;
    ~End() { deflateEnd(&z); }
  } end{z};
  std::string out;
  // A quarter of the pixels' size to start with (overlays compress to about a third), grown as
  // needed: a full deflateBound would touch a second copy of the image for nothing.
  const size_t idat = begin_png(out, image, std::max<size_t>(size_t{1} << 16, (row_bytes + 1) * static_cast<size_t>(image.rows) / 4));
  z.next_out = reinterpret_cast<Bytef*>(&out[idat + 8]);
  z.avail_out = static_cast<uInt>(out.size() - idat - 8);
  std::vector<unsigned char> above(row_bytes, 0), row(row_bytes), filtered(row_bytes + 1);
  for (int y = 0; y < image.rows; ++y) {
    up_filtered_row(image, y, above, row, filtered.data());
    z.next_in = filtered.data();
    z.avail_in = static_cast<uInt>(filtered.size());
    const bool last = y + 1 == image.rows;
    for (;;) {
      const int status = deflate(&z, last ? Z_FINISH : Z_NO_FLUSH);
      if (status == Z_STREAM_ERROR) throw Error(ErrorKind::kIOError, "zlib: deflate failed");
      if (last ? status == Z_STREAM_END : z.avail_in == 0) break;
      if (z.avail_out == 0) {
        const size_t used = idat + 8 + z.total_out;
        out.resize(out.size() + out.size() / 2 + 1024);
        z.next_out = reinterpret_cast<Bytef*>(&out[used]);
        z.avail_out = static_cast<uInt>(out.size() - used);
      }
    }
  }
  end_png(out, idat, z.total_out);
  return out;
}

}  // namespace

bool fast_png_takes(const cv::Mat& image) {
  const int type = image.type();
  return !image.empty() && (type == CV_8UC1 || type == CV_8UC3 || type == CV_16UC1);
}

std::string encode_png_fast(const cv::Mat& image) {
  if (!fast_png_takes(image)) {
    throw Error(ErrorKind::kInvalidArgument, "encode_png_fast: a non-empty 8-bit grey, 8-bit BGR or 16-bit grey image only");
  }
  const size_t row_bytes = static_cast<size_t>(image.cols) * image.elemSize();
  return (row_bytes + 1) * static_cast<size_t>(image.rows) <= kWholeBufferBytes ? encode_whole(image, row_bytes)
                                                                                  : encode_streamed(image, row_bytes);
}

}  // namespace medattn::explain
