// read_dicom(): files written here with DCMTK (every layout and error path), plus the
// public test files in ../shared/data when present ([shared]).
#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrleerg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpls/djencode.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

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

// Describes a small synthetic DICOM image.
struct Spec {
  int rows = 2, cols = 2, frames = 1, samples = 1, planar = 0;
  int bits_allocated = 16, bits_stored = 16, high_bit = 15, pixel_representation = 0;
  std::string photometric = "MONOCHROME2";
  std::string modality = "CT";
  std::string slope, intercept, center, width;  // empty: attribute absent
  std::string patient_age, birth_date, study_date, content_date;  // empty: attribute absent
  std::vector<uint16_t> words;                  // pixel data for 16 bits allocated
  std::vector<uint8_t> bytes;                   // pixel data for 8 bits allocated
};

void fill(DcmDataset* ds, const Spec& s) {
  char uid[100];
  REQUIRE(ds->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage).good());
  REQUIRE(ds->putAndInsertString(DCM_SOPInstanceUID, dcmGenerateUniqueIdentifier(uid)).good());
  ds->putAndInsertString(DCM_Modality, s.modality.c_str());
  ds->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(s.rows));
  ds->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(s.cols));
  ds->putAndInsertUint16(DCM_SamplesPerPixel, static_cast<Uint16>(s.samples));
  if (s.samples > 1) ds->putAndInsertUint16(DCM_PlanarConfiguration, static_cast<Uint16>(s.planar));
  ds->putAndInsertString(DCM_PhotometricInterpretation, s.photometric.c_str());
  ds->putAndInsertUint16(DCM_BitsAllocated, static_cast<Uint16>(s.bits_allocated));
  ds->putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(s.bits_stored));
  ds->putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(s.high_bit));
  ds->putAndInsertUint16(DCM_PixelRepresentation, static_cast<Uint16>(s.pixel_representation));
  if (s.frames > 1) ds->putAndInsertString(DCM_NumberOfFrames, std::to_string(s.frames).c_str());
  if (!s.slope.empty()) ds->putAndInsertString(DCM_RescaleSlope, s.slope.c_str());
  if (!s.intercept.empty()) ds->putAndInsertString(DCM_RescaleIntercept, s.intercept.c_str());
  if (!s.center.empty()) ds->putAndInsertString(DCM_WindowCenter, s.center.c_str());
  if (!s.width.empty()) ds->putAndInsertString(DCM_WindowWidth, s.width.c_str());
  if (!s.patient_age.empty()) ds->putAndInsertString(DCM_PatientAge, s.patient_age.c_str());
  if (!s.birth_date.empty()) ds->putAndInsertString(DCM_PatientBirthDate, s.birth_date.c_str());
  if (!s.study_date.empty()) ds->putAndInsertString(DCM_StudyDate, s.study_date.c_str());
  if (!s.content_date.empty()) ds->putAndInsertString(DCM_ContentDate, s.content_date.c_str());
  if (s.bits_allocated == 8) {
    REQUIRE(ds->putAndInsertUint8Array(DCM_PixelData, s.bytes.data(), s.bytes.size()).good());
  } else {
    REQUIRE(ds->putAndInsertUint16Array(DCM_PixelData, s.words.data(), s.words.size()).good());
  }
}

// Writes `spec` as a DICOM Part 10 file (preamble, meta header) in transfer syntax `xfer`.
std::string write_dicom(const TempDir& dir, const std::string& name, const Spec& spec,
                        E_TransferSyntax xfer = EXS_LittleEndianExplicit) {
  DcmFileFormat file;
  fill(file.getDataset(), spec);
  if (DcmXfer(xfer).isEncapsulated())
    REQUIRE(file.getDataset()->chooseRepresentation(xfer, nullptr).good());
  const std::string path = dir.file(name);
  REQUIRE(file.saveFile(path.c_str(), xfer).good());
  return path;
}

// Compressed pixel data that no codec here can decode: `payload` as the only fragment.
std::string write_encapsulated(const TempDir& dir, const std::string& name, E_TransferSyntax xfer,
                               const std::vector<Uint8>& payload) {
  Spec spec;
  spec.words = {1, 2, 3, 4};
  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  fill(ds, spec);
  auto* sequence = new DcmPixelSequence(DcmTag(DCM_PixelData, EVR_OB));
  sequence->insert(new DcmPixelItem(DcmTag(DCM_Item, EVR_OB)));  // empty offset table
  auto* fragment = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
  REQUIRE(fragment->putUint8Array(payload.data(), payload.size()).good());
  sequence->insert(fragment);
  auto* pixel_data = new DcmPixelData(DCM_PixelData);
  pixel_data->putOriginalRepresentation(xfer, nullptr, sequence);
  REQUIRE(ds->insert(pixel_data, /*replaceOld=*/true).good());
  const std::string path = dir.file(name);
  REQUIRE(file.saveFile(path.c_str(), xfer).good());
  return path;
}

}  // namespace

TEST_CASE("read_dicom: signed 16-bit with a fractional rescale, exactly", "[io][dicom]") {
  TempDir dir;
  Spec spec;
  spec.pixel_representation = 1;
  spec.slope = "0.5";
  spec.intercept = "-1024.25";
  const std::vector<int16_t> stored = {-2000, -1, 0, 3001};
  for (int16_t v : stored) spec.words.push_back(static_cast<uint16_t>(v));
  const std::string path = write_dicom(dir, "signed.dcm", spec);

  const Image image = read_image(path);
  REQUIRE(image.pixels.type() == CV_32FC1);
  REQUIRE(image.pixels.rows == 2);
  REQUIRE(image.pixels.cols == 2);
  // v * 0.5 - 1024.25, all exact in float.
  CHECK(values(image.pixels) == std::vector<float>{-2024.25f, -1024.75f, -1024.25f, 476.25f});
  CHECK(image.format == FileFormat::kDicom);
  CHECK(image.modality == "CT");
  CHECK(image.bits_stored == 16);
  CHECK_FALSE(image.invert);
  // No window in the file: min-max of the rescaled values.
  CHECK(image.window.center == window_from_range(-2024.25, 476.25).center);
  CHECK(image.window.width == window_from_range(-2024.25, 476.25).width);
}

TEST_CASE("read_dicom: BitsStored below BitsAllocated masks and sign-extends", "[io][dicom]") {
  TempDir dir;
  Spec spec;
  spec.bits_stored = 12;
  spec.high_bit = 11;
  spec.words = {0xF123, 0x0FFF, 0x0800, 0x07FF};  // top nibble is not part of the value

  SECTION("unsigned") {
    const Image image = read_image(write_dicom(dir, "u12.dcm", spec));
    CHECK(values(image.pixels) == std::vector<float>{0x123, 0xFFF, 0x800, 0x7FF});
    CHECK(image.bits_stored == 12);
  }
  SECTION("signed") {
    spec.pixel_representation = 1;
    const Image image = read_image(write_dicom(dir, "s12.dcm", spec));
    CHECK(values(image.pixels) == std::vector<float>{0x123, -1, -2048, 2047});
  }
}

TEST_CASE("read_dicom: every uncompressed and lossless encoding gives the same pixels",
          "[io][dicom]") {
  TempDir dir;
  DcmRLEEncoderRegistration::registerCodecs();
  DJEncoderRegistration::registerCodecs();
  DJLSEncoderRegistration::registerCodecs();
  Spec spec;
  spec.rows = 3;
  spec.cols = 4;
  spec.pixel_representation = 1;
  spec.center = "40";
  spec.width = "400";
  for (int i = 0; i < 12; ++i) spec.words.push_back(static_cast<uint16_t>(int16_t(i * 311 - 1500)));
  const Image reference = read_image(write_dicom(dir, "explicit.dcm", spec));
  std::vector<float> expected;
  for (int i = 0; i < 12; ++i) expected.push_back(static_cast<float>(i * 311 - 1500));
  REQUIRE(values(reference.pixels) == expected);

  const std::pair<const char*, E_TransferSyntax> encodings[] = {
      {"implicit.dcm", EXS_LittleEndianImplicit},
      {"bigendian.dcm", EXS_BigEndianExplicit},
      {"rle.dcm", EXS_RLELossless},
      {"jpeg_lossless.dcm", EXS_JPEGProcess14SV1},
      {"jpeg_ls.dcm", EXS_JPEGLSLossless},
  };
  for (const auto& [name, xfer] : encodings) {
    INFO(name);
    const Image image = read_image(write_dicom(dir, name, spec, xfer));
    CHECK(values(image.pixels) == expected);
    CHECK(image.window.center == 40.0);
    CHECK(image.window.width == 400.0);
  }
}

TEST_CASE("read_dicom: a dataset without preamble and meta header", "[io][dicom]") {
  TempDir dir;
  Spec spec;
  spec.words = {10, 20, 30, 40};
  DcmFileFormat file;
  fill(file.getDataset(), spec);
  const std::string path = dir.file("raw_dataset");
  REQUIRE(file.saveFile(path.c_str(), EXS_LittleEndianImplicit, EET_ExplicitLength, EGL_recalcGL,
                        EPD_noChange, 0, 0, EWM_dataset)
              .good());
  REQUIRE(sniff_format(path) == FileFormat::kDicom);
  CHECK(values(read_image(path).pixels) == std::vector<float>{10, 20, 30, 40});
}

TEST_CASE("read_dicom: a DICOM with a TIFF header in its preamble is read as DICOM",
          "[io][dicom]") {
  TempDir dir;
  Spec spec;
  spec.words = {5, 6, 7, 8};
  const std::string path = write_dicom(dir, "dual.dcm", spec);
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.write("II*\0", 4);  // as in pydicom's test files
  }
  CHECK(values(read_image(path).pixels) == std::vector<float>{5, 6, 7, 8});
}

TEST_CASE("read_dicom: MONOCHROME1 sets invert and to_display inverts", "[io][dicom]") {
  TempDir dir;
  Spec spec;
  spec.bits_allocated = 8;
  spec.bits_stored = 8;
  spec.high_bit = 7;
  spec.photometric = "MONOCHROME1";
  spec.center = "128";
  spec.width = "256";
  spec.bytes = {0, 100, 200, 255};
  const Image image = read_image(write_dicom(dir, "mono1.dcm", spec));
  CHECK(image.invert);
  CHECK(image.bits_stored == 8);
  CHECK(values(image.pixels) == std::vector<float>{0, 100, 200, 255});
  // Window 128/256: v -> (v - 127.5) / 255 + 0.5, then 1 - that.
  const std::vector<float> display = values(to_display(image));
  CHECK(display == std::vector<float>{1.0f, static_cast<float>(1.0 - (100 - 127.5) / 255 - 0.5),
                                      static_cast<float>(1.0 - (200 - 127.5) / 255 - 0.5), 0.0f});
}

TEST_CASE("read_dicom: multi-frame files and --frame", "[io][dicom]") {
  TempDir dir;
  Spec spec;
  spec.frames = 3;
  for (int f = 0; f < 3; ++f)
    for (int i = 0; i < 4; ++i) spec.words.push_back(static_cast<uint16_t>(100 * f + i));
  const std::string path = write_dicom(dir, "frames.dcm", spec);

  CHECK(values(read_image(path).pixels) == std::vector<float>{0, 1, 2, 3});
  ReadOptions options;
  options.frame = 2;
  const Image last = read_image(path, options);
  CHECK(values(last.pixels) == std::vector<float>{200, 201, 202, 203});
  // min-max of the chosen frame only
  CHECK(last.window.center == window_from_range(200, 203).center);

  options.frame = 3;
  require_error([&] { read_image(path, options); }, ErrorKind::kInvalidArgument,
                "cannot read DICOM '" + path + "': frame 3 out of range (file has 3 frames)");
  options.frame = -1;
  require_error([&] { read_image(path, options); }, ErrorKind::kInvalidArgument,
                "cannot read DICOM '" + path + "': frame -1 out of range (file has 3 frames)");

  Spec single;
  single.words = {1, 2, 3, 4};
  const std::string one = write_dicom(dir, "one.dcm", single);
  options.frame = 5;
  require_error([&] { read_image(one, options); }, ErrorKind::kInvalidArgument,
                "cannot read DICOM '" + one + "': frame 5 out of range (file has 1 frame)");
}

TEST_CASE("read_dicom: window from the file, from the options, else min-max", "[io][dicom]") {
  TempDir dir;
  Spec spec;
  spec.words = {0, 10, 20, 1000};

  SECTION("first of several values in the file") {
    spec.center = "40\\-600";
    spec.width = "400\\1500";
    const Image image = read_image(write_dicom(dir, "w.dcm", spec));
    CHECK(image.window.center == 40.0);
    CHECK(image.window.width == 400.0);
  }
  SECTION("options override the file") {
    spec.center = "40";
    spec.width = "400";
    ReadOptions options;
    options.window = Window{-600.0, 1500.0};
    const Image image = read_image(write_dicom(dir, "w.dcm", spec), options);
    CHECK(image.window.center == -600.0);
    CHECK(image.window.width == 1500.0);
  }
  SECTION("a zero width in the file is ignored") {
    spec.center = "40";
    spec.width = "0";
    const Image image = read_image(write_dicom(dir, "w.dcm", spec));
    CHECK(image.window.center == 500.5);  // [0, 1000] -> 0..1
    CHECK(image.window.width == 1001.0);
  }
  SECTION("no window in the file") {
    const Image image = read_image(write_dicom(dir, "w.dcm", spec));
    CHECK(image.window.center == 500.5);
    CHECK(image.window.width == 1001.0);
    CHECK(values(to_display(image)) == std::vector<float>{0.0f, 0.01f, 0.02f, 1.0f});
  }
}

TEST_CASE("read_dicom: colour images come out as BGR", "[io][dicom]") {
  TempDir dir;
  Spec spec;
  spec.rows = 1;
  spec.cols = 2;
  spec.samples = 3;
  spec.bits_allocated = 8;
  spec.bits_stored = 8;
  spec.high_bit = 7;
  spec.modality = "OT";

  SECTION("RGB, colour-by-pixel") {
    spec.photometric = "RGB";
    spec.bytes = {255, 0, 10, 1, 2, 3};  // (R,G,B) per pixel
    const Image image = read_image(write_dicom(dir, "rgb.dcm", spec));
    REQUIRE(image.pixels.type() == CV_32FC3);
    CHECK(values(image.pixels) == std::vector<float>{10, 0, 255, 3, 2, 1});
    CHECK(image.window.center == window_from_range(0, 255).center);
    CHECK(image.window.width == 256.0);
  }
  SECTION("RGB, colour-by-plane, RLE") {
    DcmRLEEncoderRegistration::registerCodecs();
    spec.photometric = "RGB";
    spec.planar = 1;
    spec.bytes = {255, 1, 0, 2, 10, 3};  // R plane, G plane, B plane
    const Image image = read_image(write_dicom(dir, "rgb_planar.dcm", spec, EXS_RLELossless));
    CHECK(values(image.pixels) == std::vector<float>{10, 0, 255, 3, 2, 1});
  }
  SECTION("YBR_FULL is converted") {
    spec.photometric = "YBR_FULL";
    spec.bytes = {100, 128, 228, 128, 128, 128};
    const Image image = read_image(write_dicom(dir, "ybr.dcm", spec));
    // R = 100 + 1.402*100 = 240.2, G = 100 - 0.714136*100 = 28.59, B = 100.
    CHECK(values(image.pixels) == std::vector<float>{100, 29, 240, 128, 128, 128});
  }
  SECTION("uncompressed YBR_FULL_422 shares chroma between pixel pairs") {
    spec.photometric = "YBR_FULL_422";
    spec.bytes = {100, 50, 128, 228};  // Y1 Y2 Cb Cr
    const Image image = read_image(write_dicom(dir, "ybr422.dcm", spec));
    CHECK(values(image.pixels) == std::vector<float>{100, 29, 240, 50, 0, 190});
  }
}

TEST_CASE("read_dicom: broken and unsupported files give one clear error", "[io][dicom]") {
  TempDir dir;

  SECTION("pixel data shorter than Rows x Columns") {
    Spec spec;
    spec.rows = 4;
    spec.cols = 4;
    spec.words = {1, 2, 3, 4, 5};
    const std::string path = write_dicom(dir, "short.dcm", spec);
    require_error(
        [&] { read_image(path); }, ErrorKind::kCorruption,
        "cannot read DICOM '" + path + "': pixel data truncated (got 10 bytes, expected 32)");
  }
  SECTION("file cut inside the pixel data") {
    Spec spec;
    spec.rows = 64;
    spec.cols = 64;
    spec.words.assign(64 * 64, 7);
    const std::string path = write_dicom(dir, "cut.dcm", spec);
    fs::resize_file(path, fs::file_size(path) - 1000);
    require_error([&] { read_image(path); }, ErrorKind::kCorruption,
                  "cannot read DICOM '" + path + "': file truncated (premature end of data)");
  }
  SECTION("no pixel data") {
    DcmFileFormat file;
    file.getDataset()->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    file.getDataset()->putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4");
    file.getDataset()->putAndInsertString(DCM_Modality, "SR");
    const std::string path = dir.file("nopixels.dcm");
    REQUIRE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
    require_error([&] { read_image(path); }, ErrorKind::kUnsupported,
                  "cannot read DICOM '" + path + "': no pixel data");
  }
  SECTION("JPEG 2000 names the transfer syntax") {
    const std::string path = write_encapsulated(dir, "j2k.dcm", EXS_JPEG2000LosslessOnly,
                                                {0xFF, 0x4F, 0xFF, 0x51, 0, 0});
    require_error([&] { read_image(path); }, ErrorKind::kUnsupported,
                  "cannot read DICOM '" + path +
                      "': transfer syntax JPEG 2000 (Lossless only) (1.2.840.10008.1.2.4.90) "
                      "cannot be decoded by this build");
  }
  SECTION("broken JPEG data names the transfer syntax") {
    const std::string path =
        write_encapsulated(dir, "badjpeg.dcm", EXS_JPEGProcess1, {0xFF, 0xD8, 0xFF, 0xD9});
    require_error([&] { read_image(path); }, ErrorKind::kCorruption,
                  "cannot read DICOM '" + path +
                      "': cannot decode JPEG Baseline (1.2.840.10008.1.2.4.50) pixel data "
                      "(Pixel representation cannot be changed)");
  }
  SECTION("unsupported BitsAllocated") {
    Spec spec;
    spec.bits_allocated = 8;
    spec.bits_stored = 8;
    spec.high_bit = 7;
    spec.bytes = {1, 2, 3, 4};
    DcmFileFormat file;
    fill(file.getDataset(), spec);
    file.getDataset()->putAndInsertUint16(DCM_BitsAllocated, 1);
    file.getDataset()->putAndInsertUint16(DCM_BitsStored, 1);
    file.getDataset()->putAndInsertUint16(DCM_HighBit, 0);
    const std::string path = dir.file("bits1.dcm");
    REQUIRE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
    require_error([&] { read_image(path); }, ErrorKind::kUnsupported,
                  "cannot read DICOM '" + path +
                      "': BitsAllocated 1 is not supported (expected 8, 16 or 32)");
  }
  SECTION("garbage after a DICOM preamble") {
    const std::string path = dir.file("garbage.dcm");
    {
      std::ofstream out(path, std::ios::binary);
      out << std::string(128, '\0') << "DICM";
      for (int i = 0; i < 500; ++i) out.put(static_cast<char>((i * 37) % 251));
    }
    REQUIRE(sniff_format(path) == FileFormat::kDicom);
    // The bytes after "DICM" announce an element longer than the file.
    require_error([&] { read_image(path); }, ErrorKind::kCorruption,
                  "cannot read DICOM '" + path + "': file truncated (premature end of data)");
  }
  SECTION("garbage through read_image is not an image") {
    const std::string path = dir.file("garbage.dcm");
    {
      std::ofstream out(path, std::ios::binary);
      for (int i = 0; i < 500; ++i) out.put(static_cast<char>(200 + (i * 37) % 50));
    }
    require_error([&] { read_image(path); }, ErrorKind::kUnsupported,
                  "cannot read image '" + path + "': not a supported image (unknown format; supported: DICOM, PNG, JPEG, TIFF, BMP, NIfTI)");
  }
}

TEST_CASE("read_dicom: a header claiming a huge image or too many frames is refused before decoding", "[io][dicom][limits]") {
  TempDir dir;
  Spec huge;
  huge.rows = huge.cols = 20000;
  huge.words = {1, 2, 3, 4};  // far fewer than claimed: the limit must come first
  const std::string a = write_dicom(dir, "huge.dcm", huge);
  require_error([&] { read_image(a); }, ErrorKind::kUnsupported,
                "cannot read DICOM '" + a + "': image too large (20000x20000 = 400.0 megapixels, limit 100.0; see --max-pixels)");
  Spec frames;
  frames.frames = 100000;
  frames.words = {1, 2, 3, 4};
  const std::string b = write_dicom(dir, "frames.dcm", frames);
  require_error([&] { read_image(b); }, ErrorKind::kUnsupported,
                "cannot read DICOM '" + b + "': too many frames (100000, limit 4096; see --max-frames)");
}

TEST_CASE("read_dicom: several threads read at once", "[io][dicom]") {
  TempDir dir;
  DcmRLEEncoderRegistration::registerCodecs();
  Spec spec;
  spec.rows = 32;
  spec.cols = 32;
  for (int i = 0; i < 32 * 32; ++i) spec.words.push_back(static_cast<uint16_t>(i * 7 % 4096));
  const std::string plain = write_dicom(dir, "plain.dcm", spec);
  const std::string rle = write_dicom(dir, "rle.dcm", spec, EXS_RLELossless);
  const std::vector<float> expected = values(read_image(plain).pixels);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        try {
          if (values(read_image((i + t) % 2 ? rle : plain).pixels) != expected) ++mismatches;
        } catch (const Error&) {
          ++mismatches;
        }
      }
    });
  for (auto& thread : threads) thread.join();
  CHECK(mismatches == 0);
}

TEST_CASE("read_dicom: public test files", "[io][dicom][shared]") {
  const std::string root = shared_data_dir();
  MEDATTN_NEEDS(!root.empty(), "the shared data (" MEDATTN_SHARED_DATA ")");
  const std::string pydicom = root + "/dicom/pydicom/";

  SECTION("CT_small: Hounsfield units after intercept -1024") {
    const Image ct = read_image(pydicom + "CT_small.dcm");
    REQUIRE(ct.pixels.rows == 128);
    REQUIRE(ct.pixels.cols == 128);
    double lo = 0, hi = 0;
    cv::minMaxLoc(ct.pixels, &lo, &hi);
    CHECK(lo == -896.0);  // stored minimum 128, air around the phantom
    CHECK(hi == 1167.0);
    CHECK(lo > -1100.0);
    CHECK(lo < -850.0);
    CHECK(ct.pixels.at<float>(0, 0) == 175 - 1024);
    CHECK(ct.modality == "CT");
    // The file has no Window Center/Width: the window is its min-max.
    CHECK(ct.window.center == window_from_range(-896, 1167).center);
    CHECK(ct.window.width == window_from_range(-896, 1167).width);
  }
  SECTION("MR_small in four encodings: identical pixels, window from the file") {
    const Image reference = read_image(pydicom + "MR_small.dcm");
    REQUIRE(reference.pixels.rows == 64);
    REQUIRE(reference.pixels.cols == 64);
    CHECK(reference.window.center == 600.0);
    CHECK(reference.window.width == 1600.0);
    CHECK(reference.modality == "MR");
    for (const char* name :
         {"MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm"}) {
      INFO(name);
      const Image other = read_image(pydicom + name);
      REQUIRE(other.pixels.size() == reference.pixels.size());
      CHECK(cv::countNonZero(other.pixels != reference.pixels) == 0);
      CHECK(other.window.center == 600.0);
    }
  }
  SECTION("SC_rgb_rle: RGB bands") {
    const Image rgb = read_image(pydicom + "SC_rgb_rle.dcm");
    REQUIRE(rgb.pixels.type() == CV_32FC3);
    REQUIRE(rgb.pixels.rows == 100);
    REQUIRE(rgb.pixels.cols == 100);
    CHECK(rgb.pixels.at<cv::Vec3f>(5, 50) == cv::Vec3f(0, 0, 255));  // red, as BGR
    CHECK(rgb.pixels.at<cv::Vec3f>(25, 50) == cv::Vec3f(0, 255, 0));
    CHECK(rgb.pixels.at<cv::Vec3f>(45, 50) == cv::Vec3f(255, 0, 0));
    CHECK(rgb.pixels.at<cv::Vec3f>(75, 50) == cv::Vec3f(64, 64, 64));
  }
  SECTION("JPEG-lossy: 12-bit JPEG extended") {
    const Image jpeg = read_image(pydicom + "JPEG-lossy.dcm");
    REQUIRE(jpeg.pixels.rows == 1024);
    REQUIRE(jpeg.pixels.cols == 256);
    CHECK(jpeg.bits_stored == 12);
    CHECK(jpeg.pixels.at<float>(420, 140) == 244.0f);
    CHECK(jpeg.pixels.at<float>(230, 120) == 95.0f);
  }
  SECTION("Siemens mosaic: read as one 2D image") {
    const Image mosaic = read_image(root + "/dicom/nibabel/siemens_mr_0.dcm");
    REQUIRE(mosaic.pixels.rows == 256);
    REQUIRE(mosaic.pixels.cols == 256);
    double lo = 0, hi = 0;
    cv::minMaxLoc(mosaic.pixels, &lo, &hi);
    CHECK(lo >= 0.0);
    CHECK(hi <= 4095.0);  // 12 bits stored
    CHECK(mosaic.window.center == 468.0);
    CHECK(mosaic.window.width == 1016.0);
  }
}

TEST_CASE("read_dicom: the patient's age from PatientAge, else from the birth and study dates", "[io][dicom]") {
  TempDir dir;
  Spec spec;
  spec.words = {1, 2, 3, 4};
  CHECK_FALSE(read_image(write_dicom(dir, "none.dcm", spec)).patient_age);
  spec.patient_age = "054Y";
  spec.birth_date = "20200101";  // PatientAge wins over the dates
  spec.study_date = "20230101";
  auto age = read_image(write_dicom(dir, "age.dcm", spec)).patient_age;
  REQUIRE(age);
  CHECK(age->years == 54.0);
  CHECK(age->source == "PatientAge '054Y'");
  spec.patient_age.clear();
  age = read_image(write_dicom(dir, "dates.dcm", spec)).patient_age;
  REQUIRE(age);
  CHECK(age->years == Approx(1096.0 / 365.25));  // 2020 is a leap year: 366 + 365 + 365 days
  CHECK(age->source == "PatientBirthDate 20200101 and StudyDate 20230101");
  spec.study_date.clear();
  spec.content_date = "20200701";
  age = read_image(write_dicom(dir, "content.dcm", spec)).patient_age;
  REQUIRE(age);
  CHECK(age->years == Approx(182.0 / 365.25));
  CHECK(age->source == "PatientBirthDate 20200101 and ContentDate 20200701");
}
