// evaluate's rough edges (issue 21): --masks without --method, per-class n, the positive
// class, the class map and the no-better-than-chance warning, through the binary.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "support/cli.h"

namespace fs = std::filesystem;
using namespace clitest;

TEST_CASE("evaluate --masks without --method measures the default method", "[cli][ux]") {
  const fs::path d = fixture();
  const fs::path err = d / "ux_masks.err";
  const Run r = medattn("evaluate -m " + q(d / "model") + " " + q(d / "ph/images") + " --masks " + q(d / "ph/masks") +
                            " --no-deletion --format json",
                        err.string());
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["method"] == "saliency");
  CHECK(j["masked_images"].get<int>() > 0);
  CHECK(j["pointing_game"].is_number());
  CHECK(slurp(err).find("--masks without --method: measuring diagnose's default heatmap method, saliency") != std::string::npos);
}

TEST_CASE("evaluate gives per-class n and auc, and warnings as a list", "[cli][ux]") {
  const fs::path d = fixture();
  const Run r = medattn("evaluate -m " + q(d / "model") + " " + q(d / "ph/images") + " --format json");
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  int total = 0;
  for (const auto& name : j["classes"]) {
    CHECK(j["per_class"][name.get<std::string>()]["n"] == 8);
    CHECK(j["per_class"][name.get<std::string>()].contains("auc"));
    total += j["per_class"][name.get<std::string>()]["n"].get<int>();
  }
  CHECK(total == j["n"].get<int>());
  CHECK(j["warnings"].is_array());
  CHECK_FALSE(j.contains("positive_class"));  // three classes
  const Run text = medattn("evaluate -m " + q(d / "model") + " " + q(d / "ph/images"));
  CHECK(text.out.find("consolidation") != std::string::npos);  // the confusion header keeps whole names
  CHECK(text.out.find(" consolidat ") == std::string::npos);
}

TEST_CASE("evaluate --class-map merges the model's classes and warns when the model is no better than chance", "[cli][ux]") {
  // Data with the model's classes merged into normal / abnormal, where both folders hold the
  // same images: whatever the model says, it cannot tell them apart (AUC exactly 0.5).
  const fs::path d = fixture();
  const fs::path data = d / "ux_merged";
  fs::create_directories(data / "normal");
  fs::create_directories(data / "abnormal");
  int copied = 0;
  for (const auto& e : fs::directory_iterator(d / "ph/images/nodule")) {
    fs::copy_file(e.path(), data / "normal" / e.path().filename(), fs::copy_options::overwrite_existing);
    fs::copy_file(e.path(), data / "abnormal" / e.path().filename(), fs::copy_options::overwrite_existing);
    ++copied;
  }
  REQUIRE(copied == 8);
  const fs::path err = d / "ux_merged.err";
  const Run r = medattn("evaluate -m " + q(d / "model") + " " + q(data) +
                            " --class-map normal=normal,abnormal=nodule+consolidation --format json",
                        err.string());
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["classes"] == nlohmann::json({"normal", "abnormal"}));
  CHECK(j["model_classes"] == nlohmann::json({"normal", "nodule", "consolidation"}));
  CHECK(j["positive_class"] == "abnormal");
  CHECK(j["n"] == 16);
  CHECK(j["per_class"]["normal"]["n"] == 8);
  CHECK(j["per_class"]["abnormal"]["n"] == 8);
  CHECK(j["auc"].get<double>() == 0.5);
  REQUIRE(j["warnings"].size() >= 1);
  CHECK(j["warnings"][0].get<std::string>().find("no better than chance on the data: AUC 0.500") != std::string::npos);
  CHECK(slurp(err).find("warning: the model is no better than chance") != std::string::npos);

  // Without the map, the data's classes are refused; a bad map is one error line, exit 2.
  CHECK(medattn("evaluate -m " + q(d / "model") + " " + q(data) + " --format json").code == 2);
  const fs::path bad = d / "ux_bad.err";
  CHECK(medattn("evaluate -m " + q(d / "model") + " " + q(data) + " --class-map normal=normal,abnormal=nodule", bad.string())
            .code == 2);
  CHECK(slurp(bad).find("error: --class-map 'normal=normal,abnormal=nodule': model class 'consolidation' is not mapped") !=
        std::string::npos);
}

namespace {

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("the HTML report of a resumed run shows the whole output file, thumbnails linked to the overlays", "[cli][ux]") {
  const fs::path d = fixture();
  const fs::path dir = d / "ux_report";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string common = " -m " + q(d / "model") + " -o " + q(dir / "out.jsonl") + " --heatmaps " + q(dir / "heat") +
                             " --report " + q(dir / "report.html") + " -q";
  // A first run that stopped after one class folder (as a killed run would), then the resume.
  REQUIRE(medattn("diagnose " + q(d / "ph/images/normal") + common).code == 0);
  CHECK(count_of(slurp(dir / "report.html"), "<tr class=\"ok\">") == 8);
  REQUIRE(medattn("diagnose " + q(d / "ph/images") + common + " --resume").code == 0);
  const std::string resumed = slurp(dir / "report.html");
  CHECK(count_of(resumed, "<tr class=\"ok\">") == 24);
  CHECK(resumed.find("8 of these records were read back from the output file") != std::string::npos);
  // A second resume has nothing left to do: the report still shows all 24 (it showed 0).
  REQUIRE(medattn("diagnose " + q(d / "ph/images") + common + " --resume").code == 0);
  const std::string again = slurp(dir / "report.html");
  CHECK(count_of(again, "<tr class=\"ok\">") == 24);
  // Every thumbnail (earlier ones too) links to its overlay, relative to the report.
  CHECK(count_of(again, "<img ") == 24);
  CHECK(count_of(again, "<a href=\"heat/") == 24);
  const auto at = again.find("<a href=\"heat/");
  const std::string href = again.substr(at + 9, again.find('"', at + 9) - at - 9);
  CHECK(fs::exists(dir / href));
}

TEST_CASE("diagnose overlays have the caption strip and are enlarged to --overlay-size", "[cli][ux]") {
  const fs::path d = fixture();
  const fs::path dir = d / "ux_overlay";
  fs::remove_all(dir);
  REQUIRE(medattn("diagnose " + q(d / "ph/images/nodule") + " -m " + q(d / "model") + " --heatmaps " + q(dir) +
                  " --target normal --format json -q").code == 0);
  int overlays = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".heatmap.png") == std::string::npos) continue;
    ++overlays;
    // 64 px phantoms: the image part is enlarged to 256, with the caption above and the legend beside.
    const std::string bytes = slurp(e.path());
    REQUIRE(bytes.size() > 24);
    const auto be32 = [&](size_t at) {
      return (static_cast<unsigned char>(bytes[at]) << 24) | (static_cast<unsigned char>(bytes[at + 1]) << 16) |
             (static_cast<unsigned char>(bytes[at + 2]) << 8) | static_cast<unsigned char>(bytes[at + 3]);
    };
    CHECK(be32(16) > 256);  // width: image + legend
    CHECK(be32(20) > 256);  // height: caption + image
  }
  CHECK(overlays == 8);
}


namespace {

// The largest value of each raw map (16-bit) in `dir`.
std::vector<int> raw_peaks(const fs::path& dir) {
  std::vector<int> peaks;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".heatmap-raw.png") == std::string::npos) continue;
    const cv::Mat raw = cv::imread(e.path().string(), cv::IMREAD_UNCHANGED);
    REQUIRE(raw.type() == CV_16UC1);
    double hi = 0;
    cv::minMaxLoc(raw, nullptr, &hi);
    peaks.push_back(static_cast<int>(hi));
  }
  return peaks;
}

}  // namespace

TEST_CASE("diagnose --heatmap-scale model shows maps on the model's calibrated scale", "[cli][ux]") {
  const fs::path d = fixture();
  const fs::path model = d / "ux_scaled_model";
  fs::remove_all(model);
  fs::copy(d / "model", model, fs::copy_options::recursive);
  const std::string images = " " + q(d / "ph/images/normal") + " ";
  // Not calibrated yet: refused with one line that says how to calibrate.
  const fs::path err = d / "ux_scale.err";
  CHECK(medattn("diagnose" + images + "-m " + q(model) + " --heatmaps " + q(d / "ux_scale_none") + " --heatmap-scale model -q",
                err.string())
            .code == 2);
  CHECK(slurp(err).find("error: --heatmap-scale model: model '") != std::string::npos);
  CHECK(slurp(err).find("has no heatmap scale for method 'saliency'") != std::string::npos);

  // Calibrated on the data (the default method), written into the card.
  const Run cal = medattn("evaluate -m " + q(model) + " " + q(d / "ph/images") + " --calibrate-heatmap-scale --no-deletion --format json");
  REQUIRE(cal.code == 0);
  const auto j = nlohmann::json::parse(cal.out);
  const double reference = j["heatmap_scale_reference"].get<double>();
  CHECK(reference > 0);
  const auto card = nlohmann::json::parse(slurp(model / "model.json"));
  CHECK(card["heatmap_scale"]["reference"]["saliency"].get<double>() == Approx(reference));

  // Per image, every map reaches the top of the scale; on the model's scale they differ.
  REQUIRE(medattn("diagnose" + images + "-m " + q(model) + " --heatmaps " + q(d / "ux_scale_image") + " -q --format json").code == 0);
  REQUIRE(medattn("diagnose" + images + "-m " + q(model) + " --heatmaps " + q(d / "ux_scale_model") +
                  " --heatmap-scale model -q --format json").code == 0);
  const auto per_image = raw_peaks(d / "ux_scale_image");
  const auto per_model = raw_peaks(d / "ux_scale_model");
  REQUIRE(per_image.size() == 8);
  REQUIRE(per_model.size() == 8);
  // (At the model's input every per-image map peaks at exactly 1; resizing to the original
  // image's size takes a little off.)
  const auto [image_lo, image_hi] = std::minmax_element(per_image.begin(), per_image.end());
  const auto [model_lo, model_hi] = std::minmax_element(per_model.begin(), per_model.end());
  CAPTURE(*image_lo, *image_hi, *model_lo, *model_hi);
  CHECK(*image_lo > 60000);
  CHECK(*model_hi - *model_lo > 4 * (*image_hi - *image_lo));
}
