// Limits checked from the header before decoding: a file that claims a huge image is
// refused at once, whatever the format.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "io/image.h"
#include "support/helpers.h"
#include "support/temp_dir.h"

using namespace medattn;
using namespace medattn::io;

namespace {

void put32be(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
}

// A PNG chunk with a correct CRC.
std::string chunk(const std::string& type, const std::string& data) {
  std::string c;
  put32be(c, static_cast<uint32_t>(data.size()));
  const std::string body = type + data;
  c += body;
  put32be(c, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
  return c;
}

std::string write(const testing::TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

const char* kTooBig = "image too large (60000x60000 = 3600.0 megapixels, limit 100.0; see --max-pixels)";

}  // namespace

TEST_CASE("a PNG, JPEG, TIFF or BMP header claiming 60000x60000 is refused before decoding", "[io][limits]") {
  testing::TempDir dir;
  std::string ihdr;
  put32be(ihdr, 60000);
  put32be(ihdr, 60000);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey
  const std::string png = write(dir, "huge.png", std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) +
                                                     chunk("IDAT", "x") + chunk("IEND", ""));
  testing::require_error([&] { read_image(png); }, ErrorKind::kUnsupported, "cannot read PNG '" + png + "': " + kTooBig);

  // SOI, SOF0 (8-bit, 60000 rows x 60000 columns, 1 component), EOI.
  const std::string jpg = write(dir, "huge.jpg", std::string("\xFF\xD8\xFF\xC0\x00\x0B\x08\xEA\x60\xEA\x60\x01\x01\x11\x00\xFF\xD9", 17));
  testing::require_error([&] { read_image(jpg); }, ErrorKind::kUnsupported, "cannot read JPEG '" + jpg + "': " + kTooBig);

  // Little-endian TIFF, one IFD with ImageWidth and ImageLength as LONGs.
  std::string tif("II*\0\x08\0\0\0", 8);
  tif += std::string("\x02\x00", 2);
  tif += std::string("\x00\x01\x04\x00\x01\x00\x00\x00\x60\xEA\x00\x00", 12);
  tif += std::string("\x01\x01\x04\x00\x01\x00\x00\x00\x60\xEA\x00\x00", 12);
  tif += std::string(4, '\0');
  const std::string tiff = write(dir, "huge.tif", tif);
  testing::require_error([&] { read_image(tiff); }, ErrorKind::kUnsupported, "cannot read TIFF '" + tiff + "': " + kTooBig);

  // BITMAPINFOHEADER: 60000 x -60000 (top-down), 24 bits, uncompressed, no pixel rows.
  std::string bmp("BM", 2);
  bmp += std::string("\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00", 16);
  bmp += std::string("\x60\xEA\x00\x00\xA0\x15\xFF\xFF\x01\x00\x18\x00\x00\x00\x00\x00", 16);
  bmp += std::string(20, '\0');
  const std::string bmpf = write(dir, "huge.bmp", bmp);
  testing::require_error([&] { read_image(bmpf); }, ErrorKind::kUnsupported, "cannot read BMP '" + bmpf + "': " + kTooBig);

  // The limit is an option: a lower one refuses a small image too.
  ReadOptions tight;
  tight.max_pixels = 1000;
  const std::string small = write(dir, "small.jpg", std::string("\xFF\xD8\xFF\xC0\x00\x0B\x08\x00\x40\x00\x40\x01\x01\x11\x00\xFF\xD9", 17));
  testing::require_error([&] { read_image(small, tight); }, ErrorKind::kUnsupported,
                         "cannot read JPEG '" + small + "': image too large (64x64 = 0.0 megapixels, limit 0.0; see --max-pixels)");
}

TEST_CASE("a file over --max-file-size is refused without being read", "[io][limits]") {
  testing::TempDir dir;
  const std::string path = write(dir, "big.png", std::string(2 * 1048576, 'x'));
  ReadOptions options;
  options.max_file_bytes = 1048576;
  testing::require_error([&] { read_image(path, options); }, ErrorKind::kUnsupported,
                         "cannot read image '" + path + "': file too large (2.0 MB, limit 1.0 MB; see --max-file-size)");
}
