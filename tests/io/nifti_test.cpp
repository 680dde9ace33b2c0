// read_nifti(): volumes written here with nifticlib (and one big-endian file written by
// hand), plus the public test files in ../shared/data when present ([shared]).
#include <catch2/catch.hpp>
#include <nifti1_io.h>

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "support/helpers.h"
#include "support/temp_dir.h"
#include "io/image.h"

namespace fs = std::filesystem;
using medattn::Error;
using medattn::ErrorKind;
using namespace medattn::io;

namespace {

using medattn::testing::TempDir;
using medattn::testing::require_error;
using testdeps::shared_data_dir;
using medattn::testing::values;

struct NimDeleter {
  void operator()(nifti_image* nim) const { nifti_image_free(nim); }
};
using NimPtr = std::unique_ptr<nifti_image, NimDeleter>;

// A volume of `datatype` with dims {nx, ny, nz, nt}; voxel (i,j,k,t) = value(i,j,k,t).
NimPtr make_volume(std::vector<int> shape, int datatype,
                   const std::function<double(int, int, int, int)>& value) {
  nifti_set_debug_level(0);
  int dims[8] = {static_cast<int>(shape.size()), 1, 1, 1, 1, 1, 1, 1};
  for (size_t d = 0; d < shape.size(); ++d) dims[d + 1] = shape[d];
  NimPtr nim(nifti_make_new_nim(dims, datatype, /*data_fill=*/1));
  REQUIRE(nim);
  size_t index = 0;
  for (int t = 0; t < dims[4]; ++t)
    for (int k = 0; k < dims[3]; ++k)
      for (int j = 0; j < dims[2]; ++j)
        for (int i = 0; i < dims[1]; ++i, ++index) {
          const double v = value(i, j, k, t);
          switch (datatype) {
            case DT_INT16:
              static_cast<int16_t*>(nim->data)[index] = static_cast<int16_t>(v);
              break;
            case DT_UINT8:
              static_cast<uint8_t*>(nim->data)[index] = static_cast<uint8_t>(v);
              break;
            case DT_FLOAT32:
              static_cast<float*>(nim->data)[index] = static_cast<float>(v);
              break;
            case DT_FLOAT64:
              static_cast<double*>(nim->data)[index] = v;
              break;
            default:
              FAIL("datatype not handled by the test");
          }
        }
  return nim;
}

// Writes `nim` as a single-file NIfTI-1 to `path` (.nii or .nii.gz).
std::string write_nifti(nifti_image* nim, const std::string& path) {
  REQUIRE(nifti_set_filenames(nim, path.c_str(), /*check=*/0, /*set_byte_order=*/1) == 0);
  nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
  nifti_image_write(nim);
  REQUIRE(fs::exists(path));
  return path;
}

// Writes `nim` as a big-endian .nii by hand: swapped header, then swapped voxels.
std::string write_big_endian(const nifti_image* nim, const std::string& path) {
  nifti_1_header header = nifti_convert_nim2nhdr(nim);
  header.vox_offset = 352.0f;
  std::memcpy(header.magic, "n+1\0", 4);
  swap_nifti_header(&header, /*is_nifti=*/1);
  std::vector<unsigned char> data(
      static_cast<const unsigned char*>(nim->data),
      static_cast<const unsigned char*>(nim->data) + nim->nvox * nim->nbyper);
  nifti_swap_Nbytes(nim->nvox, nim->nbyper, data.data());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&header), sizeof(header));
  out.write("\0\0\0\0", 4);  // no extensions
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return path;
}

// The expected slice k of value(i,j,k) = 100k + 10j + i, rows flipped (row 0 = j = ny-1).
std::vector<float> expected_slice(int nx, int ny, int k, double offset = 0.0) {
  std::vector<float> out;
  for (int r = 0; r < ny; ++r)
    for (int i = 0; i < nx; ++i)
      out.push_back(static_cast<float>(100 * k + 10 * (ny - 1 - r) + i + offset));
  return out;
}

double ramp(int i, int j, int k, int t) { return 1000 * t + 100 * k + 10 * j + i; }

}  // namespace

TEST_CASE("read_nifti: 3D int16, middle slice, rows flipped", "[io][nifti]") {
  TempDir dir;
  NimPtr nim = make_volume({4, 3, 5}, DT_INT16, ramp);
  for (const char* name : {"vol.nii", "vol.nii.gz"}) {
    INFO(name);
    const std::string path = write_nifti(nim.get(), dir.file(name));
    const Image image = read_image(path);
    REQUIRE(image.pixels.type() == CV_32FC1);
    REQUIRE(image.pixels.cols == 4);  // nx
    REQUIRE(image.pixels.rows == 3);  // ny
    // z = 5 / 2 = 2; row 0 holds j = 2 (the highest y index: anterior at the top).
    CHECK(values(image.pixels) == expected_slice(4, 3, 2));
    CHECK(image.pixels.at<float>(0, 0) == 220.0f);
    CHECK(image.pixels.at<float>(2, 0) == 200.0f);
    CHECK(image.format ==
          (std::string(name) == "vol.nii" ? FileFormat::kNifti : FileFormat::kNiftiGz));
    CHECK(image.bits_stored == 16);
    CHECK(image.modality.empty());
    // cal_min == cal_max == 0: min-max of the slice, 200..223.
    CHECK(image.window.center == window_from_range(200, 223).center);
    CHECK(image.window.width == 24.0);
  }
}

TEST_CASE("read_nifti: --slice picks the axial slice and is range-checked", "[io][nifti]") {
  TempDir dir;
  NimPtr nim = make_volume({4, 3, 5}, DT_INT16, ramp);
  const std::string path = write_nifti(nim.get(), dir.file("vol.nii"));
  ReadOptions options;
  options.slice = 0;
  CHECK(values(read_image(path, options).pixels) == expected_slice(4, 3, 0));
  options.slice = 4;
  CHECK(values(read_image(path, options).pixels) == expected_slice(4, 3, 4));
  options.slice = 5;
  require_error(
      [&] { read_image(path, options); }, ErrorKind::kInvalidArgument,
      "cannot read NIfTI '" + path + "': slice 5 out of range (volume has 5 slices: 0..4)");

  NimPtr flat = make_volume({4, 3}, DT_UINT8, ramp);
  const std::string flat_path = write_nifti(flat.get(), dir.file("flat.nii"));
  CHECK(values(read_image(flat_path).pixels) == expected_slice(4, 3, 0));
  CHECK(read_image(flat_path).bits_stored == 8);
  options.slice = 1;
  require_error(
      [&] { read_image(flat_path, options); }, ErrorKind::kInvalidArgument,
      "cannot read NIfTI '" + flat_path + "': slice 1 out of range (volume has 1 slice: 0)");
}

TEST_CASE("read_nifti: 4D float reads the first volume", "[io][nifti]") {
  TempDir dir;
  NimPtr nim = make_volume({3, 2, 4, 3}, DT_FLOAT32,
                           [](int i, int j, int k, int t) { return ramp(i, j, k, t) + 0.5; });
  for (const char* name : {"4d.nii", "4d.nii.gz"}) {
    INFO(name);
    const std::string path = write_nifti(nim.get(), dir.file(name));
    const Image image = read_image(path);
    REQUIRE(image.pixels.size() == cv::Size(3, 2));
    CHECK(values(image.pixels) == expected_slice(3, 2, 2, 0.5));  // t = 0, z = 4 / 2
    CHECK(image.bits_stored == 32);
    ReadOptions options;
    options.slice = 3;
    CHECK(values(read_image(path, options).pixels) == expected_slice(3, 2, 3, 0.5));
  }
}

TEST_CASE("read_nifti: scl_slope/scl_inter and cal_min/cal_max", "[io][nifti]") {
  TempDir dir;
  NimPtr nim = make_volume({2, 2, 1}, DT_INT16, ramp);  // 0, 1, 10, 11
  nim->scl_slope = 0.5f;
  nim->scl_inter = -10.25f;
  const std::string path = write_nifti(nim.get(), dir.file("scaled.nii"));
  Image image = read_image(path);
  // rows flipped: (j=1: 10, 11), (j=0: 0, 1); then v * 0.5 - 10.25
  CHECK(values(image.pixels) == std::vector<float>{-5.25f, -4.75f, -10.25f, -9.75f});
  CHECK(image.window.center == window_from_range(-10.25, -4.75).center);

  nim->cal_min = -8.0f;
  nim->cal_max = 2.0f;
  image = read_image(write_nifti(nim.get(), dir.file("calibrated.nii")));
  CHECK(image.window.center == window_from_range(-8, 2).center);
  CHECK(image.window.width == 11.0);

  ReadOptions options;
  options.window = Window{1.0, 2.0};
  image = read_image(dir.file("calibrated.nii"), options);
  CHECK(image.window.center == 1.0);
  CHECK(image.window.width == 2.0);

  nim->scl_slope = 0.0f;  // 0 means "no scaling"
  nim->scl_inter = 100.0f;
  image = read_image(write_nifti(nim.get(), dir.file("unscaled.nii")));
  CHECK(values(image.pixels) == std::vector<float>{10, 11, 0, 1});
}

TEST_CASE("read_nifti: big-endian files read the same", "[io][nifti]") {
  TempDir dir;
  NimPtr nim = make_volume({4, 3, 5}, DT_INT16, [](int i, int j, int k, int) {
    return -300 * k + 10 * j + i;  // negative values: both bytes matter
  });
  nim->scl_slope = 2.0f;
  const std::string little = write_nifti(nim.get(), dir.file("le.nii"));
  const std::string big = write_big_endian(nim.get(), dir.file("be.nii"));
  {
    std::ifstream in(big, std::ios::binary);
    unsigned char head[4];
    in.read(reinterpret_cast<char*>(head), 4);
    REQUIRE(head[3] == 0x5C);  // 348 = 0x15C, most significant byte first
  }
  REQUIRE(sniff_format(big) == FileFormat::kNifti);
  const Image a = read_image(little);
  const Image b = read_image(big);
  CHECK(values(b.pixels) == values(a.pixels));
  CHECK(b.pixels.at<float>(0, 0) == 2.0f * (-600 + 20));
}

TEST_CASE("read_nifti: found by content whatever the file is called", "[io][nifti]") {
  TempDir dir;
  NimPtr nim = make_volume({4, 3, 5}, DT_INT16, ramp);
  const std::string nii = write_nifti(nim.get(), dir.file("vol.nii"));
  const std::string gz = write_nifti(nim.get(), dir.file("vol.nii.gz"));
  fs::copy_file(nii, dir.file("scan.dat"));
  fs::copy_file(gz, dir.file("scan"));
  const Image plain = read_image(dir.file("scan.dat"));
  CHECK(plain.format == FileFormat::kNifti);
  CHECK(values(plain.pixels) == expected_slice(4, 3, 2));
  const Image zipped = read_image(dir.file("scan"));
  CHECK(zipped.format == FileFormat::kNiftiGz);
  CHECK(values(zipped.pixels) == expected_slice(4, 3, 2));
}

TEST_CASE("read_nifti: x.nii.gz is read from itself even when x.nii exists", "[io][nifti]") {
  TempDir dir;
  NimPtr a = make_volume({4, 3, 5}, DT_INT16, ramp);
  NimPtr b = make_volume({4, 3, 5}, DT_INT16,
                         [](int i, int j, int k, int t) { return -ramp(i, j, k, t); });
  write_nifti(a.get(), dir.file("x.nii"));
  write_nifti(b.get(), dir.file("x.nii.gz"));
  std::vector<float> negated = expected_slice(4, 3, 2);
  for (float& v : negated) v = -v;
  CHECK(values(read_image(dir.file("x.nii.gz")).pixels) == negated);
  CHECK(values(read_image(dir.file("x.nii")).pixels) == expected_slice(4, 3, 2));
}

TEST_CASE("read_nifti: broken and unsupported files give one clear error", "[io][nifti]") {
  TempDir dir;
  SECTION("truncated voxel data") {
    NimPtr nim = make_volume({16, 16, 8}, DT_INT16, ramp);
    const std::string path = write_nifti(nim.get(), dir.file("cut.nii"));
    fs::resize_file(path, fs::file_size(path) - 1000);  // the middle slice is still there
    require_error([&] { read_image(path); }, ErrorKind::kCorruption,
                  "cannot read NIfTI '" + path +
                      "': voxel data truncated (file has 3448 bytes, expected 4448)");
  }
  SECTION("truncated gzip") {
    NimPtr nim = make_volume({64, 64, 8}, DT_FLOAT32, [](int i, int j, int k, int) {
      return std::sin(i * 0.37 + j * 1.3 + k * 2.1) * 1000.0;  // hardly compressible
    });
    const std::string path = write_nifti(nim.get(), dir.file("cut.nii.gz"));
    fs::resize_file(path, fs::file_size(path) / 3);
    REQUIRE(sniff_format(path) == FileFormat::kNiftiGz);
    require_error([&] { read_image(path); }, ErrorKind::kCorruption,
                  "cannot read NIfTI '" + path + "': voxel data truncated or unreadable");
  }
  SECTION("complex data") {
    NimPtr nim = make_volume({2, 2, 1}, DT_FLOAT64, ramp);  // 8 bytes a voxel, like COMPLEX64
    nim->datatype = DT_COMPLEX64;
    const std::string path = write_nifti(nim.get(), dir.file("complex.nii"));
    require_error([&] { read_image(path); }, ErrorKind::kUnsupported,
                  "cannot read NIfTI '" + path + "': datatype COMPLEX64 (32) is not supported");
  }
  SECTION("NIfTI-2") {
    const std::string path = dir.file("two.nii");
    std::string bytes(560, '\0');
    const int32_t size = 540;
    std::memcpy(&bytes[0], &size, 4);
    std::memcpy(&bytes[4], "n+2\0\r\n\032\n", 8);
    std::ofstream(path, std::ios::binary) << bytes;
    REQUIRE(sniff_format(path) == FileFormat::kNifti);
    require_error([&] { read_image(path); }, ErrorKind::kUnsupported,
                  "cannot read NIfTI '" + path + "': NIfTI-2 is not supported by this build");
  }
  SECTION("a header with impossible dimensions") {
    NimPtr nim = make_volume({4, 3, 5}, DT_INT16, ramp);
    const std::string path = write_nifti(nim.get(), dir.file("dims.nii"));
    {
      std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
      const int16_t dim2 = -3;
      f.seekp(44);  // dim[2]
      f.write(reinterpret_cast<const char*>(&dim2), 2);
    }
    require_error([&] { read_image(path); }, ErrorKind::kCorruption,
                  "cannot read NIfTI '" + path + "': invalid NIfTI-1 header (dim[2] -3)");
  }
  SECTION("a header without data") {
    NimPtr nim = make_volume({4, 4, 4}, DT_INT16, ramp);
    const std::string path = write_nifti(nim.get(), dir.file("header_only.nii"));
    fs::resize_file(path, 352);
    require_error([&] { read_image(path); }, ErrorKind::kCorruption,
                  "cannot read NIfTI '" + path +
                      "': voxel data truncated (file has 352 bytes, expected 480)");
  }
}

TEST_CASE("read_nifti: a header claiming 10^12 voxels is refused at once", "[io][nifti][limits]") {
  TempDir dir;
  NimPtr nim = make_volume({2, 2, 2}, DT_UINT8, [](int, int, int, int) { return 1.0; });
  nifti_1_header header = nifti_convert_nim2nhdr(nim.get());
  header.dim[1] = header.dim[2] = header.dim[3] = 10000;
  header.vox_offset = 352.0f;
  std::memcpy(header.magic, "n+1\0", 4);
  const std::string path = dir.file("huge.nii");
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(&header), sizeof(header));
    out.write("\0\0\0\0\1\1\1\1\1\1\1\1", 12);
  }
  require_error([&] { read_image(path); }, ErrorKind::kUnsupported,
                "cannot read NIfTI '" + path + "': volume too large (1e+12 voxels, limit 4.1e+11; see --max-pixels, --max-frames)");
}

TEST_CASE("read_nifti: public test files", "[io][nifti][shared]") {
  const std::string root = shared_data_dir();
  MEDATTN_NEEDS(!root.empty(), "the shared data (" MEDATTN_SHARED_DATA ")");
  SECTION("anatomical.nii: big-endian int16, 33x41x25") {
    const Image image = read_image(root + "/nifti/anatomical.nii");
    CHECK(image.format == FileFormat::kNifti);
    CHECK(image.pixels.size() == cv::Size(33, 41));
    ReadOptions options;
    options.slice = 24;
    CHECK(read_image(root + "/nifti/anatomical.nii", options).pixels.size() == cv::Size(33, 41));
    options.slice = 25;
    CHECK_THROWS_AS(read_image(root + "/nifti/anatomical.nii", options), Error);
  }
  SECTION("functional.nii: 4D int16 with scl_slope, window from cal_min/cal_max") {
    const Image image = read_image(root + "/nifti/functional.nii");
    CHECK(image.pixels.size() == cv::Size(17, 21));
    double lo = 0, hi = 0;
    cv::minMaxLoc(image.pixels, &lo, &hi);
    CHECK(lo > 2800.0);  // scl_inter 3100.76: raw int16 values are scaled
    CHECK(hi < 5600.0);
    CHECK(image.window.center == Approx(window_from_range(629.826, 5571.62).center).epsilon(1e-5));
  }
  SECTION("example4d.nii.gz: gzip, 128x96x24x2") {
    const Image image = read_image(root + "/nifti/example4d.nii.gz");
    CHECK(image.format == FileFormat::kNiftiGz);
    CHECK(image.pixels.size() == cv::Size(128, 96));
    CHECK(image.window.center == window_from_range(0, 1162).center);  // cal_min/cal_max
    CHECK(image.window.width == 1163.0);
  }
}
