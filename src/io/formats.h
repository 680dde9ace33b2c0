// The input-format registry: one row per file format the readers know, in io/formats.cpp.
// Everything that depends on the set of formats reads this table: sniff_format() (content
// tests in row order), read_image()'s dispatch (header check, then reader), format_name(),
// the extensions a folder walk keeps and heatmap stems drop (io/inputs.h), the list of
// formats in error texts, and the fuzzers' seed files (fuzz/make_seeds.cpp).
//
// image.h keeps the reader contracts unchanged but for these two: read_image() answers a file
// of no known format with "cannot read image '<path>': not a supported image (unknown format;
// supported: DICOM, PNG, JPEG, TIFF, BMP, NIfTI)", and read_opencv_image() leaves the header
// check to read_image() (the row's check_header, check_raster_header()). FileFormat (image.h)
// has one value per row; inputs.h's list of extensions is image_extensions().
//
// Adding a format: one file with its content test, header check, reader and sample writer
// (io/format_raster.cpp is the example for formats OpenCV decodes, io/format_nifti.cpp for
// one with its own reader), its FileFormat value in io/image.h, one row in io/formats.cpp,
// and its test (tests/io/formats_test.cpp checks every row's sample end to end already).
#pragma once

#include <string>
#include <vector>

#include "io/image.h"

namespace medattn::io {

// How many bytes of a file the content tests see (a NIfTI-1 header and its magic).
inline constexpr size_t kSniffBytes = 352;

struct InputFormat {
  FileFormat id = FileFormat::kUnknown;
  const char* name = "";     // lower case, for records and logs ("png", "nifti.gz"): format_name()
  const char* display = "";  // in error messages: "cannot read PNG '<path>': ..." ("NIfTI" for both NIfTI rows)
  // Extensions (lower case, with the dot) that claim this format: a folder walk keeps such a
  // file even when its content is broken, so that it is reported rather than skipped.
  std::vector<std::string> extensions;
  // The content test: `head` holds the first kSniffBytes bytes (fewer for a shorter file),
  // `path` is there for tests that must look further (the NIfTI header inside a gzip).
  // Never throws.
  bool (*sniff)(const std::vector<unsigned char>& head, const std::string& path) = nullptr;
  // Refuses the file from what its header claims (pixel limit, file size for that many
  // pixels), before it is read whole or decoded; throws medattn::Error like the reader.
  // nullptr: the reader parses and checks its header itself before reading pixels.
  void (*check_header)(const std::string& path, FileFormat format, const ReadOptions& options) = nullptr;
  // Reads the file (see read_image() for the contract). nullptr: the format is recognised
  // but not readable, and read_image() refuses it with `refusal` (kUnsupported).
  Image (*read)(const std::string& path, FileFormat format, const ReadOptions& options) = nullptr;
  const char* refusal = "";
  // Writes a small valid file of this format to `path` (fuzz seeds, the registry's test).
  // nullptr: none can be made here.
  void (*write_sample)(const std::string& path) = nullptr;
};

// Every row, in sniffing order (the first row whose test matches names the file).
const std::vector<InputFormat>& input_formats();

// The row of `id`; nullptr for FileFormat::kUnknown.
const InputFormat* find_input_format(FileFormat id);

// The upper-case name used in error messages ("PNG", "NIfTI"); "image" for kUnknown.
const char* display_name(FileFormat format);

// Every extension of every row, longest first (".nii.gz" before ".nii").
const std::vector<std::string>& image_extensions();

// The readable formats for help and error texts, each display name once, in row order:
// "DICOM, PNG, JPEG, TIFF, BMP, NIfTI".
const std::string& supported_formats();

}  // namespace medattn::io
