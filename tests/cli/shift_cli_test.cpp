// evaluate --shift through the binary: the JSON `shift` object, its clean figures equal to
// evaluate's own, seen flags from the card, repeatability, limits and refusals.
#include <set>

#include "support/cli.h"

using clitest::fixture;
using clitest::medattn;
using clitest::q;
using clitest::Run;

TEST_CASE("evaluate --shift reports every corruption of the card's set at five severities", "[cli][shift]") {
  const auto& d = fixture();
  const std::string args = "evaluate -m " + q(d / "model") + " " + q(d / "ph/images") + " --format json --threads 1 --shift";
  const Run r = medattn(args);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.contains("shift"));
  const auto& s = j["shift"];
  CHECK(s["set"] == "radiograph");  // the phantom model's card names modality OT
  CHECK(s["severities"] == 5);
  CHECK(s["n"] == j["n"]);
  // The clean images go through the same path as evaluate's own figures.
  CHECK(s["clean"]["accuracy"] == j["accuracy"]);
  CHECK(s["clean"]["ece"].get<double>() == Approx(j["ece"].get<double>()).margin(1e-4));
  const std::vector<std::string> expected = {"exposure", "quantum_noise", "blur", "downsample", "edge_enhancement",
                                             "jpeg", "window", "bit_depth", "grid_lines"};
  REQUIRE(s["corruptions"].size() == expected.size());
  // train's default augmentation applies intensity, noise, blur and resolution changes.
  const std::set<std::string> seen = {"exposure", "quantum_noise", "blur", "downsample", "window"};
  int unseen = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& c = s["corruptions"][i];
    INFO(expected[i]);
    CHECK(c["name"] == expected[i]);
    CHECK(c["seen"] == (seen.count(expected[i]) == 1));
    unseen += c["seen"] ? 0 : 1;
    REQUIRE(c["severities"].size() == 5);
    for (int k = 0; k < 5; ++k) {
      CHECK(c["severities"][k]["severity"] == k + 1);
      CHECK(c["severities"][k]["n"] == j["n"]);
      const double acc = c["severities"][k]["accuracy"];
      CHECK(acc >= 0.0);
      CHECK(acc <= 1.0);
    }
  }
  CHECK(s["summary"]["unseen"]["corruptions"] == unseen);
  CHECK(s["summary"]["all"]["corruptions"] == 9);
  // Mean accuracy over the unseen cells, recomputed from the cells.
  double sum = 0;
  for (const auto& c : s["corruptions"]) {
    if (c["seen"]) continue;
    for (const auto& cell : c["severities"]) sum += cell["accuracy"].get<double>();
  }
  CHECK(s["summary"]["unseen"]["accuracy"].get<double>() == Approx(sum / (5 * unseen)).margin(1e-3));

  // The benchmark is fixed: the same command gives the same figures.
  const Run again = medattn(args);
  REQUIRE(again.code == 0);
  CHECK(nlohmann::json::parse(again.out)["shift"] == s);
}

TEST_CASE("evaluate --shift-set, --shift-limit and the table", "[cli][shift]") {
  const auto& d = fixture();
  const std::string base = "evaluate -m " + q(d / "model") + " " + q(d / "ph/images") + " --threads 1 --shift";
  const Run mri = medattn(base + " --format json --shift-set mri --shift-limit 10");
  REQUIRE(mri.code == 0);
  const auto s = nlohmann::json::parse(mri.out)["shift"];
  CHECK(s["set"] == "mri");
  CHECK(s["n"] == 10);
  CHECK(s["corruptions"].size() == 5);
  CHECK(s["corruptions"][0]["name"] == "bias_field");

  const Run table = medattn(base + " --shift-set ultrasound --shift-limit 6");
  REQUIRE(table.code == 0);
  CHECK_THAT(table.out, Catch::Contains("shift benchmark: ultrasound set, 5 severities, seed 1, 6 images"));
  CHECK_THAT(table.out, Catch::Contains("depth_attenuation    unseen"));
  CHECK_THAT(table.out, Catch::Contains("gain                 seen"));
  CHECK_THAT(table.out, Catch::Contains("unseen mean (3 corruptions): accuracy"));

  const auto err = d / "shift_err.txt";
  CHECK(medattn(base + " --shift-set ct", err.string()).code == 2);
  CHECK_THAT(clitest::slurp(err), Catch::Contains("--shift-set: ct not in {radiograph,mri,ultrasound,dermoscopy}"));
}

TEST_CASE("evaluate --shift --shift-to-card keeps the summary in the card and leaves the weights alone", "[cli][shift]") {
  const auto& d = fixture();
  const auto model = d / "shift-to-card-model";  // a copy: the fixture's model stays as it is
  std::filesystem::remove_all(model);
  std::filesystem::copy(d / "model", model, std::filesystem::copy_options::recursive);
  auto bytes = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string weights = bytes(model / "weights.bin");
  const std::string args = "evaluate -m " + q(model) + " " + q(d / "ph/images") + " --format json --threads 1 --shift --shift-to-card";
  const Run r = medattn(args + " --shift-limit 12");
  REQUIRE(r.code == 0);
  const auto shift = nlohmann::json::parse(r.out)["shift"];
  const auto card = nlohmann::json::parse(medattn("info --json -m " + q(model)).out);
  CHECK(bytes(model / "weights.bin") == weights);
  CHECK(card["validation"]["shift"]["summary"] == shift["summary"]);
  CHECK(card["validation"]["shift"]["n"] == 12);
  const std::string limitations = card["intended_use"]["limitations"];
  CHECK(limitations.find("Shift benchmark (radiograph set, 12 images)") != std::string::npos);
  // A second run replaces the sentence rather than adding another; the model still loads and
  // gives the same figures (its weights did not change).
  const Run again = medattn(args + " --shift-limit 10");
  REQUIRE(again.code == 0);
  const std::string after = nlohmann::json::parse(medattn("info --json -m " + q(model)).out)["intended_use"]["limitations"];
  CHECK(after.find("Shift benchmark (") == after.rfind("Shift benchmark ("));
  CHECK(after.find("(radiograph set, 10 images)") != std::string::npos);
  CHECK(nlohmann::json::parse(again.out)["accuracy"] == nlohmann::json::parse(r.out)["accuracy"]);
  // Without --shift the flag is a usage error.
  CHECK(medattn("evaluate -m " + q(model) + " " + q(d / "ph/images") + " --shift-to-card").code == 2);
}
