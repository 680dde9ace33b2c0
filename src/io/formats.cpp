// The input-format registry (io/formats.h) and content sniffing.
#include "io/formats.h"

#include <algorithm>
#include <fstream>

#include "core/bounded_io.h"
#include "core/text.h"

namespace medattn::io {

// The rows, each defined beside its format's content test (io/format_*.cpp).
InputFormat dicom_format();     // io/format_dicom.cpp
InputFormat png_format();       // io/format_raster.cpp
InputFormat jpeg_format();      // io/format_raster.cpp
InputFormat tiff_format();      // io/format_raster.cpp
InputFormat bmp_format();       // io/format_raster.cpp
InputFormat nifti_format();     // io/format_nifti.cpp
InputFormat nifti_gz_format();  // io/format_nifti.cpp
InputFormat jpeg2000_format();  // io/format_raster.cpp

const std::vector<InputFormat>& input_formats() {
  // Sniffing order: DICOM first (its preamble may hold another format's header); the other
  // magics exclude each other.
  static const std::vector<InputFormat> rows = {dicom_format(), png_format(),   jpeg_format(),
                                                tiff_format(),  bmp_format(),   nifti_format(),
                                                nifti_gz_format(), jpeg2000_format()};
  return rows;
}

const InputFormat* find_input_format(FileFormat id) {
  for (const InputFormat& f : input_formats()) {
    if (f.id == id) return &f;
  }
  return nullptr;
}

const char* format_name(FileFormat format) {
  const InputFormat* f = find_input_format(format);
  return f != nullptr ? f->name : "unknown";
}

const char* display_name(FileFormat format) {
  const InputFormat* f = find_input_format(format);
  return f != nullptr ? f->display : "image";
}

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> extensions = [] {
    std::vector<std::string> all;
    for (const InputFormat& f : input_formats()) all.insert(all.end(), f.extensions.begin(), f.extensions.end());
    std::stable_sort(all.begin(), all.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    return all;
  }();
  return extensions;
}

const std::string& supported_formats() {
  static const std::string text = [] {
    std::vector<std::string> names;
    for (const InputFormat& f : input_formats()) {
      if (f.read != nullptr && std::find(names.begin(), names.end(), f.display) == names.end()) names.push_back(f.display);
    }
    return join(names, ", ");
  }();
  return text;
}

FileFormat sniff_format(const std::string& path) {
  // Only regular files are opened: a FIFO would block, /dev/zero never ends.
  if (!special_file_kind(path).empty()) return FileFormat::kUnknown;
  std::ifstream in(path, std::ios::binary);
  if (!in) return FileFormat::kUnknown;
  std::vector<unsigned char> head(kSniffBytes);
  in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.empty()) return FileFormat::kUnknown;
  for (const InputFormat& f : input_formats()) {
    if (f.sniff(head, path)) return f.id;
  }
  return FileFormat::kUnknown;
}

}  // namespace medattn::io
