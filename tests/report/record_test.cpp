// Output formats of diagnose (../shared/CLI.md).
#include <catch2/catch.hpp>
#include <sstream>

#include "report/record.h"

using namespace medattn::report;

namespace {
DiagnosisRecord good() {
  DiagnosisRecord r;
  r.file = "a,b.png";
  r.ok = true;
  r.diagnosis = "PNEUMONIA";
  r.probability = 0.9731234567;
  r.probabilities = {{"NORMAL", 0.0268765433}, {"PNEUMONIA", 0.9731234567}};
  r.heatmap = "out/a_b.heatmap.png";
  return r;
}
DiagnosisRecord bad() {
  DiagnosisRecord r;
  r.file = "x.png";
  r.error = "cannot read PNG 'x.png': truncated";
  return r;
}
}  // namespace

TEST_CASE("a record's JSON has the keys of the contract", "[report]") {
  auto j = record_to_json(good());
  CHECK(j["file"] == "a,b.png");
  CHECK(j["diagnosis"] == "PNEUMONIA");
  CHECK(j["probability"] == 0.973123);
  CHECK(j["probabilities"]["NORMAL"] == 0.026877);
  CHECK(j["heatmap"] == "out/a_b.heatmap.png");
  CHECK(j["error"].is_null());
  auto e = record_to_json(bad());
  CHECK(e["diagnosis"].is_null());
  CHECK(e["heatmap"].is_null());
  CHECK(e["error"] == "cannot read PNG 'x.png': truncated");
}

TEST_CASE("json, jsonl and csv writers", "[report]") {
  std::ostringstream json, jsonl, csv;
  for (auto [fmt, out] : {std::pair{Format::kJson, &json}, {Format::kJsonl, &jsonl}, {Format::kCsv, &csv}}) {
    auto w = make_writer(fmt, *out, {"NORMAL", "PNEUMONIA"});
    w->write(good());
    w->write(bad());
    w->finish();
  }
  auto arr = nlohmann::json::parse(json.str());
  REQUIRE(arr.size() == 2);
  CHECK(arr[1]["error"] == "cannot read PNG 'x.png': truncated");
  std::istringstream lines(jsonl.str());
  std::string l1, l2;
  std::getline(lines, l1);
  std::getline(lines, l2);
  CHECK(nlohmann::json::parse(l1)["diagnosis"] == "PNEUMONIA");
  CHECK(nlohmann::json::parse(l2)["diagnosis"].is_null());
  CHECK(csv.str() ==
        "file,diagnosis,probability,p_NORMAL,p_PNEUMONIA,heatmap,error,model,abstained,ood_score,warning,"
        "study_uid,series_uid,sop_uid,patient_id,accession_number,modality,dicom_sc,dicom_sr\n"
        "\"a,b.png\",PNEUMONIA,0.973123,0.026877,0.973123,out/a_b.heatmap.png,,,,,,,,,,,,,\n"
        "x.png,,,,,,cannot read PNG 'x.png': truncated,,,,,,,,,,,,\n");
  std::ostringstream empty;
  make_writer(Format::kJson, empty, {})->finish();
  CHECK(nlohmann::json::parse(empty.str()).empty());
}

TEST_CASE("records of DICOM inputs carry the study, series and SOP UIDs, and others carry null", "[report]") {
  auto r = good();
  auto plain = record_to_json(r);
  for (const char* key : {"study_uid", "series_uid", "sop_uid", "patient_id", "accession_number", "modality"}) {
    REQUIRE(plain.contains(key));
    CHECK(plain[key].is_null());
  }
  CHECK_FALSE(plain.contains("dicom_sr"));
  r.study_uid = "1.2.3";
  r.series_uid = "1.2.3.4";
  r.sop_uid = "1.2.3.4.5";
  r.patient_id = "P,1";
  r.modality = "CT";
  r.dicom_sc = "d/a.sc.dcm";
  r.dicom_sr = "d/a.sr.dcm";
  auto j = record_to_json(r);
  CHECK(j["study_uid"] == "1.2.3");
  CHECK(j["series_uid"] == "1.2.3.4");
  CHECK(j["sop_uid"] == "1.2.3.4.5");
  CHECK(j["patient_id"] == "P,1");
  CHECK(j["accession_number"].is_null());
  CHECK(j["modality"] == "CT");
  CHECK(j["dicom_sc"] == "d/a.sc.dcm");
  CHECK(j["dicom_sr"] == "d/a.sr.dcm");
  std::ostringstream csv;
  auto w = make_writer(Format::kCsv, csv, {"NORMAL", "PNEUMONIA"});
  w->write(r);
  w->finish();
  const std::string text = csv.str();
  CHECK(text.substr(text.find('\n') + 1).find(",1.2.3,1.2.3.4,1.2.3.4.5,\"P,1\",,CT,d/a.sc.dcm,d/a.sr.dcm\n") != std::string::npos);
}

TEST_CASE("unknown formats are usage errors", "[report]") {
  CHECK_THROWS_WITH(parse_format("xml"), "unknown format 'xml' (expected table, json, jsonl or csv)");
}
