// Hostile inputs, from the command line (issue 20 items 4, 6, 13, 15 and the "decide and
// document" list): FIFOs and endless files, unreadable folders, memory that runs out, huge
// images, and the decided behaviours (one image under several spellings, spreadsheet
// formulas in CSV cells, `-m ''`). Every run here goes through `timeout`, so that a
// regression that hangs fails instead of holding the suite.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/cli.h"
#include "support/requires.h"

namespace fs = std::filesystem;
using clitest::fixture;
using clitest::q;
using clitest::Run;
using clitest::slurp;

namespace {

// Runs the built medattn under `timeout` (exit 124 when it hangs), after `prefix` (e.g. a
// command that changes the user), with `args` (a shell fragment) and `env` before it.
Run run_bounded(const std::string& args, const std::string& err = "/dev/null", const std::string& prefix = "",
                const std::string& env = "") {
  const std::string cmd = env + (env.empty() ? "" : " ") + prefix + (prefix.empty() ? "" : " ") + "timeout -k 5 120 " +
                          std::string(MEDATTN_BINARY) + " " + args + " 2>" + err;
  return clitest::run_command(cmd);
}

std::vector<nlohmann::json> records_of(const std::string& text) {
  std::istringstream in(text);
  return clitest::jsonl_objects(in);
}

// The record whose file ends with `suffix`, or an empty object.
nlohmann::json record_for(const std::vector<nlohmann::json>& records, const std::string& suffix) {
  for (const auto& r : records) {
    const std::string f = r["file"].get<std::string>();
    if (f.size() >= suffix.size() && f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) return r;
  }
  return nlohmann::json::object();
}

std::string error_text(const nlohmann::json& r) { return r.contains("error") && r["error"].is_string() ? r["error"].get<std::string>() : ""; }

std::string model() { return q(fixture() / "model"); }
fs::path sample_png() { return fixture() / "ph/images/normal/normal_0000.png"; }

}  // namespace

TEST_CASE("FIFOs and links to /dev/zero as inputs are refused with a reason, and nothing hangs", "[cli][hostile][fifo]") {
  const fs::path work = fixture() / "fifo_inputs";
  fs::remove_all(work);
  fs::create_directories(work / "in");
  fs::copy_file(sample_png(), work / "in/a.png");
  REQUIRE(::mkfifo((work / "in/p.png").c_str(), 0644) == 0);
  fs::create_symlink("/dev/zero", work / "in/z.png");
  fs::copy_file(sample_png(), work / "in/c.png");
  const std::string base = "diagnose -m " + model() + " --quiet --format jsonl ";

  SECTION("given directly") {
    const Run r = run_bounded(base + q(work / "in/a.png") + " " + q(work / "in/p.png") + " " + q(work / "in/z.png") + " " +
                              q(work / "in/c.png"));
    REQUIRE(r.code == 1);  // not 124: nothing waited for the FIFO
    const auto recs = records_of(r.out);
    REQUIRE(recs.size() == 4);
    CHECK(error_text(recs[0]).empty());
    CHECK(error_text(recs[1]) == "cannot read image '" + (work / "in/p.png").string() + "': not a regular file (a FIFO)");
    CHECK(error_text(recs[2]) == "cannot read image '" + (work / "in/z.png").string() + "': not a regular file (a character device)");
    CHECK(error_text(recs[3]).empty());
  }
  SECTION("in a - list") {
    const fs::path list = work / "list.txt";
    std::ofstream(list) << (work / "in/a.png").string() << "\n" << (work / "in/p.png").string() << "\n"
                        << (work / "in/z.png").string() << "\n";
    const Run r = run_bounded(base + "- < " + q(list));
    REQUIRE(r.code == 1);
    const auto recs = records_of(r.out);
    REQUIRE(recs.size() == 3);
    CHECK(error_text(recs[0]).empty());
    CHECK(error_text(recs[1]) == "cannot read image '" + (work / "in/p.png").string() + "': not a regular file (a FIFO)");
    CHECK(error_text(recs[2]) == "cannot read image '" + (work / "in/z.png").string() + "': not a regular file (a character device)");
  }
  SECTION("inside a folder: skipped with a notice that says what they are") {
    const fs::path err = work / "err.txt";
    const Run r = run_bounded(base + q(work / "in"), err.string());
    CHECK(r.code == 0);
    const auto recs = records_of(r.out);
    REQUIRE(recs.size() == 2);
    CHECK(error_text(recs[0]).empty());
    CHECK(error_text(recs[1]).empty());
    const std::string log = slurp(err);
    CHECK(log.find("skipped '" + (work / "in/p.png").string() + "': not a regular file (a FIFO)") != std::string::npos);
    CHECK(log.find("skipped '" + (work / "in/z.png").string() + "': not a regular file (a character device)") != std::string::npos);
  }
  SECTION("in an evaluate CSV, and as the CSV itself") {
    const fs::path csv = work / "data.csv";
    std::ofstream(csv) << "path,label\n" << (work / "in/a.png").string() << ",normal\n" << (work / "in/p.png").string()
                       << ",normal\n" << (work / "in/c.png").string() << ",normal\n";
    const fs::path err = work / "eval_err.txt";
    const Run r = run_bounded("evaluate -m " + model() + " " + q(csv) + " --format json", err.string());
    CHECK(r.code == 1);  // a skipped sample (not 124: nothing waited for the FIFO)
    CHECK(slurp(err).find("cannot read image '" + (work / "in/p.png").string() + "': not a regular file (a FIFO)") !=
          std::string::npos);
    REQUIRE(::mkfifo((work / "fifo.csv").c_str(), 0644) == 0);
    const fs::path err2 = work / "eval_err2.txt";
    CHECK(run_bounded("evaluate -m " + model() + " " + q(work / "fifo.csv"), err2.string()).code == 2);
    CHECK(slurp(err2).find("cannot read dataset '" + (work / "fifo.csv").string() + "': not a regular file (a FIFO)") !=
          std::string::npos);
  }
}

TEST_CASE("model files that are FIFOs, links to /dev/zero or over their size limit are refused at once", "[cli][hostile][fifo]") {
  const fs::path work = fixture() / "fifo_model";
  fs::remove_all(work);
  fs::create_directories(work);
  const std::string input = q(sample_png());
  auto copy_model = [&](const std::string& name) {
    const fs::path m = work / name;
    fs::copy(fixture() / "model", m, fs::copy_options::recursive);
    return m;
  };
  auto load_error = [&](const fs::path& m) {
    const fs::path err = work / "err.txt";
    const Run r = run_bounded("diagnose -m " + q(m) + " " + input, err.string());
    CHECK(r.code == 3);
    return slurp(err);
  };
  {
    const fs::path m = copy_model("weights_fifo");
    fs::remove(m / "weights.bin");
    REQUIRE(::mkfifo((m / "weights.bin").c_str(), 0644) == 0);
    CHECK(load_error(m).find("cannot load model '" + (m / "weights.bin").string() + "': not a regular file (a FIFO)") !=
          std::string::npos);
  }
  {
    const fs::path m = copy_model("weights_zero");
    fs::remove(m / "weights.bin");
    fs::create_symlink("/dev/zero", m / "weights.bin");
    CHECK(load_error(m).find("cannot load model '" + (m / "weights.bin").string() +
                             "': not a regular file (a character device)") != std::string::npos);
  }
  {
    const fs::path m = copy_model("card_zero");
    fs::remove(m / "model.json");
    fs::create_symlink("/dev/zero", m / "model.json");
    CHECK(load_error(m).find("cannot load model '" + (m / "model.json").string() +
                             "': not a regular file (a character device)") != std::string::npos);
  }
  {
    const fs::path m = copy_model("card_huge");
    fs::resize_file(m / "model.json", (uint64_t{16} << 20) + 1);  // sparse, over the 16 MB limit
    CHECK(load_error(m).find("cannot load model '" + (m / "model.json").string() + "': file too large (16.0 MB, limit 16.0 MB)") !=
          std::string::npos);
  }
}

TEST_CASE("unreadable folders are reported with the errno's text and counted as failures", "[cli][hostile][permissions]") {
  // Root reads through permission bits, so as root the binary runs as nobody (setpriv).
  const bool root = ::geteuid() == 0;
  MEDATTN_NEEDS(!root || testdeps::has_program("setpriv"), "setpriv (util-linux), to drop root for a permission test");
  const std::string as_user = root ? "setpriv --reuid=65534 --regid=65534 --clear-groups" : "";
  // The fixture and the binary must be reachable for that user.
  REQUIRE(run_bounded("--version", "/dev/null", as_user).code == 0);
  const fs::path work = fixture() / "unreadable";
  fs::remove_all(work);
  fs::create_directories(work / "in/sub");
  fs::copy_file(sample_png(), work / "in/a.png");
  fs::copy_file(sample_png(), work / "in/sub/b.png");
  fs::permissions(work, fs::perms::all, fs::perm_options::add);  // nobody may write the outputs here
  ::chmod((work / "in/sub").c_str(), 0);
  const std::string base = "diagnose -m " + model() + " --format jsonl ";

  const fs::path err = work / "err.txt";
  const Run r = run_bounded(base + q(work / "in"), err.string(), as_user);
  CHECK(r.code == 1);
  const auto recs = records_of(r.out);
  REQUIRE(recs.size() == 2);
  CHECK(error_text(recs[0]).empty());
  CHECK(recs[1]["file"] == (work / "in/sub").string());
  CHECK(error_text(recs[1]) == "cannot read folder '" + (work / "in/sub").string() + "': Permission denied");
  CHECK(slurp(err).find("1 failed") != std::string::npos);

  // The unreadable folder given directly: the same error, not "no images found".
  const Run direct = run_bounded(base + q(work / "in/sub"), err.string(), as_user);
  CHECK(direct.code == 1);
  const auto one = records_of(direct.out);
  REQUIRE(one.size() == 1);
  CHECK(error_text(one[0]) == "cannot read folder '" + (work / "in/sub").string() + "': Permission denied");
  ::chmod((work / "in/sub").c_str(), 0755);
}

TEST_CASE("memory that runs out for one image is that image's error, and the batch carries on", "[cli][hostile][memory]") {
  const fs::path work = fixture() / "oom";
  fs::remove_all(work);
  fs::create_directories(work / "in");
  for (const char* name : {"a.png", "b_big.png", "c.png", "d.png"}) {
    fs::copy_file(fixture() / "ph/images/nodule/nodule_0000.png", work / "in" / name);
  }
  const std::string base = "diagnose -m " + model() + " --quiet --format jsonl --batch-size 4 " + q(work / "in");
  // MEDATTN_TEST_OOM makes the map stage of matching inputs fail as std::bad_alloc would.
  const Run r = run_bounded(base + " --heatmaps " + q(work / "heat"), "/dev/null", "", "MEDATTN_TEST_OOM=b_big");
  CHECK(r.code == 1);
  const auto recs = records_of(r.out);
  REQUIRE(recs.size() == 4);
  CHECK(error_text(recs[1]) == "cannot diagnose '" + (work / "in/b_big.png").string() + "': out of memory");
  const Run clean = run_bounded(base + " --heatmaps " + q(work / "heat2"));
  CHECK(clean.code == 0);
  const auto want = records_of(clean.out);
  REQUIRE(want.size() == 4);
  for (int i : {0, 2, 3}) {
    CHECK(error_text(recs[i]).empty());
    CHECK(recs[i]["probabilities"] == want[i]["probabilities"]);  // tried alone: the same bytes
    CHECK(fs::exists(recs[i]["heatmap"].get<std::string>()));
  }
}

TEST_CASE("a huge image is worked on at a bounded size: records keep its size, heatmaps are 2048 px", "[cli][hostile][memory]") {
  const fs::path work = fixture() / "huge";
  fs::remove_all(work);
  fs::create_directories(work / "in");
  {
    cv::Mat big(10000, 10000, CV_8UC1, cv::Scalar(0));
    cv::circle(big, {5000, 5000}, 3000, cv::Scalar(200), -1);
    REQUIRE(cv::imwrite((work / "in/big.png").string(), big));
  }
  fs::copy_file(sample_png(), work / "in/small.png");
  const Run r = run_bounded("diagnose -m " + model() + " --quiet --format jsonl " + q(work / "in") + " --heatmaps " +
                            q(work / "heat"));
  CHECK(r.code == 0);
  const auto recs = records_of(r.out);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0]["width"] == 10000);
  CHECK(recs[0]["height"] == 10000);
  // The raw map is at the working size; the overlay adds its caption strip and legend to it.
  const cv::Mat raw = cv::imread(recs[0]["heatmap_raw"].get<std::string>(), cv::IMREAD_UNCHANGED);
  CHECK(raw.cols == 2048);
  CHECK(raw.rows == 2048);
  const cv::Mat overlay = cv::imread(recs[0]["heatmap"].get<std::string>(), cv::IMREAD_UNCHANGED);
  CHECK(overlay.cols > 2048);
  CHECK(overlay.cols < 2600);
  // A small image keeps its own size.
  CHECK(cv::imread(recs[1]["heatmap_raw"].get<std::string>(), cv::IMREAD_UNCHANGED).cols == 64);
}


TEST_CASE("decided: one image under several spellings is diagnosed once per spelling", "[cli][decided]") {
  const fs::path work = fixture() / "spellings";
  fs::remove_all(work);
  fs::create_directories(work);
  fs::copy_file(sample_png(), work / "a.png");
  const std::string cd = "cd " + q(work) + " && ";
  const std::string cmd = "cd " + q(work) + " && timeout -k 5 120 " + std::string(MEDATTN_BINARY) + " diagnose -m " + model() +
                          " --quiet --format jsonl --heatmaps heat a.png ./a.png " + q(work / "a.png") + " a.png 2>/dev/null";
  const Run run = clitest::run_command(cmd);
  CHECK(run.code == 0);
  const auto recs = records_of(run.out);
  REQUIRE(recs.size() == 4);
  CHECK(recs[0]["file"] == "a.png");
  CHECK(recs[1]["file"] == "./a.png");
  CHECK(recs[2]["file"] == (work / "a.png").string());
  CHECK(recs[3]["file"] == "a.png");
  for (const auto& r : recs) CHECK(r["probabilities"] == recs[0]["probabilities"]);
  // Heatmap names come from the path alone (README "Outputs"): spellings of one relative path
  // share the overlay of that same image, the absolute spelling has its own.
  CHECK(recs[1]["heatmap"] == recs[0]["heatmap"]);
  CHECK(recs[3]["heatmap"] == recs[0]["heatmap"]);
  CHECK(recs[2]["heatmap"] != recs[0]["heatmap"]);
  CHECK(fs::exists(work / recs[0]["heatmap"].get<std::string>()));  // relative to the run's folder
  CHECK(fs::exists(work / recs[2]["heatmap"].get<std::string>()));
}

TEST_CASE("decided: CSV cells that look like spreadsheet formulas are written as they are", "[cli][decided][csv]") {
  const fs::path work = fixture() / "formulas";
  fs::remove_all(work);
  fs::create_directories(work / "in");
  for (const char* name : {"=1+2.png", "+a.png", "-b.png", "@c.png"}) fs::copy_file(sample_png(), work / "in" / name);
  const fs::path csv = work / "out.csv";
  const std::string base = "diagnose -m " + model() + " --quiet " + q(work / "in") + " -o " + q(csv);
  CHECK(run_bounded(base).code == 0);
  const std::string text = slurp(csv);
  for (const char* name : {"=1+2.png", "+a.png", "-b.png", "@c.png"}) {
    CHECK(text.find((work / "in" / name).string()) != std::string::npos);
    CHECK(text.find("'" + (work / "in" / name).string()) == std::string::npos);  // no quote prefix
  }
  // The names read back exactly: resume has nothing left to do.
  CHECK(run_bounded(base + " --resume").code == 0);
  CHECK(slurp(csv) == text);
}

TEST_CASE("decided: -m with an empty directory name is a usage error", "[cli][decided]") {
  const fs::path err = fixture() / "empty_m.txt";
  CHECK(run_bounded("diagnose -m '' " + q(sample_png()), err.string()).code == 2);
  CHECK(slurp(err).find("--model: must not be empty") != std::string::npos);
  CHECK(run_bounded("evaluate -m '' " + q(fixture() / "ph/images"), err.string()).code == 2);
  CHECK(slurp(err).find("--model: must not be empty") != std::string::npos);
}
