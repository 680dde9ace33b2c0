// DICOM attribute helpers and UIDs for the DICOM output (report/dicom_parts.h), and the public
// UID checks and header read of report/dicom_out.h.
#include "report/dicom_parts.h"

#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/oflog/oflog.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <mutex>

#include "core/error.h"

namespace fs = std::filesystem;

namespace medattn::report {
namespace dicom {
namespace {

// The attributes copied from the input: Patient (C.7.1.1), General Study (C.7.2.1) and Patient
// Study (C.7.2.2) modules, and the character set their text is in.
const DcmTagKey kCopied[] = {
    DCM_SpecificCharacterSet,
    // Patient
    DCM_PatientName, DCM_PatientID, DCM_IssuerOfPatientID, DCM_IssuerOfPatientIDQualifiersSequence,
    DCM_TypeOfPatientID, DCM_PatientBirthDate, DCM_PatientBirthTime, DCM_PatientSex,
    DCM_OtherPatientIDsSequence, DCM_OtherPatientNames, DCM_EthnicGroup, DCM_PatientComments,
    DCM_PatientSpeciesDescription, DCM_PatientSpeciesCodeSequence, DCM_PatientBreedDescription,
    DCM_PatientBreedCodeSequence, DCM_BreedRegistrationSequence, DCM_ResponsiblePerson,
    DCM_ResponsiblePersonRole, DCM_ResponsibleOrganization, DCM_PatientIdentityRemoved,
    DCM_DeidentificationMethod, DCM_DeidentificationMethodCodeSequence, DCM_QualityControlSubject,
    // General Study
    DCM_StudyInstanceUID, DCM_StudyDate, DCM_StudyTime, DCM_ReferringPhysicianName,
    DCM_ReferringPhysicianIdentificationSequence, DCM_ConsultingPhysicianName,
    DCM_ConsultingPhysicianIdentificationSequence, DCM_StudyID, DCM_AccessionNumber,
    DCM_IssuerOfAccessionNumberSequence, DCM_StudyDescription, DCM_PhysiciansOfRecord,
    DCM_PhysiciansOfRecordIdentificationSequence, DCM_NameOfPhysiciansReadingStudy,
    DCM_PhysiciansReadingStudyIdentificationSequence, DCM_RequestingServiceCodeSequence,
    DCM_ProcedureCodeSequence, DCM_ReasonForPerformedProcedureCodeSequence,
    // Patient Study
    DCM_AdmittingDiagnosesDescription, DCM_AdmittingDiagnosesCodeSequence, DCM_PatientAge,
    DCM_PatientSize, DCM_PatientWeight, DCM_PatientSizeCodeSequence, DCM_Occupation,
    DCM_AdditionalPatientHistory, DCM_AdmissionID, DCM_IssuerOfAdmissionIDSequence,
    DCM_PatientSexNeutered, DCM_SmokingStatus, DCM_PregnancyStatus, DCM_LastMenstrualDate,
    DCM_PatientState,
};
// Type 2 attributes of those modules: present (empty when the input lacks them).
const DcmTagKey kType2[] = {DCM_PatientName, DCM_PatientID,  DCM_PatientBirthDate, DCM_PatientSex,
                            DCM_StudyDate,   DCM_StudyTime,  DCM_ReferringPhysicianName,
                            DCM_StudyID,     DCM_AccessionNumber};

}  // namespace

void init_dcmtk_logging() {
  static std::once_flag once;
  std::call_once(once, [] { OFLog::getLogger("dcmtk").setLogLevel(OFLogger::OFF_LOG_LEVEL); });
}

std::string get(DcmItem* item, const DcmTagKey& tag) {
  OFString value;
  if (item->findAndGetOFStringArray(tag, value).good()) return value.c_str();
  return {};
}

void put(DcmItem* item, const DcmTagKey& tag, const std::string& value) {
  item->putAndInsertOFStringArray(tag, value.c_str());
}

// Text for an LO/SH/ST value: no backslash (the value separator), no control characters,
// at most `max` characters.
std::string clean_text(const std::string& s, size_t max) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out += (c == '\\' || u < 0x20 || u == 0x7f) ? '_' : c;
  }
  if (out.size() > max) out.resize(max);
  return out;
}

// The 128-bit number in the first 16 bytes of a hex digest, in decimal.
std::string hex_to_decimal(const std::string& hex) {
  unsigned __int128 v = 0;
  for (size_t i = 0; i < 32 && i < hex.size(); ++i) {
    const char c = hex[i];
    v = v * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  return digits;
}

void now_date_time(std::string& date, std::string& time) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  char d[16], h[16];
  std::strftime(d, sizeof(d), "%Y%m%d", &tm);
  std::strftime(h, sizeof(h), "%H%M%S", &tm);
  date = d;
  time = h;
}

// Saves `file` to `path` atomically: a temporary name beside it, then a rename.
void save_atomic(DcmFileFormat& file, const std::string& path, const std::string& source) {
  static std::atomic<unsigned> counter{0};
  const fs::path target(path);
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                                               std::to_string(counter++));
  std::error_code ec;
  fs::remove(tmp, ec);  // a leftover (or a planted link) is removed, never written through
  const OFCondition saved = file.saveFile(tmp.c_str(), EXS_LittleEndianExplicit, EET_ExplicitLength, EGL_recalcGL,
                                          EPD_withoutPadding, 0, 0, EWM_fileformat);
  if (saved.bad()) {
    fs::remove(tmp, ec);
    throw file_error(ErrorKind::kIOError, "cannot write DICOM", path, saved.text());
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw file_error(ErrorKind::kIOError, "cannot write DICOM", path, ec.message());
  }
}

// Copies the Patient and Study attributes of `src` into `dst` (replacing what is there), and
// makes the type 2 ones present.
void copy_patient_study(DcmItem* src, DcmItem* dst) {
  for (const auto& tag : kCopied) {
    DcmElement* element = nullptr;
    if (src->findAndGetElement(tag, element).good() && element != nullptr) {
      dst->insert(static_cast<DcmElement*>(element->clone()), /*replaceOld=*/true);
    }
  }
  for (const auto& tag : kType2) {
    if (!dst->tagExists(tag)) dst->insertEmptyElement(tag);
  }
}

void add_code(DcmItem* item, const DcmTagKey& sequence, const char* value, const char* scheme, const char* meaning) {
  DcmItem* code = nullptr;
  if (item->findOrCreateSequenceItem(sequence, code, -2).good() && code != nullptr) {
    put(code, DCM_CodeValue, value);
    put(code, DCM_CodingSchemeDesignator, scheme);
    put(code, DCM_CodeMeaning, meaning);
  }
}

}  // namespace dicom

using dicom::get;
using dicom::init_dcmtk_logging;

std::string default_uid_root() { return SITE_INSTANCE_UID_ROOT; }

bool valid_uid(const std::string& uid) {
  if (uid.empty() || uid.size() > 64) return false;
  size_t start = 0;
  for (;;) {
    const size_t dot = uid.find('.', start);
    const std::string part = uid.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty() || (part.size() > 1 && part[0] == '0')) return false;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
    }
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

void check_uid_root(const std::string& root) {
  if (!valid_uid(root) || root.size() > 47) {
    throw Error(ErrorKind::kInvalidArgument, "--uid-root '" + root +
                                                 "' is not a valid UID root (digits and dots, no empty or zero-led component, "
                                                 "at most 47 characters)");
  }
}

void read_dicom_identity(const std::string& path, DiagnosisRecord& r) {
  init_dcmtk_logging();
  DcmFileFormat file;
  // Only the header matters: long values (the pixels) are left on disk.
  if (file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, 256, ERM_autoDetect).bad()) return;
  DcmDataset* d = file.getDataset();
  r.study_uid = get(d, DCM_StudyInstanceUID);
  r.series_uid = get(d, DCM_SeriesInstanceUID);
  r.sop_uid = get(d, DCM_SOPInstanceUID);
  r.patient_id = get(d, DCM_PatientID);
  r.accession_number = get(d, DCM_AccessionNumber);
  r.modality = get(d, DCM_Modality);
}

}  // namespace medattn::report
