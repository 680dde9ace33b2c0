// DICOM Secondary Capture and Comprehensive SR output (report/dicom_out.h).
//
// What goes where (PS3.3):
//   SC Image IOD (A.8.1): Patient, General Study and Patient Study modules copied from the input;
//   a new General Series (Modality OT) per study and run; SC Equipment (ConversionType WSD);
//   General Image with ImageType DERIVED\SECONDARY, DerivationDescription, SourceImageSequence
//   and BurnedInAnnotation YES; Image Pixel RGB 8-bit at the input's rows and columns; SOP Common
//   with ContributingEquipmentSequence naming the algorithm (IHE AI Results).
//   Comprehensive SR IOD (A.35.3): the same Patient and Study modules; an SR Document Series per
//   study and run; VerificationFlag UNVERIFIED; the content tree below; the source image and the
//   SC listed in CurrentRequestedProcedureEvidenceSequence.
#include "report/dicom_out.h"

#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcvrda.h>
#include <dcmtk/dcmdata/dcvrtm.h>
#include <dcmtk/dcmsr/codes/dcm.h>
#include <dcmtk/dcmsr/dsrdoc.h>
#include <dcmtk/dcmsr/dsrimgvl.h>
#include <dcmtk/dcmsr/dsrnumvl.h>
#include <dcmtk/oflog/oflog.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <random>

#include "core/error.h"
#include "core/sha256.h"

namespace fs = std::filesystem;

namespace medattn::report {
namespace {

const char kWhat[] = "cannot write DICOM output for";

void init_dcmtk_logging() {
  static std::once_flag once;
  std::call_once(once, [] { OFLog::getLogger("dcmtk").setLogLevel(OFLogger::OFF_LOG_LEVEL); });
}

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

}  // namespace

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

  auto contributing = [&](DcmItem* d) {
    DcmItem* eq = nullptr;
    if (d->findOrCreateSequenceItem(DCM_ContributingEquipmentSequence, eq, -2).bad() || eq == nullptr) return;
    add_code(eq, DCM_PurposeOfReferenceCodeSequence, "109102", "DCM", "Processing Equipment");
    put(eq, DCM_Manufacturer, "medattn");
    put(eq, DCM_ManufacturerModelName, clean_text(options_.model_name, 64));
    put(eq, DCM_SoftwareVersions, clean_text(version, 64) + "\\" + clean_text(options_.model_id, 64));
    put(eq, DCM_ContributionDateTime, date + time);
    put(eq, DCM_ContributionDescription, clean_text(contribution, 1024));
  };

  // ---- Secondary Capture ----
  Written out;
  out.sc = stem + ".sc.dcm";
  out.sr = stem + ".sr.dcm";
  {
    DcmFileFormat file;
    DcmDataset* d = file.getDataset();
    copy_patient_study(in, d);
    put(d, DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    put(d, DCM_SOPInstanceUID, sc_sop);
    put(d, DCM_InstanceCreationDate, date);
    put(d, DCM_InstanceCreationTime, time);
    // General Series
    put(d, DCM_Modality, "OT");
    put(d, DCM_SeriesInstanceUID, sc_series);
    put(d, DCM_SeriesNumber, "9901");
    put(d, DCM_SeriesDescription, clean_text("medattn heatmap (" + options_.method + ") NOT FOR PRIMARY DIAGNOSIS", 64));
    // General Equipment, SC Equipment
    put(d, DCM_Manufacturer, "medattn");
    put(d, DCM_ConversionType, "WSD");
    put(d, DCM_SecondaryCaptureDeviceManufacturer, "medattn");
    put(d, DCM_SecondaryCaptureDeviceManufacturerModelName, clean_text(options_.model_name, 64));
    put(d, DCM_SecondaryCaptureDeviceSoftwareVersions, clean_text(version, 64));
    // General Image, SC Image
    put(d, DCM_InstanceNumber, std::to_string(++sc_count_));
    d->insertEmptyElement(DCM_PatientOrientation);
    // Type 2C (a paired body part): the input's, else empty (unknown).
    put(d, DCM_Laterality, get(in, DCM_Laterality));
    put(d, DCM_ContentDate, date);
    put(d, DCM_ContentTime, time);
    put(d, DCM_DateOfSecondaryCapture, date);
    put(d, DCM_TimeOfSecondaryCapture, time);
    put(d, DCM_ImageType, "DERIVED\\SECONDARY");
    put(d, DCM_DerivationDescription,
        clean_text("Attention heatmap (" + options_.method + ") of model " + options_.model_id +
                       " blended over the windowed input, with the diagnosis burned in; computed by " + version +
                       ". Not for primary diagnosis.",
                   1024));
    DcmItem* ref = nullptr;
    if (d->findOrCreateSequenceItem(DCM_SourceImageSequence, ref, -2).good() && ref != nullptr) {
      put(ref, DCM_ReferencedSOPClassUID, sop_class);
      put(ref, DCM_ReferencedSOPInstanceUID, sop);
      if (frames > 1) put(ref, DCM_ReferencedFrameNumber, std::to_string(options_.frame + 1));
      add_code(ref, DCM_PurposeOfReferenceCodeSequence, "121322", "DCM", "Source image for image processing operation");
    }
    put(d, DCM_BurnedInAnnotation, "YES");
    // A lossy-compressed input makes every image derived from it lossy too (C.7.6.1.1.5).
    if (get(in, DCM_LossyImageCompression) == "01") {
      put(d, DCM_LossyImageCompression, "01");
      for (const auto& tag : {DCM_LossyImageCompressionRatio, DCM_LossyImageCompressionMethod}) {
        const std::string v = get(in, tag);
        if (!v.empty()) put(d, tag, v);
      }
    }
    contributing(d);
    // Image Pixel: RGB, 8 bits, interleaved.
    cv::Mat bgr = overlay;
    if (bgr.rows != rows || bgr.cols != cols) cv::resize(overlay, bgr, cv::Size(cols, rows), 0, 0, cv::INTER_AREA);
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    if (!rgb.isContinuous()) rgb = rgb.clone();
    d->putAndInsertUint16(DCM_SamplesPerPixel, 3);
    put(d, DCM_PhotometricInterpretation, "RGB");
    d->putAndInsertUint16(DCM_PlanarConfiguration, 0);
    d->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(rows));
    d->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(cols));
    d->putAndInsertUint16(DCM_BitsAllocated, 8);
    d->putAndInsertUint16(DCM_BitsStored, 8);
    d->putAndInsertUint16(DCM_HighBit, 7);
    d->putAndInsertUint16(DCM_PixelRepresentation, 0);
    d->putAndInsertUint8Array(DCM_PixelData, rgb.ptr<Uint8>(0), static_cast<unsigned long>(rgb.total() * 3));
    save_atomic(file, out.sc, source);
    ++written_;
  }

  // ---- Comprehensive SR ----
  {
    DSRDocument doc(DSRTypes::DT_ComprehensiveSR);
    auto& tree = doc.getTree();
    auto check = [&](OFCondition c, const char* what) {
      if (c.bad()) throw file_error(ErrorKind::kCorruption, kWhat, source, std::string(what) + ": " + c.text());
    };
    const bool abstained = !r.abstained.empty();
    tree.addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
    check(tree.getCurrentContentItem().setConceptName(DSRCodedEntryValue("18748-4", "LN", "Diagnostic imaging report")),
          "report title");
    auto text = [&](DSRTypes::E_AddMode mode, const DSRCodedEntryValue& concept, const std::string& value) {
      tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text, mode);
      check(tree.getCurrentContentItem().setConceptName(concept), "concept name");
      check(tree.getCurrentContentItem().setStringValue(value.empty() ? "-" : value.c_str(), OFFalse), "text value");
    };
    auto number = [&](const DSRCodedEntryValue& concept, double value, int digits) {
      tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Num, DSRTypes::AM_afterCurrent);
      check(tree.getCurrentContentItem().setConceptName(concept), "concept name");
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.*f", digits, std::round(value * std::pow(10.0, digits)) / std::pow(10.0, digits));
      check(tree.getCurrentContentItem().setNumericValue(
                DSRNumericMeasurementValue(buf, DSRCodedEntryValue("1", "UCUM", "no units"))),
            "numeric value");
    };
    text(DSRTypes::AM_belowCurrent, CODE_DCM_AlgorithmName, options_.model_name);
    text(DSRTypes::AM_afterCurrent, CODE_DCM_AlgorithmVersion, options_.model_id + " weights SHA-256 " + options_.weights_sha256);
    if (abstained) {
      text(DSRTypes::AM_afterCurrent, DSRCodedEntryValue("ABSTAINED", "99MEDATTN", "Abstention"), r.abstained);
    } else {
      text(DSRTypes::AM_afterCurrent, CODE_DCM_Finding, r.diagnosis);
    }
    for (size_t i = 0; i < r.probabilities.size(); ++i) {
      number(DSRCodedEntryValue("P" + std::to_string(i), "99MEDATTN",
                                clean_text("Probability of " + r.probabilities[i].first, 64).c_str()),
             r.probabilities[i].second, 6);
    }
    text(DSRTypes::AM_afterCurrent, DSRCodedEntryValue("METHOD", "99MEDATTN", "Heatmap method"), options_.method);
    if (r.ood_score) number(DSRCodedEntryValue("OODSCORE", "99MEDATTN", "Out-of-distribution score"), *r.ood_score, 4);
    if (!r.warning.empty()) text(DSRTypes::AM_afterCurrent, DSRCodedEntryValue("WARNING", "99MEDATTN", "Warning"), r.warning);
    // The image diagnosed, and the overlay.
    {
      tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Image, DSRTypes::AM_afterCurrent);
      check(tree.getCurrentContentItem().setConceptName(CODE_DCM_SourceOfMeasurement), "concept name");
      DSRImageReferenceValue image(sop_class.c_str(), sop.c_str());
      if (frames > 1) image.getFrameList().addItem(static_cast<Sint32>(options_.frame + 1));
      check(tree.getCurrentContentItem().setImageReference(image), "source image reference");
      tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Image, DSRTypes::AM_afterCurrent);
      check(tree.getCurrentContentItem().setConceptName(DSRCodedEntryValue("OVERLAY", "99MEDATTN", "Heatmap overlay")),
            "concept name");
      check(tree.getCurrentContentItem().setImageReference(
                DSRImageReferenceValue(UID_SecondaryCaptureImageStorage, sc_sop.c_str())),
            "overlay reference");
    }
    // The local codes' scheme, identified as PS3.3 C.12.1.1.2 asks for a private one.
    auto& schemes = doc.getCodingSchemeIdentification();
    if (schemes.addItem("99MEDATTN").good()) {
      schemes.setCodingSchemeName("medattn local codes");
      schemes.setCodingSchemeResponsibleOrganization("medattn");
    }
    auto& evidence = doc.getCurrentRequestedProcedureEvidence();
    evidence.addItem(study.c_str(), series.c_str(), sop_class.c_str(), sop.c_str());
    evidence.addItem(study.c_str(), sc_series.c_str(), UID_SecondaryCaptureImageStorage, sc_sop.c_str());
    doc.setManufacturer("medattn");
    doc.setManufacturerModelName(clean_text(options_.model_name, 64).c_str());
    doc.setSoftwareVersions(clean_text(version, 64).c_str());
    doc.setSeriesDescription(clean_text("medattn findings (" + options_.method + ") NOT FOR PRIMARY DIAGNOSIS", 64).c_str());
    doc.setSeriesNumber("9902");
    doc.setInstanceNumber(std::to_string(++sr_count_).c_str());
    doc.setContentDate(date.c_str());
    doc.setContentTime(time.c_str());
    DcmFileFormat file;
    DcmDataset* d = file.getDataset();
    check(doc.write(*d), "SR document");
    // The identity: the input's patient and study, this run's series, the UIDs made above.
    copy_patient_study(in, d);
    put(d, DCM_SeriesInstanceUID, sr_series);
    put(d, DCM_SOPInstanceUID, sr_sop);
    put(d, DCM_InstanceCreationDate, date);
    put(d, DCM_InstanceCreationTime, time);
    put(d, DCM_VerificationFlag, "UNVERIFIED");
    contributing(d);
    save_atomic(file, out.sr, source);
    ++written_;
  }
  return out;
}

}  // namespace medattn::report
