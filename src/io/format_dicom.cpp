// The registry row of DICOM: its content test and a sample file. The reader is read_dicom()
// (io/dicom.cpp), which checks the header's size, frame count and pixel limit itself before
// the pixel data is read.
#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dctk.h>

#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/formats.h"

namespace medattn::io {
namespace {

// Part 10 files: "DICM" after the 128-byte preamble. The preamble may itself hold another
// format's header (pydicom's test files carry a TIFF header there, so that TIFF readers can
// open them), which is why this row comes first. Files without the preamble (older or "raw"
// dumps) start directly with a little-endian group 0x0002 or 0x0008 element; no other
// format's magic starts with those bytes.
bool sniff_dicom(const std::vector<unsigned char>& b, const std::string&) {
  if (b.size() >= 132 && b[128] == 'D' && b[129] == 'I' && b[130] == 'C' && b[131] == 'M') return true;
  if (b.size() < 8) return false;
  const int group = b[0] | (b[1] << 8);
  if (group != 0x0002 && group != 0x0008) return false;
  const int element = b[2] | (b[3] << 8);
  if (element > 0x0100) return false;
  // Explicit VR: two upper-case letters; implicit VR: a 4-byte length that is small.
  const bool explicit_vr = std::isupper(b[4]) && std::isupper(b[5]);
  const uint32_t implicit_len = b[4] | (b[5] << 8) | (b[6] << 16) | (uint32_t(b[7]) << 24);
  return explicit_vr || implicit_len < 1024;
}

// An 8x8 CT slice, 12 bits stored in 16, signed, with a rescale and a window.
void write_dicom_sample(const std::string& path) {
  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  char uid[100];
  ds->putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ds->putAndInsertString(DCM_SOPInstanceUID, dcmGenerateUniqueIdentifier(uid));
  ds->putAndInsertString(DCM_Modality, "CT");
  ds->putAndInsertUint16(DCM_Rows, 8);
  ds->putAndInsertUint16(DCM_Columns, 8);
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds->putAndInsertUint16(DCM_BitsAllocated, 16);
  ds->putAndInsertUint16(DCM_BitsStored, 12);
  ds->putAndInsertUint16(DCM_HighBit, 11);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 1);
  ds->putAndInsertString(DCM_RescaleSlope, "0.5");
  ds->putAndInsertString(DCM_RescaleIntercept, "-1024");
  ds->putAndInsertString(DCM_WindowCenter, "40");
  ds->putAndInsertString(DCM_WindowWidth, "400");
  std::vector<Uint16> px(64);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<Uint16>((i * 37) % 4096);
  ds->putAndInsertUint16Array(DCM_PixelData, px.data(), px.size());
  if (file.saveFile(path.c_str(), EXS_LittleEndianExplicit).bad())
    throw file_error(ErrorKind::kIOError, "cannot write", path, "DCMTK could not write it");
}

}  // namespace

InputFormat dicom_format() {
  return {FileFormat::kDicom, "dicom", "DICOM", {".dcm", ".dicom", ".ima"}, sniff_dicom, nullptr,
          [](const std::string& path, FileFormat, const ReadOptions& options) { return read_dicom(path, options); }, "",
          write_dicom_sample};
}

}  // namespace medattn::io
