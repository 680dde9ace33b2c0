// DICOM Secondary Capture and Comprehensive SR output (report/dicom_out.h): DicomWriter checks
// the input, makes this run's UIDs and writes the SC (dicom_sc.cpp, PS3.3 A.8.1) and the SR
// (dicom_sr.cpp, A.35.3); attribute helpers and UID checks in dicom_attrs.cpp.
#include "report/dicom_out.h"

#include <dcmtk/dcmdata/dcdict.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "core/sha256.h"
#include "report/dicom_parts.h"

namespace fs = std::filesystem;

namespace medattn::report {

using namespace dicom;

DicomWriter::DicomWriter(DicomOutOptions options) : options_(std::move(options)) {
  init_dcmtk_logging();
  root_ = options_.uid_root.empty() ? default_uid_root() : options_.uid_root;
  check_uid_root(root_);
}

// "<root>.<digits>", at most 64 characters: the digits are the decimal of 128 bits of
// SHA-256(seed, key) with a seed, else of SHA-256(128 random bits, key).
std::string DicomWriter::make_uid(const std::string& key) {
  std::string material;
  if (!options_.uid_seed.empty()) {
    material = "medattn-uid\n" + options_.uid_seed + "\n" + key;
  } else {
    static std::random_device device;
    for (int i = 0; i < 4; ++i) material += std::to_string(device()) + ".";
    material += std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "\n" + key;
  }
  std::string digits = hex_to_decimal(sha256_hex(material));
  const size_t room = 64 - root_.size() - 1;
  if (digits.size() > room) digits.resize(room);
  return root_ + "." + digits;
}

DicomWriter::Written DicomWriter::write(const std::string& source, const std::string& stem, const cv::Mat& overlay,
                                        const DiagnosisRecord& r) {
  if (!dcmDataDict.isDictionaryLoaded()) {
    throw file_error(ErrorKind::kUnsupported, kWhat, source, "DCMTK data dictionary not found (set DCMDICTPATH)");
  }
  DcmFileFormat input;
  if (input.loadFile(source.c_str(), EXS_Unknown, EGL_noChange, 256, ERM_autoDetect).bad()) {
    throw file_error(ErrorKind::kIOError, kWhat, source, "the input could not be read again");
  }
  DcmDataset* in = input.getDataset();
  const std::string study = get(in, DCM_StudyInstanceUID);
  const std::string series = get(in, DCM_SeriesInstanceUID);
  const std::string sop_class = get(in, DCM_SOPClassUID);
  const std::string sop = get(in, DCM_SOPInstanceUID);
  // The results go into the input's study, next to the image they describe: without these
  // there is nowhere to file them and nothing to reference.
  const std::pair<const char*, const std::string*> needed[] = {
      {"StudyInstanceUID", &study}, {"SeriesInstanceUID", &series}, {"SOPClassUID", &sop_class}, {"SOPInstanceUID", &sop}};
  for (const auto& [name, value] : needed) {
    if (value->empty()) throw file_error(ErrorKind::kCorruption, kWhat, source, std::string("the input has no ") + name);
    if (!valid_uid(*value)) {
      throw file_error(ErrorKind::kCorruption, kWhat, source,
                       std::string("the input's ") + name + " is not a valid UID (" + value->substr(0, 80) + ")");
    }
  }
  Sint32 frames = 1;
  if (in->findAndGetSint32(DCM_NumberOfFrames, frames).bad() || frames < 1) frames = 1;
  const int rows = r.height, cols = r.width;
  if (rows < 1 || cols < 1 || rows > 65535 || cols > 65535 || overlay.empty() || overlay.type() != CV_8UC3) {
    throw file_error(ErrorKind::kInvalidArgument, kWhat, source, "no overlay of the input's size");
  }

  std::string date, time;
  now_date_time(date, time);
  const std::string version = "medattn " + options_.software_version;
  // The output's name, not its folder: the same input gives the same UIDs whatever DIR is.
  const std::string key = sop + "\n" + std::to_string(options_.frame) + "\n" + fs::path(stem).filename().string();
  auto series_uid = [&](std::map<std::string, std::string>& per_study, const char* kind) {
    auto it = per_study.find(study);
    if (it == per_study.end()) it = per_study.emplace(study, make_uid(std::string(kind) + "\n" + study)).first;
    return it->second;
  };
  const std::string sc_series = series_uid(sc_series_, "sc-series");
  const std::string sr_series = series_uid(sr_series_, "sr-series");
  const std::string sc_sop = make_uid("sc\n" + key);
  const std::string sr_sop = make_uid("sr\n" + key);
  const std::string contribution = "Diagnosis and heatmap (" + options_.method + ") by model " + options_.model_name +
                                   ", weights SHA-256 " + options_.weights_sha256 + ", computed by " + version;

  // In Derivation's order (report/dicom_parts.h).
  const Derivation x{source, in, study, series, sop_class, sop, frames, rows, cols, date, time, version,
                     sc_series, sr_series, sc_sop, sr_sop, contribution, &options_};
  Written out;
  out.sc = stem + ".sc.dcm";
  out.sr = stem + ".sr.dcm";
  write_sc(x, overlay, sc_count_, out.sc);
  ++written_;
  write_sr(x, r, sr_count_, out.sr);
  ++written_;
  return out;
}

}  // namespace medattn::report
