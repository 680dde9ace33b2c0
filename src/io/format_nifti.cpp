// The registry rows of NIfTI (.nii and .nii.gz): content tests and sample files. The reader
// is read_nifti() (io/nifti.cpp), which checks the header (dimensions, datatype, slice and
// pixel limits) itself before any voxel is read.
#include <nifti1_io.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/formats.h"

namespace medattn::io {
namespace {

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

bool sniff_nifti(const std::vector<unsigned char>& head, const std::string&) { return is_nifti_header(head); }

// A gzip stream whose decompressed start is a NIfTI header.
bool sniff_nifti_gz(const std::vector<unsigned char>& head, const std::string& path) {
  if (head.size() < 2 || head[0] != 0x1F || head[1] != 0x8B) return false;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (gz == nullptr) return false;
  std::vector<unsigned char> inner(kSniffBytes);
  const int n = gzread(gz, inner.data(), static_cast<unsigned>(inner.size()));
  gzclose(gz);
  if (n <= 0) return false;
  inner.resize(static_cast<size_t>(n));
  return is_nifti_header(inner);
}

Image read(const std::string& path, FileFormat, const ReadOptions& options) { return read_nifti(path, options); }

// A 4x4x3 int16 volume; nifticlib compresses when the name ends in .gz.
void write_nifti_sample(const std::string& path) {
  int dims[8] = {3, 4, 4, 3, 1, 1, 1, 1};
  nifti_image* nim = nifti_make_new_nim(dims, DT_INT16, 1);
  if (nim == nullptr) throw file_error(ErrorKind::kIOError, "cannot write", path, "nifticlib could not make it");
  for (size_t i = 0; i < nim->nvox; ++i) static_cast<int16_t*>(nim->data)[i] = static_cast<int16_t>(i * 3);
  nifti_set_filenames(nim, path.c_str(), 0, 1);
  nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
  nifti_image_write(nim);
  nifti_image_free(nim);
}

}  // namespace

InputFormat nifti_format() {
  return {FileFormat::kNifti, "nifti", "NIfTI", {".nii"}, sniff_nifti, nullptr, read, "", write_nifti_sample};
}
InputFormat nifti_gz_format() {
  return {FileFormat::kNiftiGz, "nifti.gz", "NIfTI", {".nii.gz"}, sniff_nifti_gz, nullptr, read, "",
          write_nifti_sample};
}

}  // namespace medattn::io
