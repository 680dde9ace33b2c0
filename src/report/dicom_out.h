// Results back into the patient's study (`diagnose --dicom-out DIR`): per DICOM input, a
// Secondary Capture image of the overlay and a Comprehensive SR with the diagnosis, both in the
// input's study, each in a new series of this run. Written with DCMTK (dcmdata, dcmsr).
// Torch-free; the library never prints.
#pragma once

#include <map>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "report/record.h"

namespace medattn::report {

struct DicomOutOptions {
  std::string dir;       // REQUIRES: exists and is writable
  std::string uid_root;  // UIDs are "<root>.<digits>"; empty: DCMTK's SITE_INSTANCE_UID_ROOT
  // Non-empty: every UID is derived from this seed and the input (its SOP Instance UID, its
  // frame, its output name), so a rerun gives the same UIDs; empty: random UIDs.
  std::string uid_seed;
  std::string method;           // the heatmap method (saliency, rollout, ...)
  std::string model_name;       // the card's name
  std::string model_id;         // "name@sha256-prefix"
  std::string weights_sha256;   // the full hash of weights.bin
  std::string software_version; // e.g. "0.1.0"
  int frame = 0;                // the frame diagnosed (0-based), referenced for multi-frame inputs
};

// "1.2.276.0.7230010.3.1.4" (DCMTK's root for instance UIDs).
std::string default_uid_root();

// Throws medattn::Error(kInvalidArgument) unless `root` is a valid UID prefix (digits and
// dots, no empty or zero-led component) short enough to leave 16 digits for the suffix.
void check_uid_root(const std::string& root);

// True when `uid` is a valid DICOM UID: 1..64 characters, components of digits separated by
// single dots, no component with a leading zero.
bool valid_uid(const std::string& uid);

// The identifiers of a DICOM input as the record carries them (record.h). Reads the header
// only; fields that are absent stay empty. Never throws (a file that cannot be read gives
// nothing).
void read_dicom_identity(const std::string& path, DiagnosisRecord& record);

class DicomWriter {
 public:
  explicit DicomWriter(DicomOutOptions options);

  struct Written {
    std::string sc;  // DIR/<stem>.sc.dcm
    std::string sr;  // DIR/<stem>.sr.dcm
  };
  // Writes the SC (the overlay, resized to the input's rows and columns when it differs) and
  // the SR for record `r` of the DICOM file `source`, atomically, as `<stem>.sc.dcm` and
  // `<stem>.sr.dcm` where `stem` is the output path without suffix (inside DIR). `overlay`:
  // CV_8UC3, BGR. Throws medattn::Error naming the input when the input cannot be referenced
  // (no StudyInstanceUID, an invalid UID, ...) or a file cannot be written.
  Written write(const std::string& source, const std::string& stem, const cv::Mat& overlay, const DiagnosisRecord& r);

  int written() const { return written_; }  // objects written so far (SC and SR each count)

 private:
  std::string make_uid(const std::string& key);
  DicomOutOptions options_;
  std::string root_;
  std::map<std::string, std::string> sc_series_, sr_series_;  // per study UID, for this run
  int sc_count_ = 0, sr_count_ = 0, written_ = 0;
};

}  // namespace medattn::report
