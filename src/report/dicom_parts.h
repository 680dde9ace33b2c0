// What the DICOM writers (dicom_out.cpp, dicom_sc.cpp, dicom_sr.cpp, dicom_attrs.cpp) share:
// attribute helpers, and what the Secondary Capture and the SR of one input have in common.
// Internal to report/.
#pragma once

#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <opencv2/core.hpp>
#include <string>

#include "report/dicom_out.h"

namespace medattn::report::dicom {

inline constexpr char kWhat[] = "cannot write DICOM output for";

// Silences DCMTK's own logging (once per process): the library never prints.
void init_dcmtk_logging();

// The value of `tag` in `item` as text (several values joined by backslashes); empty when absent.
std::string get(DcmItem* item, const DcmTagKey& tag);
// Sets `tag` in `item` to `value`, replacing what is there.
void put(DcmItem* item, const DcmTagKey& tag, const std::string& value);

// Text for an LO/SH/ST value: no backslash (the value separator), no control characters,
// at most `max` characters.
std::string clean_text(const std::string& s, size_t max);

// The 128-bit number in the first 16 bytes of a hex digest, in decimal.
std::string hex_to_decimal(const std::string& hex);

// The local date (YYYYMMDD) and time (HHMMSS) now.
void now_date_time(std::string& date, std::string& time);

// Saves `file` to `path` atomically: a temporary name beside it, then a rename. Throws
// medattn::Error(kIOError) naming `path`.
void save_atomic(DcmFileFormat& file, const std::string& path, const std::string& source);

// Copies the Patient and Study attributes of `src` into `dst` (replacing what is there), and
// makes the type 2 ones present.
void copy_patient_study(DcmItem* src, DcmItem* dst);

// Appends a code item (value, scheme, meaning) to `sequence` in `item`.
void add_code(DcmItem* item, const DcmTagKey& sequence, const char* value, const char* scheme, const char* meaning);

// What the SC and the SR of one input share (DicomWriter::write makes it): the input, its
// identifiers, this run's UIDs and the texts that name the software.
struct Derivation {
  std::string source;  // the input's path
  DcmDataset* in;      // the input's dataset
  std::string study, series, sop_class, sop;  // the input's UIDs, all valid
  Sint32 frames;       // the input's NumberOfFrames (1 when absent)
  int rows, cols;      // the input's size
  std::string date, time, version;  // now; "medattn <version>"
  std::string sc_series, sr_series, sc_sop, sr_sop;  // this run's UIDs
  std::string contribution;  // ContributionDescription
  const DicomOutOptions* options;
};

// SOP Common's ContributingEquipmentSequence naming the algorithm (IHE AI Results).
void add_contributing_equipment(DcmItem* d, const Derivation& x);

// The Secondary Capture of `overlay` (CV_8UC3, BGR; resized to the input's rows and columns
// when it differs), instance number ++sc_count, written atomically to `path`.
void write_sc(const Derivation& x, const cv::Mat& overlay, int& sc_count, const std::string& path);

// The Comprehensive SR of record `r`, instance number ++sr_count, written atomically to `path`.
// Throws medattn::Error(kCorruption) naming the input when DCMTK refuses a content item.
void write_sr(const Derivation& x, const DiagnosisRecord& r, int& sr_count, const std::string& path);

}  // namespace medattn::report::dicom
