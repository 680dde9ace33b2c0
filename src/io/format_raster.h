// The formats OpenCV decodes (PNG, JPEG, TIFF, BMP): what their headers claim, shared by the
// registry's header check (io/format_raster.cpp) and read_opencv_image() (io/image.cpp).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "io/image.h"

namespace medattn::io {

// Width and height from the file's header, before any decoding; {0, 0} when the header does
// not say (the decoder then decides). Only what the header claims: it may lie, which is the
// point of checking it before the decoder allocates.
std::pair<int64_t, int64_t> raster_header_size(const std::vector<unsigned char>& bytes, FileFormat format);

// The registry's header check for these formats: from a bounded prefix of the file, throws
// "cannot read <FORMAT> '<path>': image too large (...)" (check_pixel_limit) or "...: file
// too large for its header (...)" (kCorruption) when the file weighs more than its pixels
// can need plus kMaxExtraFileBytes.
void check_raster_header(const std::string& path, FileFormat format, const ReadOptions& options);

}  // namespace medattn::io
