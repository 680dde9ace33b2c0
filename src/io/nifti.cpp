// read_nifti(): one 2D axial slice of a NIfTI-1 volume (.nii, .nii.gz) through nifticlib.
//
// The header is checked here first (nifticlib reports bad headers on stderr), then
// nifticlib parses it (either byte order: it swaps) and reads only the requested slice of
// the first volume (nifti_read_collapsed_image), in host byte order. Values are converted
// to float and scaled by scl_slope/scl_inter here.
#include <nifti1_io.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <string>

#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"
#include "io/image.h"

namespace medattn::io {
namespace {

const char kWhat[] = "cannot read NIfTI";

struct NiftiImageDeleter {
  void operator()(nifti_image* nim) const { nifti_image_free(nim); }
};
using NiftiImagePtr = std::unique_ptr<nifti_image, NiftiImageDeleter>;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

constexpr const char* kAliasPrefix = "medattn_nifti_";

// Alias folders that killed runs left behind: "medattn_nifti_<pid>_<n>" in the temporary
// folder, owned by this user, whose process is gone, holding nothing but the alias links.
void remove_stale_alias_dirs() {
  std::error_code ec;
  const auto tmp = std::filesystem::temp_directory_path(ec);
  if (ec) return;
  for (std::filesystem::directory_iterator it(tmp, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(kAliasPrefix, 0) != 0) continue;
    const std::string rest = name.substr(std::strlen(kAliasPrefix));
    const size_t us = rest.find('_');
    if (us == 0 || us == std::string::npos || us > 10 || rest.find_first_not_of("0123456789_") != std::string::npos) continue;
    if (!process_gone(std::stol(rest.substr(0, us)))) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) continue;
    for (const char* link : {"volume.nii", "volume.nii.gz"}) {
      const auto p = it->path() / link;
      if (::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) ::unlink(p.c_str());
    }
    ::rmdir(it->path().c_str());  // fails, harmlessly, if anything else is inside
  }
}

// nifticlib finds a file's kind by its extension (.nii, .nii.gz), and looks for the voxels
// of "x.nii.gz" in "x.nii" first when that exists. A file with another name, or with such
// a neighbour, is read through a symbolic link, in a private temporary directory, that has
// the expected extension; the directory is removed afterwards.
class ExtensionAlias {
 public:
  ExtensionAlias(const std::string& path, bool gzipped) : name_(path) {
    std::error_code ec;
    if (gzipped ? ends_with(path, ".nii.gz") &&
                      !std::filesystem::exists(path.substr(0, path.size() - 3), ec)
                : ends_with(path, ".nii"))
      return;
    static std::atomic<unsigned> counter{0};
    static std::once_flag stale_once;
    std::call_once(stale_once, remove_stale_alias_dirs);
    const auto dir =
        std::filesystem::temp_directory_path(ec) /
        (kAliasPrefix + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    if (ec || !std::filesystem::create_directory(dir, ec) || ec) return;
    dir_ = dir;
    dir_slot_ = register_cleanup(dir.string(), /*directory=*/true);  // removed on SIGINT/SIGTERM too
    const auto link = dir / (gzipped ? "volume.nii.gz" : "volume.nii");
    link_slot_ = register_cleanup(link.string());
    std::filesystem::create_symlink(std::filesystem::absolute(path, ec), link, ec);
    if (!ec) name_ = link.string();
  }
  ~ExtensionAlias() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    unregister_cleanup(link_slot_);
    unregister_cleanup(dir_slot_);
  }
  ExtensionAlias(const ExtensionAlias&) = delete;
  ExtensionAlias& operator=(const ExtensionAlias&) = delete;
  // The name to give nifticlib.
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::filesystem::path dir_;
  int dir_slot_ = -1, link_slot_ = -1;
};

enum class HeaderKind { kNifti1, kNifti2, kInvalid };

// Reads the (possibly gzipped) 348-byte header into `header`, in host byte order. Checked
// here first because nifticlib reports a bad header on stderr.
HeaderKind read_header(const std::string& path, nifti_1_header* header) {
  gzFile gz = gzopen(path.c_str(), "rb");  // also reads uncompressed files
  if (gz == nullptr) return HeaderKind::kInvalid;
  const int n = gzread(gz, header, sizeof(*header));
  gzclose(gz);
  if (n < 4) return HeaderKind::kInvalid;
  int32_t size = header->sizeof_hdr;
  if (size == 540 || size == 0x1C020000) return HeaderKind::kNifti2;
  if (n != static_cast<int>(sizeof(*header))) return HeaderKind::kInvalid;
  if (size == 0x5C010000) swap_nifti_header(header, /*is_nifti=*/1);
  return header->sizeof_hdr == 348 ? HeaderKind::kNifti1 : HeaderKind::kInvalid;
}

// True if the decompressed stream of `path` is at least `size` bytes long and readable.
bool gz_has_bytes(const char* path, uint64_t size) {
  if (size == 0) return true;
  gzFile gz = gzopen(path, "rb");
  if (gz == nullptr) return false;
  gzbuffer(gz, 1 << 16);
  const z_off_t last = static_cast<z_off_t>(size - 1);
  unsigned char byte = 0;
  const bool ok = gzseek(gz, last, SEEK_SET) == last && gzread(gz, &byte, 1) == 1;
  gzclose(gz);
  return ok;
}

// Reads voxel `i` of a scalar type as double.
double voxel(const void* data, int datatype, size_t i) {
  switch (datatype) {
    case DT_UINT8:
      return static_cast<const uint8_t*>(data)[i];
    case DT_INT8:
      return static_cast<const int8_t*>(data)[i];
    case DT_INT16:
      return static_cast<const int16_t*>(data)[i];
    case DT_UINT16:
      return static_cast<const uint16_t*>(data)[i];
    case DT_INT32:
      return static_cast<const int32_t*>(data)[i];
    case DT_UINT32:
      return static_cast<const uint32_t*>(data)[i];
    case DT_INT64:
      return static_cast<double>(static_cast<const int64_t*>(data)[i]);
    case DT_UINT64:
      return static_cast<double>(static_cast<const uint64_t*>(data)[i]);
    case DT_FLOAT32:
      return static_cast<const float*>(data)[i];
    case DT_FLOAT64:
      return static_cast<const double*>(data)[i];
    default:
      return 0.0;
  }
}

bool is_scalar(int datatype) {
  switch (datatype) {
    case DT_UINT8:
    case DT_INT8:
    case DT_INT16:
    case DT_UINT16:
    case DT_INT32:
    case DT_UINT32:
    case DT_INT64:
    case DT_UINT64:
    case DT_FLOAT32:
    case DT_FLOAT64:
      return true;
    default:
      return false;
  }
}

}  // namespace

Image read_nifti(const std::string& path, const ReadOptions& options) {
  static std::once_flag quiet;
  std::call_once(quiet, [] { nifti_set_debug_level(0); });  // nifticlib's stderr messages

  nifti_1_header header;
  const HeaderKind header_kind = read_header(path, &header);
  if (header_kind == HeaderKind::kNifti2)
    throw file_error(ErrorKind::kUnsupported, kWhat, path,
                     "NIfTI-2 is not supported by this build");
  if (header_kind != HeaderKind::kNifti1)
    throw file_error(ErrorKind::kCorruption, kWhat, path,
                     "invalid NIfTI-1 header (bad sizeof_hdr)");
  const int header_dims = header.dim[0];
  if (header_dims < 1 || header_dims > 7)
    throw file_error(
        ErrorKind::kCorruption, kWhat, path,
        "invalid NIfTI-1 header (dim[0] " + std::to_string(header_dims) + ", expected 1 to 7)");
  for (int d = 1; d <= header_dims; ++d)
    if (header.dim[d] < 1)
      throw file_error(ErrorKind::kCorruption, kWhat, path,
                       "invalid NIfTI-1 header (dim[" + std::to_string(d) + "] " +
                           std::to_string(header.dim[d]) + ")");
  const int datatype_code = header.datatype;
  const bool rgb = datatype_code == DT_RGB24 || datatype_code == DT_RGBA32;
  if (!is_scalar(datatype_code) && !rgb)
    throw file_error(ErrorKind::kUnsupported, kWhat, path,
                     std::string("datatype ") + nifti_datatype_string(datatype_code) + " (" +
                         std::to_string(datatype_code) + ") is not supported");

  const bool gzipped = sniff_format(path) == FileFormat::kNiftiGz;
  const ExtensionAlias alias(path, gzipped);
  NiftiImagePtr nim(nifti_image_read(alias.name().c_str(), /*read_data=*/0));
  if (!nim) throw file_error(ErrorKind::kCorruption, kWhat, path, "invalid NIfTI-1 header");

  const int ndim = nim->ndim;
  const int nx = nim->nx, ny = nim->ny;
  const int nz = ndim >= 3 ? nim->nz : 1;
  if (ndim < 2 || ndim > 7 || nx < 1 || ny < 1 || nz < 1)
    throw file_error(
        ErrorKind::kUnsupported, kWhat, path,
        "not an image (got " + std::to_string(ndim) + " dimension(s), expected 2 to 7)");
  const int datatype = nim->datatype;
  check_pixel_limit(nx, ny, options, kWhat, path);
  // A volume may hold at most max_frames slices of max_pixels (all volumes together).
  const double voxels = static_cast<double>(nim->nvox);
  if (voxels > static_cast<double>(options.max_pixels) * static_cast<double>(options.max_frames)) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "volume too large (%.3g voxels, limit %.3g; see --max-pixels, --max-frames)", voxels,
                  static_cast<double>(options.max_pixels) * static_cast<double>(options.max_frames));
    throw file_error(ErrorKind::kUnsupported, kWhat, path, buf);
  }

  int z = options.slice;
  if (z < 0) {
    z = nz / 2;
  } else if (z >= nz) {
    throw file_error(ErrorKind::kInvalidArgument, kWhat, path,
                     "slice " + std::to_string(z) + " out of range (volume has " +
                         std::to_string(nz) +
                         (nz == 1 ? " slice: 0)" : " slices: 0.." + std::to_string(nz - 1) + ")"));
  }

  // An uncompressed file must hold every voxel it announces, not just the slice read here.
  // A .nii.gz is checked up to the end of the slice (nifticlib would report a short read
  // on stderr).
  const auto bytes_needed = static_cast<uint64_t>(nim->iname_offset) +
                            static_cast<uint64_t>(nim->nvox) * static_cast<uint64_t>(nim->nbyper);
  if (!gzipped) {
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(alias.name(), ec);
    if (!ec && size < bytes_needed)
      throw file_error(ErrorKind::kCorruption, kWhat, path,
                       "voxel data truncated (file has " + std::to_string(size) +
                           " bytes, expected " + std::to_string(bytes_needed) + ")");
  }

  const uint64_t slice_bytes = uint64_t(nx) * uint64_t(ny) * uint64_t(nim->nbyper);
  if (gzipped && !gz_has_bytes(alias.name().c_str(),
                               uint64_t(nim->iname_offset) + slice_bytes * uint64_t(z + 1)))
    throw file_error(ErrorKind::kCorruption, kWhat, path, "voxel data truncated or unreadable");

  // One slice of the first volume (index 0 along t, u, v, w); -1 = the whole axis.
  int dims[8] = {0, -1, -1, z, 0, 0, 0, 0};
  void* raw = nullptr;
  const int got = nifti_read_collapsed_image(nim.get(), dims, &raw);
  std::unique_ptr<void, FreeDeleter> data(raw);
  const int64_t expected = int64_t(nx) * ny * nim->nbyper;
  if (got < 0 || !data || got < expected)
    throw file_error(ErrorKind::kCorruption, kWhat, path, "voxel data truncated or unreadable");

  Image image;
  image.format = gzipped ? FileFormat::kNiftiGz : FileFormat::kNifti;
  image.bits_stored = rgb ? 8 : nim->nbyper * 8;

  // Orientation: NIfTI stores i (x) fastest, then j (y). In the usual RAS-like layouts
  // j increases towards anterior (axial) or superior (coronal/sagittal), so the rows are
  // flipped: output row 0 is the highest j index, and the image displays with anterior/
  // superior at the top, as radiology viewers show it. Columns keep the stored i order.
  const double slope = nim->scl_slope;
  const double inter = nim->scl_inter;
  const bool scale = !rgb && slope != 0.0 && std::isfinite(slope) && std::isfinite(inter);
  if (rgb) {
    const int stride = datatype == DT_RGB24 ? 3 : 4;
    const auto* bytes = static_cast<const uint8_t*>(data.get());
    image.pixels.create(ny, nx, CV_32FC3);
    for (int r = 0; r < ny; ++r) {
      const uint8_t* src = bytes + size_t(ny - 1 - r) * nx * stride;
      float* dst = image.pixels.ptr<float>(r);
      for (int c = 0; c < nx; ++c) {  // RGB -> BGR
        dst[3 * c] = src[stride * c + 2];
        dst[3 * c + 1] = src[stride * c + 1];
        dst[3 * c + 2] = src[stride * c];
      }
    }
  } else {
    image.pixels.create(ny, nx, CV_32FC1);
    for (int r = 0; r < ny; ++r) {
      const size_t src_row = size_t(ny - 1 - r) * nx;
      float* dst = image.pixels.ptr<float>(r);
      for (int c = 0; c < nx; ++c) {
        double v = voxel(data.get(), datatype, src_row + c);
        if (scale) v = v * slope + inter;
        // NaN (common in masked statistical maps) has no display value: shown as 0.
        dst[c] = std::isnan(v) ? 0.0f : static_cast<float>(v);
      }
    }
  }

  if (options.window) {
    image.window = *options.window;
  } else if (rgb) {
    image.window = window_from_range(0.0, 255.0);
  } else if (nim->cal_max > nim->cal_min && std::isfinite(nim->cal_min) &&
             std::isfinite(nim->cal_max)) {
    image.window = window_from_range(nim->cal_min, nim->cal_max);
  } else {
    double lo = std::numeric_limits<double>::infinity();
    double hi = -lo;
    for (int r = 0; r < image.pixels.rows; ++r) {
      const float* p = image.pixels.ptr<float>(r);
      for (int c = 0; c < image.pixels.cols; ++c) {
        if (!std::isfinite(p[c])) continue;
        lo = std::min(lo, double(p[c]));
        hi = std::max(hi, double(p[c]));
      }
    }
    if (lo > hi) lo = hi = 0.0;
    image.window = window_from_range(lo, hi);
  }
  return image;
}

}  // namespace medattn::io
