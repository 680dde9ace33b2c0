// read_dicom(): DICOM images through DCMTK's dcmdata and its codecs.
//
// DCMTK parses the file and decompresses the pixel data (RLE, JPEG baseline/extended/
// lossless, JPEG-LS) into native little-endian form; the pixel values, modality rescale,
// window and colour model are then interpreted here, so that every step is explicit:
//   stored value --(mask to BitsStored, sign-extend)--> --(slope, intercept in float)-->
//   physical value (e.g. HU) --(window)--> display.
#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/image.h"

namespace medattn::io {
namespace {

const char kWhat[] = "cannot read DICOM";

// Registers the decompression codecs once per process and silences DCMTK's logger (it
// writes warnings to stderr by default; the library never prints).
void init_dcmtk() {
  static std::once_flag once;
  std::call_once(once, [] {
    OFLog::getLogger("dcmtk").setLogLevel(OFLogger::OFF_LOG_LEVEL);
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

std::string xfer_description(E_TransferSyntax xfer) {
  const DcmXfer x(xfer);
  return std::string(x.getXferName()) + " (" + x.getXferID() + ")";
}

std::string plural(long n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// Reads a required unsigned short attribute; throws naming it when absent.
Uint16 required_us(DcmDataset* dataset, const DcmTagKey& tag, const char* name,
                   const std::string& path) {
  Uint16 value = 0;
  if (dataset->findAndGetUint16(tag, value).bad())
    throw file_error(ErrorKind::kCorruption, kWhat, path, std::string("missing ") + name);
  return value;
}

Uint16 optional_us(DcmDataset* dataset, const DcmTagKey& tag, Uint16 fallback) {
  Uint16 value = 0;
  return dataset->findAndGetUint16(tag, value).good() ? value : fallback;
}

// Converts YCbCr (full range, PS3.3 C.7.6.3.1.2) to RGB in place; `offset` is the
// chroma zero (128 for 8-bit), `max_value` the largest representable value.
void ybr_full_to_rgb(float* ybr, size_t pixels, double offset, double max_value) {
  for (size_t i = 0; i < pixels; ++i) {
    const double y = ybr[3 * i], cb = ybr[3 * i + 1] - offset, cr = ybr[3 * i + 2] - offset;
    const double r = y + 1.402 * cr;
    const double g = y - 0.344136 * cb - 0.714136 * cr;
    const double b = y + 1.772 * cb;
    ybr[3 * i] = static_cast<float>(std::clamp(std::round(r), 0.0, max_value));
    ybr[3 * i + 1] = static_cast<float>(std::clamp(std::round(g), 0.0, max_value));
    ybr[3 * i + 2] = static_cast<float>(std::clamp(std::round(b), 0.0, max_value));
  }
}

}  // namespace

Image read_dicom(const std::string& path, const ReadOptions& options) {
  init_dcmtk();
  if (!dcmDataDict.isDictionaryLoaded())
    throw file_error(ErrorKind::kUnsupported, kWhat, path,
                     "DCMTK data dictionary not found (set DCMDICTPATH)");

  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw file_error(ErrorKind::kNotFound, kWhat, path, "no such file");

  // ERM_autoDetect: files with the 128-byte preamble and meta header, and bare datasets.
  DcmFileFormat file;
  const OFCondition loaded =
      file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
  if (loaded.bad()) {
    if (loaded == EC_StreamNotifyClient)  // DCMTK's "premature end of stream"
      throw file_error(ErrorKind::kCorruption, kWhat, path,
                       "file truncated (premature end of data)");
    throw file_error(ErrorKind::kCorruption, kWhat, path,
                     std::string("not a valid DICOM file (") + loaded.text() + ")");
  }
  DcmDataset* dataset = file.getDataset();
  const E_TransferSyntax original_xfer = dataset->getOriginalXfer();
  {
    // Limits first: decompression would allocate what the header claims.
    Uint16 claimed_rows = 0, claimed_cols = 0;
    Sint32 claimed_frames = 1;
    if (dataset->findAndGetUint16(DCM_Rows, claimed_rows).good() &&
        dataset->findAndGetUint16(DCM_Columns, claimed_cols).good() && claimed_rows > 0 && claimed_cols > 0) {
      check_pixel_limit(claimed_cols, claimed_rows, options, kWhat, path);
    }
    if (dataset->findAndGetSint32(DCM_NumberOfFrames, claimed_frames).good() && claimed_frames > options.max_frames) {
      throw file_error(ErrorKind::kUnsupported, kWhat, path,
                       "too many frames (" + std::to_string(claimed_frames) + ", limit " +
                           std::to_string(options.max_frames) + "; see --max-frames)");
    }
  }

  DcmElement* pixel_element = nullptr;
  if (dataset->findAndGetElement(DCM_PixelData, pixel_element).bad() || pixel_element == nullptr)
    throw file_error(ErrorKind::kUnsupported, kWhat, path, "no pixel data");

  // Decompress into native form. A transfer syntax without a registered codec (JPEG 2000,
  // MPEG, ...) is unsupported; a codec that fails means the compressed data is broken.
  const DcmXfer xfer_info(original_xfer);
  const bool compressed = xfer_info.isEncapsulated();
  if (compressed) {
    if (!DcmCodecList::canChangeCoding(original_xfer, EXS_LittleEndianExplicit))
      throw file_error(ErrorKind::kUnsupported, kWhat, path,
                       "transfer syntax " + xfer_description(original_xfer) +
                           " cannot be decoded by this build");
    const OFCondition decoded = dataset->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (decoded.bad() || !dataset->canWriteXfer(EXS_LittleEndianExplicit))
      throw file_error(ErrorKind::kCorruption, kWhat, path,
                       "cannot decode " + xfer_description(original_xfer) + " pixel data (" +
                           decoded.text() + ")");
  }
  if (dataset->findAndGetElement(DCM_PixelData, pixel_element).bad() || pixel_element == nullptr)
    throw file_error(ErrorKind::kUnsupported, kWhat, path, "no pixel data");

  // Image Pixel module.
  const int rows = required_us(dataset, DCM_Rows, "Rows", path);
  const int cols = required_us(dataset, DCM_Columns, "Columns", path);
  const int bits_allocated = required_us(dataset, DCM_BitsAllocated, "BitsAllocated", path);
  const int bits_stored = optional_us(dataset, DCM_BitsStored, static_cast<Uint16>(bits_allocated));
  const int high_bit = optional_us(dataset, DCM_HighBit, static_cast<Uint16>(bits_stored - 1));
  const bool is_signed = optional_us(dataset, DCM_PixelRepresentation, 0) == 1;
  const int samples = optional_us(dataset, DCM_SamplesPerPixel, 1);
  const int planar = optional_us(dataset, DCM_PlanarConfiguration, 0);
  OFString photometric_of;
  dataset->findAndGetOFString(DCM_PhotometricInterpretation, photometric_of);
  std::string photometric = photometric_of.c_str();
  photometric.erase(std::remove(photometric.begin(), photometric.end(), ' '), photometric.end());
  Sint32 frames_attr = 1;
  if (dataset->findAndGetSint32(DCM_NumberOfFrames, frames_attr).bad() || frames_attr < 1)
    frames_attr = 1;
  const long frames = frames_attr;

  if (rows == 0 || cols == 0)
    throw file_error(ErrorKind::kCorruption, kWhat, path,
                     "empty image (" + std::to_string(cols) + "x" + std::to_string(rows) + ")");
  if (bits_allocated != 8 && bits_allocated != 16 && bits_allocated != 32)
    throw file_error(ErrorKind::kUnsupported, kWhat, path,
                     "BitsAllocated " + std::to_string(bits_allocated) +
                         " is not supported (expected 8, 16 or 32)");
  if (bits_stored < 1 || bits_stored > bits_allocated || high_bit < bits_stored - 1 ||
      high_bit >= bits_allocated)
    throw file_error(ErrorKind::kCorruption, kWhat, path,
                     "inconsistent BitsStored " + std::to_string(bits_stored) + " / HighBit " +
                         std::to_string(high_bit) + " for BitsAllocated " +
                         std::to_string(bits_allocated));
  if (samples != 1 && samples != 3)
    throw file_error(
        ErrorKind::kUnsupported, kWhat, path,
        "SamplesPerPixel " + std::to_string(samples) + " is not supported (expected 1 or 3)");
  // Uncompressed YBR_FULL_422 stores two luma values per chroma pair (Y Y Cb Cr); after
  // decompression the codec has already expanded it to full resolution.
  const bool subsampled_422 = samples == 3 && !compressed && photometric == "YBR_FULL_422";
  if (subsampled_422 && cols % 2 != 0)
    throw file_error(ErrorKind::kCorruption, kWhat, path, "YBR_FULL_422 with odd Columns");
  if (samples == 3 && photometric != "RGB" && photometric != "YBR_FULL" &&
      photometric != "YBR_FULL_422")
    throw file_error(ErrorKind::kUnsupported, kWhat, path,
                     "colour model " + photometric + " is not supported");
  if (samples == 1 && photometric == "PALETTECOLOR")
    throw file_error(ErrorKind::kUnsupported, kWhat, path,
                     "colour model PALETTE COLOR is not supported");

  if (options.frame < 0 || options.frame >= frames)
    throw file_error(ErrorKind::kInvalidArgument, kWhat, path,
                     "frame " + std::to_string(options.frame) + " out of range (file has " +
                         plural(frames, "frame") + ")");

  // Check the length before touching the values.
  const uint64_t bytes_per_sample = static_cast<uint64_t>(bits_allocated / 8);
  const uint64_t pixels = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  const uint64_t samples_per_frame = subsampled_422 ? pixels * 2 : pixels * samples;
  const uint64_t frame_bytes = samples_per_frame * bytes_per_sample;
  const uint64_t expected = frame_bytes * static_cast<uint64_t>(frames);
  const uint64_t actual = pixel_element->getLength();
  if (actual < expected)
    throw file_error(ErrorKind::kCorruption, kWhat, path,
                     "pixel data truncated (got " + std::to_string(actual) + " bytes, expected " +
                         std::to_string(expected) + ")");

  // Native pixel data in host byte order: DCMTK swaps OW words from big-endian files.
  const unsigned char* frame_bytes_ptr = nullptr;
  std::vector<unsigned char> swapped;
  if (bits_allocated == 8) {
    Uint8* data = nullptr;
    if (pixel_element->getUint8Array(data).bad() || data == nullptr)
      throw file_error(ErrorKind::kCorruption, kWhat, path, "cannot access pixel data");
    frame_bytes_ptr = data + frame_bytes * options.frame;
  } else {
    Uint16* data = nullptr;
    if (pixel_element->getUint16Array(data).bad() || data == nullptr)
      throw file_error(ErrorKind::kCorruption, kWhat, path, "cannot access pixel data");
    frame_bytes_ptr = reinterpret_cast<const unsigned char*>(data) + frame_bytes * options.frame;
    if (bits_allocated == 32 && DcmXfer(original_xfer).isBigEndian()) {
      // The words are in host order but a big-endian 32-bit value has its high word first.
      swapped.assign(frame_bytes_ptr, frame_bytes_ptr + frame_bytes);
      auto* words = reinterpret_cast<Uint16*>(swapped.data());
      for (uint64_t i = 0; i + 1 < frame_bytes / 2; i += 2) std::swap(words[i], words[i + 1]);
      frame_bytes_ptr = swapped.data();
    }
  }

  // Stored values: the BitsStored bits ending at HighBit, sign-extended when signed.
  const int shift = high_bit + 1 - bits_stored;
  const uint64_t mask = bits_stored >= 64 ? ~0ull : ((1ull << bits_stored) - 1);
  const uint64_t sign_bit = 1ull << (bits_stored - 1);
  auto stored_value = [&](uint64_t index) -> double {
    uint64_t raw = 0;
    const unsigned char* p = frame_bytes_ptr + index * bytes_per_sample;
    if (bits_allocated == 8) {
      raw = p[0];
    } else if (bits_allocated == 16) {
      Uint16 v;
      std::memcpy(&v, p, 2);
      raw = v;
    } else {
      Uint32 v;
      std::memcpy(&v, p, 4);
      raw = v;
    }
    uint64_t v = (raw >> shift) & mask;
    if (is_signed && (v & sign_bit)) return static_cast<double>(static_cast<int64_t>(v | ~mask));
    return static_cast<double>(v);
  };

  Image image;
  image.format = FileFormat::kDicom;
  image.bits_stored = bits_stored;
  image.invert = photometric == "MONOCHROME1";
  OFString modality;
  if (dataset->findAndGetOFString(DCM_Modality, modality).good()) image.modality = modality.c_str();
  OFString body_part;
  if (dataset->findAndGetOFString(DCM_BodyPartExamined, body_part).good()) image.body_part = body_part.c_str();
  auto text = [&](const DcmTagKey& tag) {
    OFString value;
    return dataset->findAndGetOFString(tag, value).good() ? std::string(value.c_str()) : std::string();
  };
  image.patient_age = patient_age(text(DCM_PatientAge), text(DCM_PatientBirthDate), text(DCM_StudyDate),
                                  text(DCM_SeriesDate), text(DCM_AcquisitionDate), text(DCM_ContentDate));

  if (samples == 1) {
    // Modality rescale in double, stored as float: fractional slopes are kept.
    Float64 slope = 1.0, intercept = 0.0;
    if (dataset->findAndGetFloat64(DCM_RescaleSlope, slope).bad() || !std::isfinite(slope) ||
        slope == 0.0)
      slope = 1.0;
    if (dataset->findAndGetFloat64(DCM_RescaleIntercept, intercept).bad() ||
        !std::isfinite(intercept))
      intercept = 0.0;
    image.pixels.create(rows, cols, CV_32FC1);
    float* out = image.pixels.ptr<float>(0);
    for (uint64_t i = 0; i < pixels; ++i)
      out[i] = static_cast<float>(stored_value(i) * slope + intercept);

    Float64 center = 0.0, width = 0.0;
    if (options.window) {
      image.window = *options.window;
    } else if (dataset->findAndGetFloat64(DCM_WindowCenter, center, 0).good() &&
               dataset->findAndGetFloat64(DCM_WindowWidth, width, 0).good() &&
               std::isfinite(center) && std::isfinite(width) && width > 0.0) {
      image.window = Window{center, width};
    } else {
      double lo = 0.0, hi = 0.0;
      cv::minMaxLoc(image.pixels, &lo, &hi);
      image.window = window_from_range(lo, hi);
    }
    return image;
  }

  // Colour: gather R,G,B (or Y,Cb,Cr) per pixel, whatever the planar configuration.
  std::vector<float> interleaved(pixels * 3);
  if (subsampled_422) {
    for (uint64_t i = 0; i < pixels; i += 2) {
      const uint64_t base = i * 2;  // Y1 Y2 Cb Cr for pixels i and i+1
      const float cb = static_cast<float>(stored_value(base + 2));
      const float cr = static_cast<float>(stored_value(base + 3));
      for (uint64_t k = 0; k < 2; ++k) {
        interleaved[3 * (i + k)] = static_cast<float>(stored_value(base + k));
        interleaved[3 * (i + k) + 1] = cb;
        interleaved[3 * (i + k) + 2] = cr;
      }
    }
  } else {
    for (uint64_t i = 0; i < pixels; ++i)
      for (uint64_t s = 0; s < 3; ++s)
        interleaved[3 * i + s] =
            static_cast<float>(stored_value(planar == 1 ? s * pixels + i : 3 * i + s));
  }
  const double max_value = static_cast<double>(mask);
  if (photometric != "RGB")
    ybr_full_to_rgb(interleaved.data(), pixels, static_cast<double>(1ull << (bits_stored - 1)),
                    max_value);
  cv::Mat rgb(rows, cols, CV_32FC3, interleaved.data());
  cv::cvtColor(rgb, image.pixels, cv::COLOR_RGB2BGR);
  // Colour images are shown as stored, like 8-bit PNGs: the full range of BitsStored.
  image.window = options.window ? *options.window : window_from_range(0.0, max_value);
  return image;
}

}  // namespace medattn::io
