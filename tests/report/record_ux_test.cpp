// What the table and the record say about inputs that change an answer: covariates used or
// missing per image, the window, and the heatmap path on its own line.
#include <catch2/catch.hpp>

#include <sstream>

#include "report/record.h"

using namespace medattn::report;

namespace {

DiagnosisRecord diagnosed() {
  DiagnosisRecord r;
  r.file = "lesion.jpg";
  r.ok = true;
  r.diagnosis = "mel";
  r.probability = 0.44;
  r.probabilities = {{"akiec", 0.3}, {"mel", 0.44}, {"nv", 0.26}};
  return r;
}

std::string table(const DiagnosisRecord& r) {
  std::ostringstream out;
  auto w = make_writer(Format::kTable, out, {"akiec", "mel", "nv"});
  w->write(r);
  w->finish();
  return out.str();
}

}  // namespace

TEST_CASE("the table says per image which covariates were used and which were missing", "[report][ux]") {
  auto r = diagnosed();
  r.clinical_attention = {{"age", 0.1}, {"sex", 0.05}, {"localization", 0.02}};
  r.clinical_missing = {"localization"};
  CHECK(table(r) ==
        "FILE        DIAGNOSIS  PROB    DETAILS\n"
        "lesion.jpg  mel        0.440   akiec=0.300 mel=0.440 nv=0.260\n"
        "            covariates: used age, sex; missing localization\n");
  r.clinical_missing = {"age", "sex", "localization"};
  CHECK(table(r).find("            covariates: all missing (age, sex, localization)\n") != std::string::npos);
  r.clinical_missing.clear();
  CHECK(table(r).find("covariates: used age, sex, localization\n") != std::string::npos);
  // An image-only model: no covariate line.
  CHECK(table(diagnosed()).find("covariates") == std::string::npos);
}

TEST_CASE("the table puts the heatmap path on its own line", "[report][ux]") {
  auto r = diagnosed();
  r.heatmap = "out/a_very_long_folder_name_for_heatmaps/lesion.heatmap.png";
  CHECK(table(r) ==
        "FILE        DIAGNOSIS  PROB    DETAILS\n"
        "lesion.jpg  mel        0.440   akiec=0.300 mel=0.440 nv=0.260\n"
        "            heatmap: out/a_very_long_folder_name_for_heatmaps/lesion.heatmap.png\n");
}

TEST_CASE("the record keeps the window that made the model's input", "[report][ux]") {
  auto r = diagnosed();
  CHECK_FALSE(record_to_json(r).contains("window"));
  r.window_center = -600;
  r.window_width = 1500;
  r.window_source = "--window";
  const auto j = record_to_json(r);
  CHECK(j["window"]["center"] == -600.0);
  CHECK(j["window"]["width"] == 1500.0);
  CHECK(j["window"]["source"] == "--window");
}
