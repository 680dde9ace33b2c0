// Reads with limits known before reading (issue 20 items 6 and 15), and the decided
// behaviour of the readers for odd but valid files (multi-page TIFF, DICOM pixel data longer
// than Rows x Columns).
#include <dcmtk/dcmdata/dctk.h>
#include <sys/stat.h>
#include <zip.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "core/bounded_io.h"
#include "core/error.h"
#include "io/image.h"
#include "io/npz.h"
#include "model/card.h"
#include "model/ood.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using medattn::Error;
using medattn::testing::TempDir;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void put_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xFF);
}

// A PNG signature and an IHDR chunk (valid CRC) for a w x h 8-bit grey image; nothing else.
std::string png_header(uint32_t w, uint32_t h) {
  std::string s = "\x89PNG\r\n\x1a\n";
  std::string chunk = "IHDR";
  put_be32(chunk, w);
  put_be32(chunk, h);
  chunk += std::string("\x08\x00\x00\x00\x00", 5);
  put_be32(s, 13);
  s += chunk;
  put_be32(s, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(chunk.size()))));
  return s;
}

}  // namespace

TEST_CASE("a 1.9 GB sparse PNG is refused from its header without being read", "[io][limits][hostile]") {
  TempDir dir("sparse_png");
  const std::string path = dir / "huge.png";
  {
    std::ofstream out(path, std::ios::binary);
    out << png_header(16, 16);
  }
  fs::resize_file(path, uint64_t{1900} << 20);  // sparse: no disk used
  const std::string message = error_of([&] { medattn::io::read_image(path); });
  CHECK(message == "cannot read PNG '" + path + "': file too large for its header (1900.0 MB for 16x16 pixels; at most 64.0 MB)");
}

TEST_CASE("bounded reads refuse FIFOs, devices and files over the limit before reading", "[io][limits][hostile]") {
  TempDir dir("bounded");
  const std::string fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  const std::string zero = dir / "zero";
  fs::create_symlink("/dev/zero", zero);
  const std::string small = dir / "small";
  {
    std::ofstream(small) << "0123456789";
  }
  using medattn::ErrorKind;
  CHECK(error_of([&] { medattn::read_file_bounded(fifo, ErrorKind::kModel, "cannot load model", 100); }) ==
        "cannot load model '" + fifo + "': not a regular file (a FIFO)");
  CHECK(error_of([&] { medattn::read_file_bounded(zero, ErrorKind::kModel, "cannot load model", 100); }) ==
        "cannot load model '" + zero + "': not a regular file (a character device)");
  CHECK(error_of([&] { medattn::read_file_bounded(small, ErrorKind::kModel, "cannot load model", 9); }) ==
        "cannot load model '" + small + "': file too large (0.0 MB, limit 0.0 MB)");
  CHECK(medattn::read_file_bounded(small, ErrorKind::kModel, "x", 10) == "0123456789");
  CHECK(medattn::read_prefix(small, ErrorKind::kModel, "x", 4) == "0123");
  // The image readers refuse them too (tests/cli/hostile_inputs_test.cpp, under a timeout).
}

TEST_CASE("an OOD sidecar that is a FIFO or a link to /dev/zero is refused as such", "[io][limits][hostile][model]") {
  TempDir dir("ood_fifo");
  medattn::model::ModelCard card;
  card.ood.file = "ood.bin";
  const std::string ood = dir / "ood.bin";
  REQUIRE(::mkfifo(ood.c_str(), 0644) == 0);
  CHECK(error_of([&] { medattn::model::load_gate(dir.path.string(), card, 4); }) ==
        "cannot load model '" + ood + "': not a regular file (a FIFO)");
  fs::remove(ood);
  fs::create_symlink("/dev/zero", ood);
  CHECK(error_of([&] { medattn::model::load_gate(dir.path.string(), card, 4); }) ==
        "cannot load model '" + ood + "': not a regular file (a character device)");
  fs::remove(ood);
  {
    std::ofstream(ood) << "x";
  }
  fs::resize_file(ood, medattn::model::kMaxOodBytes + 1);  // sparse
  CHECK(error_of([&] { medattn::model::load_gate(dir.path.string(), card, 4); }) ==
        "cannot load model '" + ood + "': file too large (2048.0 MB, limit 2048.0 MB)");
}

TEST_CASE("an npz array that decompresses more than 100:1 past 64 MB is refused before allocation", "[io][npz][limits][hostile]") {
  TempDir dir("npz_bomb");
  const std::string path = dir / "bomb.npz";
  // 80 MiB of zero bytes as one uint8 array (deflate squeezes it about 1000:1).
  const uint64_t n = uint64_t{80} << 20;
  std::string header = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string npy = std::string("\x93NUMPY\x01\x00", 8);
  npy += static_cast<char>(header.size() & 0xFF);
  npy += static_cast<char>(header.size() >> 8);
  npy += header;
  npy.resize(npy.size() + n, '\0');
  int code = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  REQUIRE(z != nullptr);
  zip_source_t* src = zip_source_buffer(z, npy.data(), npy.size(), 0);
  REQUIRE(src != nullptr);
  const zip_int64_t index = zip_file_add(z, "x_train.npy", src, ZIP_FL_OVERWRITE);
  REQUIRE(index >= 0);
  REQUIRE(zip_set_file_compression(z, static_cast<zip_uint64_t>(index), ZIP_CM_DEFLATE, 9) == 0);
  REQUIRE(zip_close(z) == 0);
  REQUIRE(fs::file_size(path) < n / 100);
  const std::string message = error_of([&] { medattn::io::read_npz(path, {"x_train"}); });
  CHECK(message.rfind("cannot read npz '" + path + "': array 'x_train': decompresses to 80 MB from ", 0) == 0);
  CHECK(message.find("(more than 100:1 is refused as a decompression bomb)") != std::string::npos);

  // A small array compressed as much is still read (labels of all zeros are common).
  const std::string ok = dir / "small.npz";
  std::string small_header = "{'descr': '|u1', 'fortran_order': False, 'shape': (100000,), }";
  while ((10 + small_header.size() + 1) % 64 != 0) small_header += ' ';
  small_header += '\n';
  std::string small = std::string("\x93NUMPY\x01\x00", 8);
  small += static_cast<char>(small_header.size() & 0xFF);
  small += static_cast<char>(small_header.size() >> 8);
  small += small_header;
  small.resize(small.size() + 100000, '\0');
  z = zip_open(ok.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  REQUIRE(z != nullptr);
  src = zip_source_buffer(z, small.data(), small.size(), 0);
  REQUIRE(zip_file_add(z, "y.npy", src, ZIP_FL_OVERWRITE) >= 0);
  REQUIRE(zip_close(z) == 0);
  CHECK(medattn::io::read_npz(ok).at("y").size() == 100000);
}

TEST_CASE("an image larger than max_side is reduced at decode, keeping its size and full-resolution window", "[io][limits]") {
  TempDir dir("reduce");
  const std::string path = dir / "wide.png";
  cv::Mat big(1000, 3000, CV_16UC1, cv::Scalar(1000));
  big(cv::Rect(0, 0, 1, 1)) = 60000;  // one bright pixel: averaged away, but still the window's top
  REQUIRE(cv::imwrite(path, big));
  medattn::io::ReadOptions o;
  o.max_side = 600;
  const auto image = medattn::io::read_image(path, o);
  CHECK(image.width == 3000);
  CHECK(image.height == 1000);
  CHECK(image.pixels.cols == 600);
  CHECK(image.pixels.rows == 200);
  CHECK(image.window.center == Approx(1000 + (60000 - 1000) / 2.0 + 0.5));
  // Not reduced at or below the limit: exactly the pixels of an unlimited read.
  o.max_side = 3000;
  const auto same = medattn::io::read_image(path, o);
  const auto full = medattn::io::read_image(path);
  CHECK(same.pixels.cols == 3000);
  CHECK(cv::norm(same.pixels, full.pixels, cv::NORM_INF) == 0.0);
}

TEST_CASE("decided: a multi-page TIFF is read from its first page", "[io][decided]") {
  TempDir dir("multipage");
  const std::string path = dir / "pages.tif";
  const std::vector<cv::Mat> pages{cv::Mat(20, 30, CV_8UC1, cv::Scalar(10)), cv::Mat(40, 50, CV_8UC1, cv::Scalar(200))};
  REQUIRE(cv::imwritemulti(path, pages));
  const auto image = medattn::io::read_image(path);
  CHECK(image.format == medattn::io::FileFormat::kTiff);
  CHECK(image.pixels.cols == 30);
  CHECK(image.pixels.rows == 20);
  CHECK(image.pixels.at<float>(0, 0) == 10.0f);
}

TEST_CASE("decided: DICOM pixel data longer than Rows x Columns is read from its start, the rest ignored", "[io][dicom][decided]") {
  TempDir dir("dicom_long");
  const std::string path = dir / "long.dcm";
  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  char uid[100];
  ds->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ds->putAndInsertString(DCM_SOPInstanceUID, dcmGenerateUniqueIdentifier(uid));
  ds->putAndInsertString(DCM_Modality, "CR");
  ds->putAndInsertUint16(DCM_Rows, 2);
  ds->putAndInsertUint16(DCM_Columns, 2);
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds->putAndInsertUint16(DCM_BitsAllocated, 16);
  ds->putAndInsertUint16(DCM_BitsStored, 16);
  ds->putAndInsertUint16(DCM_HighBit, 15);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
  const std::vector<Uint16> words{1, 2, 3, 4, 9999, 9999, 9999, 9999};  // two frames' worth for one frame
  REQUIRE(ds->putAndInsertUint16Array(DCM_PixelData, words.data(), words.size()).good());
  REQUIRE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
  const auto image = medattn::io::read_image(path);
  REQUIRE(image.pixels.rows == 2);
  REQUIRE(image.pixels.cols == 2);
  CHECK(image.pixels.at<float>(0, 0) == 1.0f);
  CHECK(image.pixels.at<float>(0, 1) == 2.0f);
  CHECK(image.pixels.at<float>(1, 0) == 3.0f);
  CHECK(image.pixels.at<float>(1, 1) == 4.0f);
  CHECK(image.window.center == Approx(1 + 1.5 + 0.5));  // min-max of the image, not of the excess
}
