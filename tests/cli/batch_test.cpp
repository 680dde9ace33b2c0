// Batch processing from the command line: kill -9 and --resume, shards and merge, reading
// paths from stdin, the HTML report in a real browser, the closing summary.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "support/cli.h"
#include "support/requires.h"

namespace fs = std::filesystem;
using clitest::fixture;
using clitest::spawn;
using clitest::wait_until;
using clitest::medattn;
using clitest::q;
using clitest::Run;
using clitest::slurp;

namespace {

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::ifstream in(p);
  return clitest::jsonl_objects(in);
}

// file -> record, failing on a file recorded twice.
std::map<std::string, nlohmann::json> by_file(const std::vector<nlohmann::json>& records) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& r : records) {
    INFO(r.dump());
    CHECK(out.emplace(r["file"].get<std::string>(), r).second);
  }
  return out;
}

int count_lines(const fs::path& p) {
  std::ifstream in(p);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

}  // namespace

TEST_CASE("kill -9 mid-run, then --resume: the same records as an uninterrupted run, each file once", "[cli][batch]") {
  const fs::path d = fixture();
  const fs::path work = d / "resume";
  fs::create_directories(work);
  // The inputs come as paths on stdin ('-'), so the run can be held at a known point: after 5
  // paths it has written their 5 records and waits for the sixth, and is killed there.
  std::vector<std::string> paths;
  for (const auto& f : fs::recursive_directory_iterator(d / "ph/images")) {
    if (f.is_regular_file()) paths.push_back(f.path().string());
  }
  std::sort(paths.begin(), paths.end());
  REQUIRE(paths.size() == 24);
  std::string all;
  for (const auto& p : paths) all += p + "\n";
  std::ofstream(work / "list.txt") << all;
  const std::vector<std::string> common = {"diagnose", "-m", (d / "model").string(), "-", "--batch-size", "8",
                                           "--workers", "1", "--threads", "1", "--quiet"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = common;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  auto run_with_list = [&](const std::vector<std::string>& args) {
    const int list = ::open((work / "list.txt").c_str(), O_RDONLY);
    REQUIRE(list >= 0);
    const pid_t pid = spawn(args, list);
    ::close(list);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
  };
  // The reference: one uninterrupted run.
  REQUIRE(run_with_list(with({"-o", (work / "full.jsonl").string(), "--heatmaps", (work / "full-heat").string()})) == 0);
  const auto full = by_file(read_jsonl(work / "full.jsonl"));
  REQUIRE(full.size() == 24);

  const fs::path out = work / "part.jsonl", heat = work / "part-heat";
  int feed[2];
  REQUIRE(::pipe(feed) == 0);
  pid_t pid = spawn(with({"-o", out.string(), "--heatmaps", heat.string()}), feed[0]);
  ::close(feed[0]);
  std::string first5;
  for (int i = 0; i < 5; ++i) first5 += paths[i] + "\n";
  REQUIRE(::write(feed[1], first5.data(), first5.size()) == static_cast<ssize_t>(first5.size()));
  wait_until([&] { return count_lines(out) == 5; });
  REQUIRE(::kill(pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  ::close(feed[1]);
  CHECK(WIFSIGNALED(status));
  CHECK(count_lines(out) == 5);
  // What the kill left is complete: every line parses, every heatmap named in it decodes.
  for (const auto& r : read_jsonl(out)) CHECK(!cv::imread(r["heatmap"].get<std::string>()).empty());

  // Resumed, the 19 other images are scored in other batches than in the reference run (the
  // first batch holds images 6-13, not 1-8): the records are still the same, bit for bit.
  CHECK(run_with_list(with({"-o", out.string(), "--heatmaps", heat.string(), "--resume"})) == 0);
  const auto resumed = by_file(read_jsonl(out));  // fails on a file recorded twice
  REQUIRE(resumed.size() == full.size());
  for (const auto& [file, ref] : full) {
    INFO(file);
    REQUIRE(resumed.count(file));
    const auto& got = resumed.at(file);
    CHECK(got["diagnosis"] == ref["diagnosis"]);
    CHECK(got["probabilities"] == ref["probabilities"]);
    CHECK(got["model"] == ref["model"]);
    // The same heatmap name, and a complete PNG, equal to the uninterrupted run's.
    const fs::path mine = got["heatmap"].get<std::string>(), theirs = ref["heatmap"].get<std::string>();
    CHECK(mine.filename() == theirs.filename());
    const cv::Mat a = cv::imread(mine.string(), cv::IMREAD_UNCHANGED), b = cv::imread(theirs.string(), cv::IMREAD_UNCHANGED);
    REQUIRE(!a.empty());
    CHECK(cv::norm(a, b, cv::NORM_INF) == 0);
  }
  // The resumed file, in its order, holds the reference's lines byte for byte.
  std::map<std::string, std::string> ref_lines;
  {
    std::ifstream in(work / "full.jsonl");
    for (std::string line; std::getline(in, line);) {
      std::string text = line;
      for (size_t p; (p = text.find((work / "full-heat").string())) != std::string::npos;) text.replace(p, (work / "full-heat").string().size(), "HEAT");
      ref_lines[nlohmann::json::parse(line)["file"].get<std::string>()] = text;
    }
  }
  std::ifstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::string text = line;
    for (size_t p; (p = text.find(heat.string())) != std::string::npos;) text.replace(p, heat.string().size(), "HEAT");
    CHECK(text == ref_lines[nlohmann::json::parse(line)["file"].get<std::string>()]);
  }
  // A second --resume has nothing left to do and writes nothing.
  const auto size = fs::file_size(out);
  CHECK(run_with_list(with({"-o", out.string(), "--resume"})) == 0);
  CHECK(fs::file_size(out) == size);
}

TEST_CASE("resuming repairs a record cut short and refuses formats it cannot read back", "[cli][batch]") {
  const fs::path d = fixture();
  const fs::path work = d / "repair";
  fs::create_directories(work);
  const std::string base = "diagnose -m " + q(d / "model") + " " + q(d / "ph/images/nodule") + " --quiet";
  const fs::path out = work / "r.csv";
  REQUIRE(medattn(base + " -o " + q(out)).code == 0);  // .csv implies --format csv
  const std::string whole = slurp(out);
  REQUIRE(count_lines(out) == 9);  // header + 8
  // Cut the file in the middle of its last record, as a crash mid-write would.
  const size_t cut = whole.rfind('\n', whole.size() - 2) + 10;
  fs::resize_file(out, cut);
  const fs::path err = work / "err.txt";
  CHECK(medattn(base + " -o " + q(out) + " --resume", err.string()).code == 0);
  CHECK(slurp(out) == whole);
  CHECK(slurp(err).find("removed a record cut short") != std::string::npos);
  CHECK(medattn(base + " --resume").code == 2);                              // no -o
  CHECK(medattn(base + " --resume --format json -o " + q(work / "x.json")).code == 2);  // json cannot be appended
}

TEST_CASE("shards split the inputs without overlap, merge joins them and reports gaps and duplicates", "[cli][batch]") {
  const fs::path d = fixture();
  const fs::path work = d / "shards";
  fs::create_directories(work);
  // The default batch size: a shard's batches hold other images than the full run's, and the
  // records still agree byte for byte (batch-invariant inference).
  const std::string base = "diagnose -m " + q(d / "model") + " " + q(d / "ph/images") + " --quiet --format jsonl";
  REQUIRE(medattn(base + " -o " + q(work / "full.jsonl")).code == 0);
  const auto full = by_file(read_jsonl(work / "full.jsonl"));
  std::map<std::string, nlohmann::json> union_;
  std::vector<std::string> parts;
  for (int k = 0; k < 3; ++k) {
    const fs::path part = work / ("part-" + std::to_string(k) + ".jsonl");
    parts.push_back(q(part));
    REQUIRE(medattn(base + " --shard " + std::to_string(k) + "/3 -o " + q(part)).code == 0);
    const auto records = read_jsonl(part);
    CHECK(!records.empty());  // 24 inputs over 3 shards: none is empty with this hash
    for (const auto& r : records) {
      INFO(r["file"]);
      CHECK(union_.emplace(r["file"].get<std::string>(), r).second);  // no overlap
    }
  }
  REQUIRE(union_.size() == full.size());
  for (const auto& [file, r] : full) {
    REQUIRE(union_.count(file));
    CHECK(union_.at(file)["probabilities"] == r["probabilities"]);
  }
  // merge: complete and clean -> exit 0, in the order of a full run.
  const fs::path merged = work / "merged.jsonl";
  CHECK(medattn("merge " + parts[0] + " " + parts[1] + " " + parts[2] + " -o " + q(merged) + " --inputs " + q(d / "ph/images")).code == 0);
  CHECK(slurp(merged) == slurp(work / "full.jsonl"));
  // A shard missing -> exit 1 naming what is missing; a shard given twice -> duplicates.
  const fs::path err = work / "err.txt";
  CHECK(medattn("merge " + parts[0] + " " + parts[1] + " -o " + q(work / "m2.jsonl") + " --inputs " + q(d / "ph/images"), err.string()).code == 1);
  const int part2 = count_lines(work / "part-2.jsonl");
  const std::string log = slurp(err);
  CHECK(log.find("0 duplicate(s), " + std::to_string(part2) + " missing") != std::string::npos);
  CHECK(log.find("missing: '") != std::string::npos);
  CHECK(medattn("merge " + parts[0] + " " + parts[0] + " -o " + q(work / "m3.jsonl"), err.string()).code == 1);
  CHECK(slurp(err).find("duplicate: '") != std::string::npos);
  CHECK(medattn(base + " --shard 3/3").code == 2);
  CHECK(medattn(base + " --shard 1").code == 2);
}

TEST_CASE("'-' reads paths from stdin, the summary counts diagnoses and failures by reason", "[cli][batch]") {
  const fs::path d = fixture();
  const fs::path work = d / "stdin";
  fs::create_directories(work);
  std::ofstream(work / "broken.png") << "not a png";
  const std::string list = (d / "ph/images/normal/normal_0000.png").string() + "\n" + (work / "broken.png").string() +
                           "\n\n" + (d / "ph/images/nodule/nodule_0000.png").string() + "\n";
  std::ofstream(work / "list.txt") << list;
  const fs::path err = work / "err.txt";
  const Run r = medattn("diagnose -m " + q(d / "model") + " --format jsonl - < " + q(work / "list.txt"), err.string());
  CHECK(r.code == 1);
  std::vector<std::string> files;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) files.push_back(nlohmann::json::parse(line)["file"]);
  CHECK(files == std::vector<std::string>{(d / "ph/images/normal/normal_0000.png").string(), (work / "broken.png").string(),
                                          (d / "ph/images/nodule/nodule_0000.png").string()});
  const std::string log = slurp(err);
  CHECK(log.find("diagnosed 2 of 3 image(s), 1 failed") != std::string::npos);
  CHECK(log.find("failed, cannot read image: not a supported image (unknown format; supported: DICOM, PNG, JPEG, TIFF, BMP, NIfTI): 1\n") != std::string::npos);
}

TEST_CASE("the HTML report opens in headless Chromium with one row per input and a visible page", "[cli][batch][browser]") {
  const fs::path d = fixture();
  const fs::path work = d / "report";
  fs::create_directories(work);
  std::ofstream(work / "broken.png") << "not a png";
  const fs::path html = work / "report.html";
  const Run r = medattn("diagnose -m " + q(d / "model") + " --quiet --format jsonl --report " + q(html) + " " +
                        q(d / "ph/images") + " " + q(work / "broken.png"));
  CHECK(r.code == 1);
  REQUIRE(fs::exists(html));
  const std::string page = slurp(html);
  CHECK(page.find("</html>") != std::string::npos);
  for (const auto& f : fs::directory_iterator(work)) CHECK(f.path().string().find(".tmp") == std::string::npos);

  std::string chromium;
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (fs::exists(c)) chromium = c;
  }
  MEDATTN_NEEDS(!chromium.empty(), "chromium (`make test` installs Debian's: scripts/setup.sh --test)");
  const std::string flags = " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir=" +
                            q(work / "profile") + " ";
  // The DOM after the page's script ran: count the table's rows.
  const std::string dom_cmd = chromium + flags + "--dump-dom 'file://" + html.string() + "' 2>/dev/null";
  FILE* p = popen(dom_cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string dom;
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) dom.append(buf, n);
  pclose(p);
  auto count = [&](const std::string& needle) {
    int n = 0;
    for (size_t pos = dom.find(needle); pos != std::string::npos; pos = dom.find(needle, pos + 1)) ++n;
    return n;
  };
  CHECK(count("<tr class=\"ok\">") == 24);
  CHECK(count("<tr class=\"error\">") == 1);
  CHECK(count("data:image/jpeg;base64,") == 24);
  // A screenshot that is not blank.
  const fs::path shot = work / "shot.png";
  const std::string shot_cmd = chromium + flags + "--window-size=1200,900 --screenshot=" + q(shot) + " 'file://" +
                               html.string() + "' >/dev/null 2>&1";
  CHECK(std::system(shot_cmd.c_str()) == 0);
  const cv::Mat img = cv::imread(shot.string(), cv::IMREAD_GRAYSCALE);
  REQUIRE(!img.empty());
  cv::Scalar mean, sd;
  cv::meanStdDev(img, mean, sd);
  CHECK(sd[0] > 10.0);
}

TEST_CASE("outputs never overwrite inputs, follow no symlink, and a rerun skips its own heatmaps", "[cli][batch][safety]") {
  const fs::path d = fixture();
  const fs::path work = d / "safety";
  fs::create_directories(work / "scans");
  for (const char* f : {"normal/normal_0000.png", "nodule/nodule_0000.png"}) {
    fs::copy_file(d / "ph/images" / f, work / "scans" / fs::path(f).filename(), fs::copy_options::overwrite_existing);
  }
  const fs::path input = work / "scans/normal_0000.png";
  const std::string before = slurp(input);
  const std::string base = "diagnose -m " + q(d / "model") + " --quiet ";
  CHECK(medattn(base + q(input) + " -o " + q(input)).code == 2);
  CHECK(medattn(base + q(input) + " --report " + q(input)).code == 2);
  CHECK(slurp(input) == before);

  // A symlink planted where a heatmap will go is replaced, its target untouched.
  const fs::path heat = work / "scans/heat";
  fs::create_directories(heat);
  std::ofstream(work / "precious.txt") << "keep me";
  // Heatmap names depend on the path as given alone: learnt from a run into another folder.
  const Run probe = medattn(base + "--format jsonl --heatmaps " + q(work / "probe") + " " + q(work / "scans"));
  REQUIRE(probe.code == 0);
  std::string name;
  std::istringstream probe_lines(probe.out);
  for (const auto& rec : clitest::jsonl_objects(probe_lines)) {
    if (rec["file"] == input.string()) name = fs::path(rec["heatmap"].get<std::string>()).filename().string();
  }
  REQUIRE(!name.empty());
  fs::remove_all(work / "probe");
  const fs::path planted = heat / name;
  fs::create_symlink(work / "precious.txt", planted);
  // The heatmap folder lies inside the folder being diagnosed: its PNGs are not inputs.
  for (int run = 0; run < 2; ++run) {
    const Run r = medattn(base + "--format jsonl --heatmaps " + q(heat) + " " + q(work / "scans"));
    CHECK(r.code == 0);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 2);
  }
  CHECK(slurp(work / "precious.txt") == "keep me");
  CHECK(fs::is_regular_file(fs::symlink_status(planted)));
  CHECK(!cv::imread(planted.string()).empty());
}

TEST_CASE("train killed with -9 and resumed ends with the weights of an uninterrupted run", "[cli][train][safety]") {
  const fs::path d = fixture();
  const fs::path work = d / "train-kill";
  fs::create_directories(work);
  auto args = [&](const fs::path& out) {
    return std::vector<std::string>{"train", (d / "ph/images").string(), "--out", out.string(), "--classes",
                                    "normal,nodule,consolidation", "--epochs", "6", "--image-size", "32", "--stem", "8,16",
                                    "--dim", "16", "--depth", "1", "--heads", "2", "--batch-size", "4", "--threads", "1"};
  };
  int status = 0;
  pid_t pid = spawn(args(work / "full"));
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));

  // Killed with SIGKILL right after epoch 2's checkpoint is on disk (the binary's fault
  // injection hook), so the kill always lands mid-run.
  pid = spawn(args(work / "part"), -1, {"MEDATTN_TEST_KILL_AFTER_EPOCH=2"});
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  CHECK(fs::exists(work / "part/checkpoint/state.json"));
  REQUIRE_FALSE(fs::exists(work / "part/weights.bin"));  // killed before the end
  auto resume = args(work / "part");
  resume.push_back("--resume");
  pid = spawn(resume);
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(slurp(work / "part/weights.bin") == slurp(work / "full/weights.bin"));
}
