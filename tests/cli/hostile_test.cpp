// Hostile inputs and options from the command line (issue 20): names that are not UTF-8,
// unbounded and non-finite option values, terminal escapes in names, pathological previews,
// non-finite pixels.
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/cli.h"

namespace fs = std::filesystem;
using clitest::fixture;
using clitest::medattn;
using clitest::q;
using clitest::Run;
using clitest::slurp;

namespace {

std::vector<nlohmann::json> parse_lines(const std::string& text) {
  std::istringstream in(text);
  return clitest::jsonl_objects(in);
}

// "e961" -> "\xe9a" (the test's own decoder, so that it checks the README's description).
std::string unhex(const std::string& hex) {
  REQUIRE(hex.size() % 2 == 0);
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// The bytes of the path a record names: "file_hex" when the name is not UTF-8, else "file".
std::string record_file(const nlohmann::json& r) {
  if (r.contains("file_hex")) return unhex(r["file_hex"].get<std::string>());
  return r["file"].get<std::string>();
}

}  // namespace

TEST_CASE("names that are not UTF-8 are recorded losslessly in json and jsonl, and resume matches them", "[cli][hostile]") {
  const fs::path d = fixture();
  const fs::path work = d / "latin1";
  const fs::path in = work / "in";
  fs::create_directories(in);
  const fs::path image = d / "ph/images/normal/normal_0000.png";
  const std::string latin1 = (in / "b_latin1-\xe9.png").string();
  fs::copy_file(image, in / "a_ok.png");
  fs::copy_file(image, latin1);
  fs::copy_file(image, in / "c_ok.png");
  const std::string base = "diagnose -m " + q(d / "model") + " --quiet ";

  const fs::path jsonl = work / "b.jsonl";
  const Run r = medattn(base + q(in) + " -o " + q(jsonl));
  CHECK(r.code == 0);
  const auto records = parse_lines(slurp(jsonl));
  REQUIRE(records.size() == 3);
  CHECK(record_file(records[0]) == (in / "a_ok.png").string());
  CHECK(record_file(records[1]) == latin1);
  CHECK(records[1]["file"] == (in / "b_latin1-\\xe9.png").string());  // readable, marked as escaped
  CHECK(!records[0].contains("file_hex"));  // well-formed names are as before
  CHECK(record_file(records[2]) == (in / "c_ok.png").string());
  for (const auto& rec : records) CHECK(rec["error"].is_null());

  // Resume reads the names back byte for byte: nothing is left to do.
  const std::string before = slurp(jsonl);
  CHECK(medattn(base + q(in) + " -o " + q(jsonl) + " --resume").code == 0);
  CHECK(slurp(jsonl) == before);

  // merge with --inputs finds every input, the one that is not UTF-8 included.
  const fs::path err = work / "merge_err.txt";
  CHECK(medattn("merge " + q(jsonl) + " -o " + q(work / "merged.jsonl") + " --inputs " + q(in), err.string()).code == 0);
  CHECK(slurp(work / "merged.jsonl") == before);

  // One JSON array.
  const fs::path json = work / "b.json";
  CHECK(medattn(base + q(in) + " -o " + q(json)).code == 0);
  const auto array = nlohmann::json::parse(slurp(json));
  REQUIRE(array.size() == 3);
  CHECK(record_file(array[1]) == latin1);

  // A '-' list with such a line.
  std::ofstream(work / "list.txt") << latin1 << "\n" << (in / "a_ok.png").string() << "\n";
  const Run listed = medattn(base + "--format jsonl - < " + q(work / "list.txt"));
  CHECK(listed.code == 0);
  const auto from_list = parse_lines(listed.out);
  REQUIRE(from_list.size() == 2);
  CHECK(record_file(from_list[0]) == latin1);
}

TEST_CASE("numeric options must be finite and in range: exit 2 with one short line", "[cli][hostile][options]") {
  const fs::path d = fixture();
  const std::string run = "diagnose -m " + q(d / "model") + " --quiet --format jsonl " + q(d / "ph/images/normal/normal_0000.png") + " ";
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"--threads 100000", "--threads: must be a whole number in [0, 256] (got 100000)"},
      {"--threads -1", "--threads: must be a whole number in [0, 256] (got -1)"},
      {"--threads 1e300", "--threads: must be a whole number in [0, 256] (got 1e300)"},
      {"--batch-size 100000000", "--batch-size: must be a whole number in [1, 4096] (got 100000000)"},
      {"--workers 1000", "--workers: must be a whole number in [1, 64] (got 1000)"},
      {"--max-file-size nan", "--max-file-size: must be a number in (0, 1048576] (got nan)"},
      {"--max-file-size 1e300", "--max-file-size: must be a number in (0, 1048576] (got 1e300)"},
      {"--max-file-size -1", "--max-file-size: must be a number in (0, 1048576] (got -1)"},
      {"--max-file-size " + std::string(400, '9'), "--max-file-size: must be a number in (0, 1048576] (got 999999999999999999999...)"},
      {"--max-pixels 1e300", "--max-pixels: must be a whole number in [1, 1000000000000] (got 1e300)"},
      {"--heatmap-alpha nan", "--heatmap-alpha: must be a number in [0, 1] (got nan)"},
      {"--saliency-sigma nan", "--saliency-sigma: must be a number in [0, 1000] (got nan)"},
      {"--discard-ratio nan", "--discard-ratio: must be a number in [0, 0.999] (got nan)"},
      {"--contour inf", "--contour: must be a number in [0, 1] (got inf)"},
      {"--heatmap-flips ,,", "--heatmap-flips: empty flip in ',,' (expected hflip, vflip or none, separated by commas)"},
      {"--tta hflip,", "--tta: empty flip in 'hflip,' (expected hflip, vflip or none, separated by commas)"},
      {"--slice -5", "--slice: must be a whole number in [0, 32767] (got -5)"},
      {"--frame -1", "--frame: must be a whole number in [0, 1000000] (got -1)"},
  };
  const fs::path err = d / "options_err.txt";
  for (const auto& c : cases) {
    INFO(c.args);
    CHECK(medattn(run + c.args, err.string()).code == 2);
    const std::string log = slurp(err);
    CHECK(log.substr(0, log.find('\n')) == "error: " + c.message);
    CHECK(log.size() < 300);  // one short line and the hint, no stack trace
  }
  // Harmless values are not reported.
  for (const std::string ok : {"--threads 2", "--threads 0", "--max-file-size 0.5", "--heatmap-alpha 1", "--slice 0",
                               "--heatmap-flips none", "--heatmap-flips hflip,vflip", "--batch-size 4096"}) {
    INFO(ok);
    CHECK(medattn(run + ok).code == 0);
  }
  // The other commands' thread counts are bounded too.
  CHECK(medattn("evaluate -m " + q(d / "model") + " " + q(d / "ph/images") + " --threads 100000", err.string()).code == 2);
  CHECK(slurp(err).rfind("error: --threads: must be a whole number in [0, 256] (got 100000)\n", 0) == 0);
}

TEST_CASE("control characters in file names are shown escaped in the table and in log lines, JSON keeps them exactly", "[cli][hostile][terminal]") {
  const fs::path d = fixture();
  const fs::path in = d / "escapes";
  fs::create_directories(in);
  const std::string good = "a-\x1b]0;owned\x07-\x1b[2J.png", bad = "b-\x1b[31m-\x07.png";
  fs::copy_file(d / "ph/images/normal/normal_0000.png", in / good, fs::copy_options::overwrite_existing);
  std::ofstream(in / bad) << "not a png";
  const std::string base = "diagnose -m " + q(d / "model") + " --quiet " + q(in);
  const fs::path err = d / "escapes_err.txt";
  const Run table = medattn(base, err.string());
  CHECK(table.code == 1);
  const std::string log = slurp(err);
  for (const std::string* text : {&table.out, &log}) {
    CHECK(text->find('\x1b') == std::string::npos);
    CHECK(text->find('\x07') == std::string::npos);
  }
  CHECK(table.out.find("owned\\x07-\\x1b[2J.png") != std::string::npos);  // long paths are shortened in the middle
  CHECK(table.out.find("b-\\x1b[31m-\\x07.png") != std::string::npos);
  CHECK(log.find("error: cannot read image '" + (in / "b-\\x1b[31m-\\x07.png").string() + "'") != std::string::npos);
  // JSON escapes them its own way, and reading it back gives the exact name.
  const Run jsonl = medattn(base + " --format jsonl");
  const auto records = parse_lines(jsonl.out);
  REQUIRE(records.size() == 2);
  CHECK(records[0]["file"] == (in / good).string());
  CHECK(records[1]["file"] == (in / bad).string());
}

TEST_CASE("the terminal preview of tall and wide slivers has a bounded height, and the other images are still diagnosed", "[cli][hostile][terminal]") {
  const fs::path d = fixture();
  const fs::path in = d / "slivers";
  fs::create_directories(in);
  cv::Mat tall(100000, 1, CV_8UC1), wide(1, 5000, CV_8UC1);
  cv::randu(tall, 0, 255);
  cv::randu(wide, 0, 255);
  REQUIRE(cv::imwrite((in / "a_tall.png").string(), tall));
  REQUIRE(cv::imwrite((in / "b_wide.png").string(), wide));
  fs::copy_file(d / "ph/images/normal/normal_0000.png", in / "c_ok.png", fs::copy_options::overwrite_existing);
  for (const std::string mode : {"", " --ascii"}) {
    INFO(mode);
    const Run r = medattn("diagnose -m " + q(d / "model") + " --quiet --preview --preview-width 1000" + mode + " " + q(in));
    CHECK((r.code == 0 || r.code == 1));
    const auto lines = std::count(r.out.begin(), r.out.end(), '\n');
    CHECK(lines < 3 * 80);  // at most 64 rows of picture per image, plus its row, legend and notes
    CHECK(r.out.find("c_ok.png") != std::string::npos);
  }
}

TEST_CASE("an image with a NaN pixel is that image's error, the others are diagnosed", "[cli][hostile][nonfinite]") {
  const fs::path d = fixture();
  const fs::path in = d / "nan";
  fs::create_directories(in);
  cv::Mat pixels(64, 64, CV_32FC1, cv::Scalar(100.0f));
  pixels.at<float>(10, 20) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE(cv::imwrite((in / "a_nan.tiff").string(), pixels));
  pixels.at<float>(10, 20) = 50.0f;
  pixels.at<float>(30, 30) = std::numeric_limits<float>::infinity();
  REQUIRE(cv::imwrite((in / "b_inf.tiff").string(), pixels));
  fs::copy_file(d / "ph/images/normal/normal_0000.png", in / "c_ok.png", fs::copy_options::overwrite_existing);
  const Run r = medattn("diagnose -m " + q(d / "model") + " --quiet --format jsonl " + q(in));
  CHECK(r.code == 1);
  const auto records = parse_lines(r.out);
  REQUIRE(records.size() == 3);
  CHECK(records[0]["diagnosis"].is_null());
  CHECK(records[0]["error"] == "cannot read image '" + (in / "a_nan.tiff").string() + "': 1 pixel value(s) are not finite (NaN or infinity)");
  CHECK(records[1]["error"] == "cannot read image '" + (in / "b_inf.tiff").string() + "': 1 pixel value(s) are not finite (NaN or infinity)");
  CHECK(records[2]["error"].is_null());
  CHECK(records[2]["probability"].is_number());
}

TEST_CASE("a card that makes the model input or output non-finite gives each image an error, not null probabilities", "[cli][hostile][nonfinite]") {
  const fs::path d = fixture();
  const std::string image = q(d / "ph/images/normal/normal_0000.png");
  struct Case {
    std::string section, key;
    double value;
    std::string why;
  };
  const std::vector<Case> cases = {
      {"preprocess", "mean", 1e308, "the model input is not finite after preprocessing (the card's mean or std?)"},
      {"calibration", "temperature", 5e-324, "the model's output is not finite (NaN or infinity)"},
  };
  for (const auto& c : cases) {
    INFO(c.key);
    const fs::path model = d / ("model_" + c.key);
    fs::remove_all(model);
    fs::copy(d / "model", model, fs::copy_options::recursive);
    auto card = nlohmann::json::parse(slurp(model / "model.json"));
    card[c.section][c.key] = c.value;
    std::ofstream(model / "model.json") << card.dump(2);
    const Run r = medattn("diagnose -m " + q(model) + " --quiet --format jsonl " + image);
    CHECK(r.code == 1);
    const auto records = parse_lines(r.out);
    REQUIRE(records.size() == 1);
    CHECK(records[0]["error"] == "cannot diagnose '" + (d / "ph/images/normal/normal_0000.png").string() + "': " + c.why);
  }
}
