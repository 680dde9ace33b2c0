// diagnose --dicom-out: the Secondary Capture and SR written per DICOM input, read back with
// DCMTK and checked against the input and the JSON record, and validated by dicom3tools'
// dciodvfy.
#include <dcmtk/config/osconfig.h>  // must come first
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/dsrdoc.h>
#include <dcmtk/dcmsr/dsrimgvl.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/batch.h"
#include "support/cli.h"
#include "support/requires.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using clitest::q;
using nlohmann::json;

namespace {

// The Patient and Study attributes the writer copies (a subset every test file may carry).
const DcmTagKey kPatientStudy[] = {DCM_PatientName, DCM_PatientID,  DCM_PatientBirthDate, DCM_PatientSex,
                                   DCM_StudyInstanceUID, DCM_StudyDate, DCM_StudyTime, DCM_ReferringPhysicianName,
                                   DCM_StudyID, DCM_AccessionNumber, DCM_StudyDescription, DCM_PatientAge,
                                   DCM_SpecificCharacterSet};

struct Source {
  std::string sop_class = UID_CTImageStorage;
  std::string modality = "CT";
  std::string photometric = "MONOCHROME2";
  int rows = 64, cols = 64, frames = 1, bits = 16;
  bool with_study = true;
  std::string patient_name = "Doe^Jane";
  std::string charset;  // SpecificCharacterSet; empty: none
  std::string sop_uid;  // empty: generated
  bool flat = false;    // every pixel the same (the scope check abstains)
};

std::string new_uid() {
  char buf[100];
  return dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
}

// Writes a DICOM image with a full Patient and Study and a gradient with a bright square.
void write_source(const fs::path& path, const Source& s) {
  DcmFileFormat file;
  DcmDataset* d = file.getDataset();
  if (!s.charset.empty()) d->putAndInsertString(DCM_SpecificCharacterSet, s.charset.c_str());
  d->putAndInsertString(DCM_SOPClassUID, s.sop_class.c_str());
  d->putAndInsertString(DCM_SOPInstanceUID, (s.sop_uid.empty() ? new_uid() : s.sop_uid).c_str());
  d->putAndInsertString(DCM_PatientName, s.patient_name.c_str());
  d->putAndInsertString(DCM_PatientID, "MA-0042");
  d->putAndInsertString(DCM_PatientBirthDate, "19700101");
  d->putAndInsertString(DCM_PatientSex, "F");
  d->putAndInsertString(DCM_PatientAge, "056Y");
  if (s.with_study) d->putAndInsertString(DCM_StudyInstanceUID, new_uid().c_str());
  d->putAndInsertString(DCM_StudyDate, "20260102");
  d->putAndInsertString(DCM_StudyTime, "101500");
  d->putAndInsertString(DCM_ReferringPhysicianName, "House^Gregory");
  d->putAndInsertString(DCM_StudyID, "S17");
  d->putAndInsertString(DCM_AccessionNumber, "ACC123");
  d->putAndInsertString(DCM_StudyDescription, "CHEST");
  d->putAndInsertString(DCM_SeriesInstanceUID, new_uid().c_str());
  d->putAndInsertString(DCM_SeriesNumber, "1");
  d->putAndInsertString(DCM_InstanceNumber, "1");
  d->putAndInsertString(DCM_Modality, s.modality.c_str());
  d->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(s.rows));
  d->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(s.cols));
  d->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  d->putAndInsertString(DCM_PhotometricInterpretation, s.photometric.c_str());
  d->putAndInsertUint16(DCM_BitsAllocated, static_cast<Uint16>(s.bits));
  d->putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(s.bits == 16 ? 12 : 8));
  d->putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(s.bits == 16 ? 11 : 7));
  d->putAndInsertUint16(DCM_PixelRepresentation, 0);
  if (s.frames > 1) d->putAndInsertString(DCM_NumberOfFrames, std::to_string(s.frames).c_str());
  const size_t n = static_cast<size_t>(s.rows) * s.cols * s.frames;
  if (s.bits == 16) {
    std::vector<Uint16> v(n);
    for (size_t i = 0; i < n; ++i) {
      const int y = static_cast<int>(i / s.cols % s.rows), x = static_cast<int>(i % s.cols);
      v[i] = s.flat ? 100 : static_cast<Uint16>(x * 20 + ((y > s.rows / 3 && y < s.rows / 2 && x > s.cols / 3 && x < s.cols / 2) ? 3000 : 0));
    }
    REQUIRE(d->putAndInsertUint16Array(DCM_PixelData, v.data(), static_cast<unsigned long>(n)).good());
  } else {
    std::vector<Uint8> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<Uint8>((i % s.cols) * 3 + (i / (s.rows * s.cols)) * 20);
    REQUIRE(d->putAndInsertUint8Array(DCM_PixelData, v.data(), static_cast<unsigned long>(n)).good());
  }
  REQUIRE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
}

std::string get(DcmItem* item, const DcmTagKey& tag) {
  OFString v;
  item->findAndGetOFStringArray(tag, v);
  return v.c_str();
}

struct Loaded {
  DcmFileFormat file;
  DcmDataset* d = nullptr;
  explicit Loaded(const std::string& path) {
    REQUIRE(file.loadFile(path.c_str()).good());
    d = file.getDataset();
  }
};

// dciodvfy's "Error" lines for one file (warnings are allowed).
std::vector<std::string> dciodvfy_errors(const std::string& path) {
  std::vector<std::string> errors;
  FILE* p = popen(("dciodvfy " + q(path) + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char line[4096];
  while (fgets(line, sizeof(line), p)) {
    if (std::string(line).rfind("Error", 0) == 0) errors.push_back(line);
  }
  pclose(p);
  return errors;
}

// The SR's NUM items (concept meaning -> value) and its IMAGE references (SOP instance UIDs).
void read_sr(const std::string& path, std::map<std::string, double>& numbers, std::set<std::string>& images,
             std::map<std::string, std::string>& texts) {
  Loaded in(path);
  DSRDocument doc;
  REQUIRE(doc.read(*in.d).good());
  CHECK(doc.getDocumentType() == DSRTypes::DT_ComprehensiveSR);
  CHECK(doc.getVerificationFlag() == DSRTypes::VF_Unverified);
  auto& tree = doc.getTree();
  REQUIRE(tree.gotoRoot() > 0);
  DSRDocumentTreeNodeCursor cursor;
  size_t id = tree.gotoRoot();
  do {
    const DSRContentItem& item = tree.getCurrentContentItem();
    const std::string meaning = item.getConceptName().getCodeMeaning().c_str();
    if (item.getValueType() == DSRTypes::VT_Num) {
      numbers[meaning] = std::stod(item.getNumericValue().getNumericValue().c_str());
    } else if (item.getValueType() == DSRTypes::VT_Image) {
      images.insert(item.getImageReference().getSOPInstanceUID().c_str());
    } else if (item.getValueType() == DSRTypes::VT_Text) {
      texts[meaning] = item.getStringValue().c_str();
    }
    id = tree.iterate();
  } while (id > 0);
}

json run_dicom_out(const fs::path& out_dir, const std::string& inputs, const std::string& extra = "",
                   int* code = nullptr) {
  const fs::path results = out_dir / "r.jsonl";
  const auto run = clitest::medattn("diagnose -m " + q(clitest::fixture() / "model") + " --dicom-out " + q(out_dir / "dcm") +
                               " -o " + q(results) + " --threads 1 -q " + extra + " " + inputs,
                           (out_dir / "err.txt").string());
  if (code) *code = run.code;
  std::ifstream in(results);
  json all = json::array();
  for (auto& j : clitest::jsonl_objects(in)) all.push_back(j);
  return all;
}

// Checks the SC and SR of one record against the input and the record itself.
void check_outputs(const json& r, const std::string& source, int frame = 0) {
  INFO("input " << source);
  REQUIRE(r["error"].is_null());
  REQUIRE(r["dicom_sc"].is_string());
  REQUIRE(r["dicom_sr"].is_string());
  Loaded in(source);
  Loaded sc(r["dicom_sc"].get<std::string>());
  Loaded sr(r["dicom_sr"].get<std::string>());
  // The record's identity is the input's.
  CHECK(r["study_uid"] == get(in.d, DCM_StudyInstanceUID));
  CHECK(r["series_uid"] == get(in.d, DCM_SeriesInstanceUID));
  CHECK(r["sop_uid"] == get(in.d, DCM_SOPInstanceUID));
  // SC: the input's size, RGB 8-bit, derived, burned-in, referencing the input.
  Uint16 rows = 0, cols = 0, in_rows = 0, in_cols = 0, samples = 0, bits = 0;
  sc.d->findAndGetUint16(DCM_Rows, rows);
  sc.d->findAndGetUint16(DCM_Columns, cols);
  in.d->findAndGetUint16(DCM_Rows, in_rows);
  in.d->findAndGetUint16(DCM_Columns, in_cols);
  sc.d->findAndGetUint16(DCM_SamplesPerPixel, samples);
  sc.d->findAndGetUint16(DCM_BitsAllocated, bits);
  CHECK(rows == in_rows);
  CHECK(cols == in_cols);
  CHECK(samples == 3);
  CHECK(bits == 8);
  CHECK(get(sc.d, DCM_SOPClassUID) == UID_SecondaryCaptureImageStorage);
  CHECK(get(sc.d, DCM_PhotometricInterpretation) == "RGB");
  CHECK(get(sc.d, DCM_ImageType) == "DERIVED\\SECONDARY");
  CHECK(get(sc.d, DCM_BurnedInAnnotation) == "YES");
  CHECK(get(sc.d, DCM_SeriesDescription).find("NOT FOR PRIMARY DIAGNOSIS") != std::string::npos);
  CHECK(get(sc.d, DCM_DerivationDescription).find("saliency") != std::string::npos);
  DcmItem* ref = nullptr;
  REQUIRE(sc.d->findAndGetSequenceItem(DCM_SourceImageSequence, ref, 0).good());
  CHECK(get(ref, DCM_ReferencedSOPInstanceUID) == get(in.d, DCM_SOPInstanceUID));
  CHECK(get(ref, DCM_ReferencedSOPClassUID) == get(in.d, DCM_SOPClassUID));
  Sint32 frames = 1;
  if (in.d->findAndGetSint32(DCM_NumberOfFrames, frames).good() && frames > 1) {
    CHECK(get(ref, DCM_ReferencedFrameNumber) == std::to_string(frame + 1));
  }
  // Patient and Study: equal to the input's, in both objects; new series, not the input's.
  for (const auto& tag : kPatientStudy) {
    INFO("tag " << DcmTag(tag).getTagName());
    CHECK(get(sc.d, tag) == get(in.d, tag));
    CHECK(get(sr.d, tag) == get(in.d, tag));
  }
  CHECK(get(sc.d, DCM_SeriesInstanceUID) != get(in.d, DCM_SeriesInstanceUID));
  CHECK(get(sr.d, DCM_SeriesInstanceUID) != get(sc.d, DCM_SeriesInstanceUID));
  CHECK(get(sr.d, DCM_VerificationFlag) == "UNVERIFIED");
  // The algorithm, per IHE AIR.
  for (DcmDataset* d : {sc.d, sr.d}) {
    DcmItem* eq = nullptr;
    REQUIRE(d->findAndGetSequenceItem(DCM_ContributingEquipmentSequence, eq, 0).good());
    CHECK(get(eq, DCM_Manufacturer) == "medattn");
    const std::string model = r["model"].get<std::string>();
    CHECK(get(eq, DCM_ManufacturerModelName) == model.substr(0, model.find('@')));
    CHECK(get(eq, DCM_SoftwareVersions).find(r["model"].get<std::string>()) != std::string::npos);
    CHECK(get(eq, DCM_ContributionDescription).find("SHA-256") != std::string::npos);
  }
  // SR content: a NUM per class equal to the record's probabilities, the method, the references.
  std::map<std::string, double> numbers;
  std::set<std::string> images;
  std::map<std::string, std::string> texts;
  read_sr(r["dicom_sr"].get<std::string>(), numbers, images, texts);
  REQUIRE(r["probabilities"].is_object());
  CHECK(numbers.size() >= r["probabilities"].size());
  for (const auto& [name, p] : r["probabilities"].items()) {
    INFO("class " << name);
    REQUIRE(numbers.count("Probability of " + name) == 1);
    CHECK(std::abs(numbers["Probability of " + name] - p.get<double>()) < 1e-9);
  }
  if (r["ood_score"].is_number()) CHECK(std::abs(numbers["Out-of-distribution score"] - r["ood_score"].get<double>()) < 1e-9);
  CHECK(texts["Heatmap method"] == "saliency");
  if (r["abstained"].is_string()) {
    CHECK(texts["Abstention"] == r["abstained"].get<std::string>());
  } else {
    CHECK(texts["Finding"] == r["diagnosis"].get<std::string>());
  }
  CHECK(images.count(get(in.d, DCM_SOPInstanceUID)) == 1);
  CHECK(images.count(get(sc.d, DCM_SOPInstanceUID)) == 1);
  CHECK(get(sr.d, DCM_StudyInstanceUID) == get(in.d, DCM_StudyInstanceUID));
}

// Every object written passes dciodvfy without an "Error" line.
void check_valid(const json& r) {
  for (const char* key : {"dicom_sc", "dicom_sr"}) {
    const std::string path = r[key].get<std::string>();
    INFO(path);
    CHECK(dciodvfy_errors(path).empty());
    // dcmdump and dsrdump read them.
    CHECK(std::system(("dcmdump " + q(path) + " >/dev/null 2>&1").c_str()) == 0);
  }
  CHECK(std::system(("dsrdump " + q(r["dicom_sr"].get<std::string>()) + " >/dev/null 2>&1").c_str()) == 0);
}

bool have_validators() {
  return testdeps::has_program("dciodvfy") && testdeps::has_program("dcmdump") && testdeps::has_program("dsrdump");
}

std::map<std::string, json> by_file_name(const json& records) {
  std::map<std::string, json> out;
  for (const auto& r : records) out[fs::path(r["file"].get<std::string>()).filename().string()] = r;
  return out;
}

}  // namespace

TEST_CASE("dicom-out writes an SC and an SR per DICOM input of a CT, a MONOCHROME1 CR and a multi-frame", "[dicom_out]") {
  MEDATTN_NEEDS(have_validators(), "dicom3tools (dciodvfy) and dcmtk (dcmdump, dsrdump): scripts/setup.sh --test");
  medattn::testing::TempDir tmp("dicom_out");
  const fs::path in = tmp.path / "in";
  fs::create_directories(in);
  Source ct;
  write_source(in / "ct.dcm", ct);
  Source cr;
  cr.sop_class = UID_ComputedRadiographyImageStorage;
  cr.modality = "CR";
  cr.photometric = "MONOCHROME1";
  cr.rows = 80;
  cr.cols = 72;
  write_source(in / "cr.dcm", cr);
  // A PNG among them: no DICOM output, one notice for the run.
  fs::copy_file(clitest::fixture() / "ph/images/normal/normal_0000.png", in / "plain.png");
  fs::copy_file(clitest::fixture() / "ph/images/normal/normal_0001.png", in / "plain2.png");
  int code = -1;
  const auto records = by_file_name(run_dicom_out(tmp.path, q(in), "--uid-seed test", &code));
  CHECK(code == 0);
  REQUIRE(records.size() == 4);
  check_outputs(records.at("ct.dcm"), (in / "ct.dcm").string());
  check_outputs(records.at("cr.dcm"), (in / "cr.dcm").string());
  check_valid(records.at("ct.dcm"));
  check_valid(records.at("cr.dcm"));
  // Named like heatmaps (pipeline::heatmap_stem: the input's path flattened, and its hash), inside DIR.
  const std::string stem = medattn::pipeline::heatmap_stem({(in / "ct.dcm").string(), in.string(), "ct.dcm"});
  std::string flat = (tmp.path.relative_path() / "in" / "ct").string();
  std::replace(flat.begin(), flat.end(), '/', '_');
  CHECK(stem.rfind(flat + "-", 0) == 0);
  CHECK(records.at("ct.dcm")["dicom_sc"] == (tmp.path / "dcm" / (stem + ".sc.dcm")).string());
  CHECK(records.at("ct.dcm")["dicom_sr"] == (tmp.path / "dcm" / (stem + ".sr.dcm")).string());
  CHECK(records.at("ct.dcm")["patient_id"] == "MA-0042");
  CHECK(records.at("ct.dcm")["accession_number"] == "ACC123");
  CHECK(records.at("ct.dcm")["modality"] == "CT");
  // Non-DICOM: identity null, no objects, one notice.
  const json& png = records.at("plain.png");
  for (const char* key : {"study_uid", "series_uid", "sop_uid", "patient_id", "accession_number", "modality"}) {
    CHECK(png[key].is_null());
  }
  CHECK_FALSE(png.contains("dicom_sr"));
  const std::string err = clitest::slurp(tmp.path / "err.txt");
  size_t notices = 0;
  for (size_t at = 0; (at = err.find("is not DICOM", at)) != std::string::npos; ++at) ++notices;
  CHECK(notices == 1);
  CHECK(err.find("wrote 4 DICOM object(s)") != std::string::npos);
  // Two DICOM inputs, two objects each.
  int files = 0;
  for (const auto& e : fs::directory_iterator(tmp.path / "dcm")) files += e.path().extension() == ".dcm";
  CHECK(files == 4);

  // The multi-frame input, diagnosed at frame 1: the SC and the SR reference that frame.
  Source mf;
  mf.sop_class = UID_MultiframeGrayscaleByteSecondaryCaptureImageStorage;
  mf.modality = "OT";
  mf.rows = 40;
  mf.cols = 48;
  mf.frames = 3;
  mf.bits = 8;
  medattn::testing::TempDir tmp2("dicom_out_mf");
  write_source(tmp2.path / "mf.dcm", mf);
  const auto multi = by_file_name(run_dicom_out(tmp2.path, q(tmp2.path / "mf.dcm"), "--frame 1", &code));
  CHECK(code == 0);
  REQUIRE(multi.size() == 1);
  check_outputs(multi.at("mf.dcm"), (tmp2.path / "mf.dcm").string(), 1);
  check_valid(multi.at("mf.dcm"));
}

TEST_CASE("dicom-out with a uid seed gives the same UIDs on a rerun and fresh ones without", "[dicom_out]") {
  medattn::testing::TempDir tmp("dicom_seed");
  write_source(tmp.path / "ct.dcm", Source{});
  auto uids = [&](const std::string& extra, const std::string& sub = "run") {
    fs::remove_all(tmp.path / sub);
    fs::create_directories(tmp.path / sub);
    const auto r = by_file_name(run_dicom_out(tmp.path / sub, q(tmp.path / "ct.dcm"), extra)).at("ct.dcm");
    REQUIRE(r["dicom_sr"].is_string());
    Loaded sc(r["dicom_sc"].get<std::string>());
    Loaded sr(r["dicom_sr"].get<std::string>());
    return get(sc.d, DCM_SOPInstanceUID) + " " + get(sc.d, DCM_SeriesInstanceUID) + " " + get(sr.d, DCM_SOPInstanceUID) +
           " " + get(sr.d, DCM_SeriesInstanceUID);
  };
  const std::string a = uids("--uid-seed s1 --uid-root 1.2.826.0.1.3680043.10.543");
  CHECK(a == uids("--uid-seed s1 --uid-root 1.2.826.0.1.3680043.10.543"));
  // Whatever the output folder.
  CHECK(a == uids("--uid-seed s1 --uid-root 1.2.826.0.1.3680043.10.543", "elsewhere"));
  CHECK(a != uids("--uid-seed s2 --uid-root 1.2.826.0.1.3680043.10.543"));
  CHECK(a.rfind("1.2.826.0.1.3680043.10.543.", 0) == 0);
  CHECK(uids("") != uids(""));
  CHECK(uids("").rfind(std::string(SITE_INSTANCE_UID_ROOT) + ".", 0) == 0);
  // A bad root is a usage error.
  const auto bad = clitest::medattn("diagnose -m " + q(clitest::fixture() / "model") + " --dicom-out " + q(tmp.path / "dcm") +
                           " --uid-root 1.02.x " + q(tmp.path / "ct.dcm"));
  CHECK(bad.code == 2);
}

TEST_CASE("dicom-out on hostile DICOM: odd patient names and 64-character UIDs give valid objects, a missing study one clear error",
          "[dicom_out]") {
  MEDATTN_NEEDS(have_validators(), "dicom3tools (dciodvfy) and dcmtk (dcmdump, dsrdump): scripts/setup.sh --test");
  medattn::testing::TempDir tmp("dicom_hostile");
  const fs::path in = tmp.path / "in";
  fs::create_directories(in);
  Source odd;
  odd.patient_name = "O'Brien-Zo\xC3\xAB^M\xC3\xBCller (=?*%)";
  odd.charset = "ISO_IR 192";
  // 64 characters exactly.
  odd.sop_uid = "1.2.826.0.1.3680043.10.543.1234567890123456789012345678901234567";
  REQUIRE(odd.sop_uid.size() == 64);
  write_source(in / "odd.dcm", odd);
  Source nostudy;
  nostudy.with_study = false;
  write_source(in / "nostudy.dcm", nostudy);
  // Abstained (near-constant): the SC and the SR say so instead of a finding.
  Source flat;
  flat.flat = true;
  write_source(in / "flat.dcm", flat);
  int code = -1;
  const auto records = by_file_name(run_dicom_out(tmp.path, q(in), "", &code));
  REQUIRE(records.size() == 3);
  CHECK(code == 1);  // the input without a study failed
  REQUIRE(records.at("flat.dcm")["abstained"].is_string());
  check_outputs(records.at("flat.dcm"), (in / "flat.dcm").string());
  check_valid(records.at("flat.dcm"));
  check_outputs(records.at("odd.dcm"), (in / "odd.dcm").string());
  check_valid(records.at("odd.dcm"));
  CHECK(records.at("odd.dcm")["sop_uid"] == odd.sop_uid);
  const json& bad = records.at("nostudy.dcm");
  REQUIRE(bad["error"].is_string());
  CHECK(bad["error"].get<std::string>() ==
        "cannot write DICOM output for '" + (in / "nostudy.dcm").string() + "': the input has no StudyInstanceUID");
  CHECK(bad["study_uid"].is_null());
  for (const auto& e : fs::directory_iterator(tmp.path / "dcm")) CHECK(e.path().filename().string().find("nostudy") == std::string::npos);
}

TEST_CASE("dicom-out with resume writes no second SR for an input already done, and shards name outputs alike",
          "[dicom_out]") {
  medattn::testing::TempDir tmp("dicom_resume");
  const fs::path in = tmp.path / "in";
  fs::create_directories(in);
  write_source(in / "a.dcm", Source{});
  write_source(in / "b.dcm", Source{});
  const std::string model = " -m " + q(clitest::fixture() / "model");
  const std::string out = " --dicom-out " + q(tmp.path / "dcm") + " -o " + q(tmp.path / "r.jsonl") + " -q --threads 1 ";
  REQUIRE(clitest::medattn("diagnose" + model + out + q(in / "a.dcm")).code == 0);
  const std::string flat = medattn::pipeline::heatmap_stem({(in / "a.dcm").string(), (in / "a.dcm").string(), ""});
  const std::string flat_b = medattn::pipeline::heatmap_stem({(in / "b.dcm").string(), (in / "b.dcm").string(), ""});
  const fs::path sr_a = tmp.path / "dcm" / (flat + ".sr.dcm");
  const std::string first_sr = clitest::slurp(sr_a);
  const auto mtime = fs::last_write_time(sr_a);
  REQUIRE(!first_sr.empty());
  REQUIRE(clitest::medattn("diagnose" + model + out + "--resume --report " + q(tmp.path / "r.html") + " " + q(in / "a.dcm") +
                           " " + q(in / "b.dcm")).code == 0);
  // The report lists the input's identifiers and its objects.
  Loaded b(( in / "b.dcm").string());
  const std::string html = clitest::slurp(tmp.path / "r.html");
  CHECK(html.find("study " + get(b.d, DCM_StudyInstanceUID)) != std::string::npos);
  CHECK(html.find("SOP " + get(b.d, DCM_SOPInstanceUID)) != std::string::npos);
  CHECK(html.find(flat_b + ".sr.dcm") != std::string::npos);
  CHECK(html.find("DICOM output") != std::string::npos);
  CHECK(clitest::slurp(sr_a) == first_sr);
  CHECK(fs::last_write_time(sr_a) == mtime);
  CHECK(fs::exists(tmp.path / "dcm" / (flat_b + ".sr.dcm")));
  int srs = 0;
  for (const auto& e : fs::directory_iterator(tmp.path / "dcm")) srs += e.path().string().find(".sr.dcm") != std::string::npos;
  CHECK(srs == 2);
  // A rerun over a folder holding its own output does not diagnose the objects it wrote.
  const auto again = clitest::medattn("diagnose" + model + " --dicom-out " + q(in / "dcm") + " --format jsonl -q --threads 1 " + q(in));
  REQUIRE(again.code == 0);
  const auto again2 = clitest::medattn("diagnose" + model + " --dicom-out " + q(in / "dcm") + " --format jsonl -q --threads 1 " + q(in));
  std::istringstream lines(again2.out);
  CHECK(clitest::jsonl_objects(lines).size() == 2);
  // Shards: each input's names are the ones an unsharded run gives.
  const std::string sh = model + " --dicom-out " + q(tmp.path / "sh") + " --format jsonl -q --threads 1 ";
  std::set<std::string> names;
  for (int k = 0; k < 2; ++k) {
    std::istringstream part(clitest::medattn("diagnose" + sh + "--shard " + std::to_string(k) + "/2 " + q(in / "a.dcm") + " " +
                                    q(in / "b.dcm")).out);
    for (const auto& r : clitest::jsonl_objects(part)) names.insert(fs::path(r["dicom_sr"].get<std::string>()).filename().string());
  }
  CHECK(names == std::set<std::string>{flat + ".sr.dcm", flat_b + ".sr.dcm"});
}

TEST_CASE("dicom-out on the shared DICOM files gives valid objects that carry each input's patient and study",
          "[dicom_out][shared]") {
  MEDATTN_NEEDS(!testdeps::shared_data_dir().empty(), "shared data (../shared/data)");
  MEDATTN_NEEDS(have_validators(), "dicom3tools (dciodvfy) and dcmtk (dcmdump, dsrdump): scripts/setup.sh --test");
  medattn::testing::TempDir tmp("dicom_shared");
  const fs::path dir = testdeps::shared_data("dicom");
  const auto records = run_dicom_out(tmp.path, q(dir), "--ignore-scope");
  REQUIRE(records.size() >= 8);
  int written = 0;
  for (const auto& r : records) {
    INFO(r.dump());
    if (!r["dicom_sr"].is_string()) continue;
    ++written;
    check_outputs(r, r["file"].get<std::string>());
    check_valid(r);
  }
  CHECK(written >= 6);
}
