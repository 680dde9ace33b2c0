// Hostile conditions on the output side (issue 20 items 2, 3, 8, 10, 11, 12, 14, 16, 17, 19):
// heatmap names that keep their meaning, locked outputs, temporaries that cannot be hijacked
// and do not stay behind, resume retries, checked writes, CSV records with newlines, and
// outputs that would overwrite inputs or each other.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/fs.h"
#include "io/csv.h"
#include "pipeline/batch.h"
#include "support/cli.h"

namespace fs = std::filesystem;
using clitest::fixture;
using clitest::q;
using clitest::Run;
using clitest::slurp;
using clitest::spawn;
using clitest::wait_until;

namespace {

// clitest::medattn under another name: this file also uses namespace medattn.
Run cli(const std::string& args, const std::string& err = "/dev/null") { return clitest::medattn(args, err); }

std::vector<nlohmann::json> parse_lines(const std::string& text) {
  std::istringstream in(text);
  return clitest::jsonl_objects(in);
}

std::string base_cmd() { return "diagnose -m " + q(fixture() / "model") + " --quiet --threads 1 --workers 1 "; }

// A fresh folder under the fixture.
fs::path fresh(const std::string& name) {
  const fs::path p = fixture() / ("out-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

fs::path phantom(const std::string& cls, int i) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s/%s_%04d.png", cls.c_str(), cls.c_str(), i);
  return fixture() / "ph/images" / name;
}

// Entries of `dir` (names), sorted.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

int count_if_contains(const fs::path& dir, const std::string& part) {
  int n = 0;
  for (const auto& name : listing(dir)) n += name.find(part) != std::string::npos;
  return n;
}

// A pid that no longer exists: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return pid;
}

// Runs `script` with sh (from a file in `dir`, so that its quotes stay its own), stderr to `err`.
int sh(const fs::path& dir, const std::string& script, const std::string& err) {
  std::ofstream(dir / "script.sh") << script << "\n";
  const int status = std::system(("sh " + q(dir / "script.sh") + " 2>" + q(err)).c_str());
  fs::remove(dir / "script.sh");
  return status;
}

}  // namespace

TEST_CASE("issue 20 item 2: --resume never gives a new image the heatmap name of one recorded earlier", "[cli][hostile][outputs]") {
  const fs::path work = fresh("names");
  const fs::path in = work / "in", heat = work / "heat", out = work / "r.jsonl";
  fs::create_directories(in);
  fs::copy_file(phantom("normal", 0), in / "a?b.png");
  fs::copy_file(phantom("nodule", 0), in / "a_b.png");
  REQUIRE(cli(base_cmd() + q(in) + " --heatmaps " + q(heat) + " -o " + q(out)).code == 0);
  std::map<std::string, std::string> before;  // heatmap path -> bytes
  for (const auto& r : parse_lines(slurp(out))) before[r["heatmap"].get<std::string>()] = slurp(r["heatmap"].get<std::string>());
  REQUIRE(before.size() == 2);

  // "a b.png" flattens to the same "in_a_b" and sorts first.
  fs::copy_file(phantom("consolidation", 0), in / "a b.png");
  REQUIRE(cli(base_cmd() + q(in) + " --heatmaps " + q(heat) + " -o " + q(out) + " --resume").code == 0);
  const auto records = parse_lines(slurp(out));
  REQUIRE(records.size() == 3);
  std::set<std::string> names;
  for (const auto& r : records) names.insert(r["heatmap"].get<std::string>());
  CHECK(names.size() == 3);
  for (const auto& [path, bytes] : before) CHECK(slurp(path) == bytes);  // the old overlays are untouched
  CHECK(count_if_contains(heat, ".heatmap.png") == 3);
}

TEST_CASE("issue 20 item 14: a legal 250-byte file name gets a heatmap within NAME_MAX", "[cli][hostile][outputs]") {
  const fs::path work = fresh("long");
  const fs::path in = work / "in", heat = work / "heat";
  fs::create_directories(in);
  const std::string name = std::string(246, 'x') + ".png";
  fs::copy_file(phantom("normal", 1), in / name);
  const Run r = cli(base_cmd() + "--format jsonl --heatmaps " + q(heat) + " " + q(in / name));
  CHECK(r.code == 0);
  const auto records = parse_lines(r.out);
  REQUIRE(records.size() == 1);
  CHECK(records[0]["error"].is_null());
  REQUIRE(records[0]["heatmap"].is_string());
  CHECK(fs::exists(records[0]["heatmap"].get<std::string>()));
  for (const auto& n : listing(heat)) CHECK(n.size() <= 255);
}

TEST_CASE("issue 20 item 3: a second run on the same -o is refused while the first holds it", "[cli][hostile][outputs]") {
  const fs::path work = fresh("lock");
  const fs::path out = work / "r.jsonl";
  int feed[2];
  REQUIRE(::pipe2(feed, O_CLOEXEC) == 0);  // the child must not hold the write end: it waits for EOF
  const pid_t first = spawn({"diagnose", "-m", (fixture() / "model").string(), "-", "--quiet", "--threads", "1", "--batch-size", "1",
                             "-o", out.string()},
                            feed[0]);
  ::close(feed[0]);
  const std::string one = phantom("normal", 2).string() + "\n";
  REQUIRE(::write(feed[1], one.data(), one.size()) == static_cast<ssize_t>(one.size()));
  wait_until([&] { return slurp(out).find('\n') != std::string::npos; });  // the first run is writing

  const fs::path err = work / "err.txt";
  const Run second = cli(base_cmd() + q(phantom("nodule", 2)) + " -o " + q(out) + " --resume", err.string());
  CHECK(second.code == 3);
  CHECK(slurp(err) == "error: cannot write output '" + out.string() + "': another run holds it (" + out.string() + ".lock)\n");

  ::close(feed[1]);  // the first run ends
  int status = 0;
  REQUIRE(waitpid(first, &status, 0) == first);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  const auto records = parse_lines(slurp(out));
  REQUIRE(records.size() == 1);
  CHECK(records[0]["file"] == phantom("normal", 2).string());
  CHECK(!fs::exists(out.string() + ".lock"));  // released and removed
  // Now the second run may go on, appending.
  CHECK(cli(base_cmd() + q(phantom("nodule", 2)) + " -o " + q(out) + " --resume").code == 0);
  CHECK(parse_lines(slurp(out)).size() == 2);
}

TEST_CASE("issue 20 item 8: temporaries of -o json and --report are never opened through planted links", "[cli][hostile][outputs]") {
  const fs::path work = fresh("planted");
  std::ofstream(work / "victim.txt") << "keep me";
  // The former names were "<target>.tmp.<pid>", "<report>.rows.tmp.<pid>" and "<report>.tmp.<pid>":
  // plant links at them for the pid the run will have (exec keeps the shell's pid).
  const std::string script = "cd " + q(work) + " && ln -s victim.txt r.json.tmp.$$ && ln -s victim.txt r.html.rows.tmp.$$ && "
                             "ln -s victim.txt r.html.tmp.$$ && exec " + std::string(MEDATTN_BINARY) + " " + base_cmd() +
                             q(phantom("normal", 3)) + " -o r.json --report r.html";
  const int status = sh(work, script, "/dev/null");
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(slurp(work / "victim.txt") == "keep me");
  CHECK(nlohmann::json::parse(slurp(work / "r.json")).size() == 1);
  CHECK(slurp(work / "r.html").find("</html>") != std::string::npos);
  // No temporary of the run is left (the planted links are still there, untouched).
  CHECK(count_if_contains(work, "medattn-tmp") == 0);
  CHECK(count_if_contains(work, ".tmp.") == 3);  // the planted links, still links
}

TEST_CASE("issue 20 item 8: TempFile names are new, unpredictable, beside the target, and never follow links", "[outputs][fs]") {
  const fs::path work = fresh("tempfile");
  const std::string target = (work / "t.json").string();
  std::string first;
  {
    medattn::TempFile a(target), b(target);
    CHECK(a.path() != b.path());
    CHECK(fs::path(a.path()).parent_path() == work);
    const std::string prefix = "t.json.medattn-tmp." + std::to_string(::getpid()) + ".";
    const std::string name = fs::path(a.path()).filename().string();
    CHECK(name.compare(0, prefix.size(), prefix) == 0);
    CHECK(name.size() == prefix.size() + 12);
    a.write("abc");
    a.commit(false);
    first = b.path();
  }
  CHECK(slurp(target) == "abc");
  CHECK(!fs::exists(first));  // b was not committed: removed
  // A link planted at the target is replaced, its target untouched.
  std::ofstream(work / "victim.txt") << "keep me";
  fs::remove(target);
  fs::create_symlink(work / "victim.txt", target);
  medattn::write_file_atomic(target, "new");
  CHECK(slurp(work / "victim.txt") == "keep me");
  CHECK(!fs::is_symlink(fs::symlink_status(target)));
  // A long target name is shortened in the temporary's name, which fits NAME_MAX.
  medattn::TempFile longer((work / (std::string(250, 'y') + ".png")).string());
  CHECK(fs::path(longer.path()).filename().string().size() <= 255);
}

TEST_CASE("issue 20 item 10: --resume retries records whose error was transient and keeps permanent ones", "[cli][hostile][outputs]") {
  const fs::path work = fresh("retry");
  const fs::path in = work / "in", out = work / "r.jsonl";
  fs::create_directories(in);
  for (int i = 0; i < 3; ++i) fs::copy_file(phantom("normal", 4 + i), in / ("img" + std::to_string(i) + ".png"));
  REQUIRE(cli(base_cmd() + q(in) + " -o " + q(out)).code == 0);
  auto records = parse_lines(slurp(out));
  REQUIRE(records.size() == 3);
  const std::string good = records[0].dump();
  // As a disk-full run and a corrupt file would have left them.
  auto as_error = [](nlohmann::json r, const std::string& error) {
    for (const char* k : {"diagnosis", "probability", "probabilities", "heatmap", "heatmap_raw"}) r[k] = nullptr;
    r["error"] = error;
    return r;
  };
  const std::string transient = "cannot write 'heat/img1.heatmap.png': No space left on device";
  const std::string permanent = "cannot read PNG '" + records[2]["file"].get<std::string>() + "': truncated file";
  std::ofstream(out) << good << "\n" << as_error(records[1], transient).dump() << "\n" << as_error(records[2], permanent).dump() << "\n";

  const fs::path err = work / "err.txt";
  CHECK(cli(base_cmd() + q(in) + " -o " + q(out) + " --resume", err.string()).code == 0);
  records = parse_lines(slurp(out));
  REQUIRE(records.size() == 3);
  std::map<std::string, nlohmann::json> by_file;
  for (const auto& r : records) CHECK(by_file.emplace(r["file"].get<std::string>(), r).second);  // each file once
  CHECK(by_file[(in / "img1.png").string()]["error"].is_null());  // diagnosed again
  CHECK(by_file[(in / "img1.png").string()]["diagnosis"].is_string());
  CHECK(by_file[(in / "img2.png").string()]["error"] == permanent);  // kept
  CHECK(records[0].dump() == good);
}

TEST_CASE("issue 20 item 10: a heatmap that cannot be written keeps the diagnosis, with a warning", "[cli][hostile][outputs]") {
  const fs::path work = fresh("heatfail");
  const fs::path heat = work / "heat";
  const fs::path image = phantom("nodule", 5);
  const Run first = cli(base_cmd() + "--format jsonl --heatmaps " + q(heat) + " " + q(image));
  REQUIRE(first.code == 0);
  const auto rec = parse_lines(first.out).at(0);
  const std::string overlay = rec["heatmap"], raw = rec["heatmap_raw"];
  fs::remove(overlay);
  fs::remove(raw);
  fs::create_directories(overlay);  // a folder where the overlay goes: rename() fails with EISDIR
  const Run r = cli(base_cmd() + "--format jsonl --heatmaps " + q(heat) + " " + q(image));
  CHECK(r.code == 1);
  const auto after = parse_lines(r.out).at(0);
  CHECK(after["error"].is_null());
  CHECK(after["diagnosis"] == rec["diagnosis"]);
  CHECK(after["probabilities"] == rec["probabilities"]);
  CHECK(after["heatmap"].is_null());
  CHECK(after["heatmap_raw"].is_null());
  CHECK(after["warning"] == "heatmap not written: cannot write '" + overlay + "': Is a directory");
  CHECK(!fs::exists(raw));  // both maps or neither
}

TEST_CASE("issue 20 item 11: a failed write stops the run with the errno's text, exit 3, nothing torn or left over", "[cli][hostile][outputs]") {
  const fs::path work = fresh("full");
  const std::string images = q(fixture() / "ph/images");
  // Standard output: a full device, and a closed one.
  const fs::path err = work / "err.txt";
  CHECK(cli(base_cmd() + "--format jsonl " + images + " >/dev/full", err.string()).code == 3);
  CHECK(slurp(err) == "error: cannot write output '<standard output>': No space left on device\n");
  CHECK(cli(base_cmd() + "--format csv " + images + " >&-", err.string()).code == 3);
  CHECK(slurp(err) == "error: cannot write output '<standard output>': Bad file descriptor\n");
  CHECK(cli(base_cmd() + images + " >/dev/full", err.string()).code == 3);  // the table, written at the end

  // A file that cannot grow past 2 KB (RLIMIT_FSIZE; SIGXFSZ ignored so write() fails with EFBIG).
  for (const std::string ext : {"jsonl", "csv", "json"}) {
    const fs::path out = work / ("r." + ext);
    const std::string script = "trap '' XFSZ; ulimit -f 4; exec " + std::string(MEDATTN_BINARY) + " " + base_cmd() + images + " -o " + q(out);
    const int status = sh(work, script, err.string());
    INFO(ext);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 3));
    CHECK(slurp(err) == "error: cannot write output '" + out.string() + "': File too large\n");
    if (ext == "json") {
      CHECK(!fs::exists(out));  // json appears whole or not at all
    } else {
      const std::string text = slurp(out);
      REQUIRE(!text.empty());
      CHECK(text.back() == '\n');  // the last record is whole
      CHECK(text.size() <= 2048);
      if (ext == "jsonl") {
        const auto recs = parse_lines(text);
        CHECK(recs.size() >= 1);
        CHECK(recs.size() < 24);
      } else {
        const auto rows = medattn::io::parse_csv(text, out.string());
        CHECK(rows.size() >= 2);
        for (const auto& row : rows) CHECK(row.fields.size() == rows[0].fields.size());
      }
    }
    CHECK(count_if_contains(work, "medattn-tmp") == 0);
    CHECK(count_if_contains(work, ".lock") == 0);
  }
}

TEST_CASE("issue 20 item 12: CSV outputs are merged and repaired by records, and a model with other columns is refused", "[cli][hostile][outputs]") {
  const fs::path work = fresh("csv");
  const fs::path in = work / "in";
  fs::create_directories(in);
  fs::copy_file(phantom("normal", 6), in / "a\nb.png");
  fs::copy_file(phantom("nodule", 6), in / "c.png");
  const fs::path shard = work / "s.csv";
  REQUIRE(cli(base_cmd() + q(in) + " -o " + q(shard)).code == 0);
  const std::string text = slurp(shard);
  const auto rows = medattn::io::parse_csv(text, shard.string());
  REQUIRE(rows.size() == 3);
  CHECK(rows[1].fields[0] == (in / "a\nb.png").string());

  // merge keeps whole records.
  const fs::path merged = work / "m.csv";
  CHECK(cli("merge " + q(shard) + " -o " + q(merged)).code == 0);
  const auto mrows = medattn::io::parse_csv(slurp(merged), merged.string());
  REQUIRE(mrows.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(mrows[i].fields == rows[i].fields);

  // A record torn just after its embedded newline is removed by --resume, then written again.
  const std::string cut = text.substr(0, text.find('\n') + 1) + "\"" + (in / "a").string() + "\n";
  std::ofstream(shard, std::ios::binary) << cut;  // the header, then a record cut after "a\n"
  CHECK(cli(base_cmd() + q(in) + " -o " + q(shard) + " --resume").code == 0);
  const auto resumed = medattn::io::parse_csv(slurp(shard), shard.string());
  REQUIRE(resumed.size() == 3);
  std::set<std::string> files;
  for (size_t i = 1; i < resumed.size(); ++i) files.insert(resumed[i].fields[0]);
  CHECK(files == std::set<std::string>{(in / "a\nb.png").string(), (in / "c.png").string()});

  // A file written by a model with other columns (two classes): refused, the file unchanged.
  const fs::path other = work / "other.csv";
  const std::string other_text = "file,diagnosis,probability,p_x,p_y,heatmap,error,model,abstained,ood_score,warning\n"
                                 "old.png,x,0.9,0.9,0.1,,,other@1,,,\n";
  std::ofstream(other, std::ios::binary) << other_text;
  const fs::path err = work / "err.txt";
  CHECK(cli(base_cmd() + q(in) + " -o " + q(other) + " --resume", err.string()).code == 3);
  const std::string message = slurp(err);
  CHECK(message.find("error: cannot resume '" + other.string() + "': its csv columns (") == 0);
  CHECK(std::count(message.begin(), message.end(), '\n') == 1);
  CHECK(slurp(other) == other_text);
}

TEST_CASE("issue 20 item 16: an output that is an input, a model file or another output of the run is refused", "[cli][hostile][outputs]") {
  const fs::path work = fresh("refuse");
  const fs::path model = fixture() / "model";
  const std::string card = slurp(model / "model.json");
  const fs::path image = phantom("normal", 7);
  const std::string image_bytes = slurp(image);
  const fs::path err = work / "err.txt";

  CHECK(cli(base_cmd() + q(image) + " -o " + q(model / "model.json"), err.string()).code == 2);
  CHECK(slurp(err) == "error: refusing to write '" + (model / "model.json").string() + "': it is in the model folder '" +
                          model.string() + "'; choose another file\n");
  CHECK(slurp(model / "model.json") == card);

  const fs::path same = work / "same.jsonl";
  CHECK(cli(base_cmd() + q(image) + " -o " + q(same) + " --report " + q(same), err.string()).code == 2);
  CHECK(slurp(err) == "error: refusing to write '" + same.string() + "': it is also the output of this run; choose another file\n");
  CHECK(!fs::exists(same));

  // An input that is not an image by content is still an input.
  const fs::path list = work / "list.txt";
  std::ofstream(list) << image.string() << "\n";
  CHECK(cli(base_cmd() + q(list) + " -o " + q(list), err.string()).code == 2);
  CHECK(slurp(err) == "error: refusing to write '" + list.string() + "': it is an input; choose another file\n");

  CHECK(cli("evaluate -m " + q(model) + " " + q(fixture() / "ph/images") + " --roc " + q(image), err.string()).code == 2);
  CHECK(slurp(image) == image_bytes);
  CHECK(cli("merge " + q(same) + " -o " + q(same), err.string()).code == 2);
}

TEST_CASE("issue 20 item 17: SIGTERM and SIGINT remove the run's temporaries", "[cli][hostile][outputs]") {
  for (const int sig : {SIGTERM, SIGINT}) {
    const fs::path work = fresh("signal" + std::to_string(sig));
    int feed[2];
    REQUIRE(::pipe2(feed, O_CLOEXEC) == 0);  // the child must not hold the write end: it waits for EOF
    const pid_t pid = spawn({"diagnose", "-m", (fixture() / "model").string(), "-", "--quiet", "--threads", "1", "--batch-size", "1",
                             "-o", (work / "r.json").string(), "--report", (work / "r.html").string()},
                            feed[0]);
    ::close(feed[0]);
    const std::string one = phantom("nodule", 7).string() + "\n";
    REQUIRE(::write(feed[1], one.data(), one.size()) == static_cast<ssize_t>(one.size()));
    // Both temporaries exist (the json and the report's rows) once the first record is in.
    wait_until([&] { return listing(work).size() >= 2 + (fs::exists(work / "r.json.lock") ? 1 : 0); });
    REQUIRE(::kill(pid, sig) == 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    ::close(feed[1]);
    CHECK(WIFSIGNALED(status));
    const auto left = listing(work);
    std::string names;
    for (const auto& n : left) names += n + " ";
    INFO("left behind: " << names);
    CHECK(left.empty());
  }
}

TEST_CASE("issue 20 item 17: a run removes stale temporaries of its outputs whose process is gone, nothing else", "[cli][hostile][outputs]") {
  const fs::path work = fresh("stale");
  const fs::path heat = work / "heat";
  fs::create_directories(heat);
  const std::string dead = std::to_string(dead_pid()), alive = std::to_string(::getpid());
  const std::vector<std::string> stale = {"r.jsonl.medattn-tmp." + dead + ".0123456789ab", "r.html.medattn-tmp." + dead + ".abcdefabcdef",
                                          "heat/x.heatmap.png.medattn-tmp." + dead + ".00000000000f"};
  const std::vector<std::string> kept = {"r.jsonl.medattn-tmp." + alive + ".0123456789ab",  // its process is running
                                         "r.jsonl.medattn-tmp." + dead + ".notours",        // not the pattern
                                         "other.txt.medattn-tmp." + dead + ".0123456789ab"};  // not this run's output
  for (const auto& f : stale) std::ofstream(work / f) << "x";
  for (const auto& f : kept) std::ofstream(work / f) << "x";
  fs::create_directories(work / ("r.jsonl.medattn-tmp." + dead + ".aaaaaaaaaaaa"));  // a folder: left alone
  REQUIRE(cli(base_cmd() + q(phantom("consolidation", 1)) + " -o " + q(work / "r.jsonl") + " --report " + q(work / "r.html") +
                  " --heatmaps " + q(heat)).code == 0);
  for (const auto& f : stale) CHECK(!fs::exists(work / f));
  for (const auto& f : kept) CHECK(fs::exists(work / f));
  CHECK(fs::is_directory(work / ("r.jsonl.medattn-tmp." + dead + ".aaaaaaaaaaaa")));
}

TEST_CASE("issue 20 item 19: outputs are checked before the run, with the errno's text, and a symlink loop says so", "[cli][hostile][outputs]") {
  const fs::path work = fresh("check");
  fs::create_directories(work / "adir");
  const fs::path err = work / "err.txt";
  const std::string image = q(phantom("consolidation", 2));
  for (const std::string flag : {"--report", "-o"}) {
    const Run r = cli(base_cmd() + image + " --format json " + flag + " " + q(work / "adir"), err.string());
    CHECK(r.code == 3);
    CHECK(r.out.empty());
    CHECK(slurp(err) == "error: cannot write " + std::string(flag == "-o" ? "output" : "report") + " '" + (work / "adir").string() +
                            "': Is a directory\n");
  }
  CHECK(cli(base_cmd() + image + " -o " + q(work / "missing/r.jsonl"), err.string()).code == 3);
  CHECK(slurp(err) == "error: cannot write output '" + (work / "missing/r.jsonl").string() + "': No such file or directory\n");
  CHECK(slurp(err).find("Success") == std::string::npos);

  // A symlink loop as an input, and as an output.
  fs::create_symlink(work / "loop", work / "loop");
  const Run r = cli(base_cmd() + "--format jsonl " + q(work / "loop"));
  CHECK(r.code == 1);
  const auto recs = parse_lines(r.out);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0]["error"] == "cannot read '" + (work / "loop").string() + "': Too many levels of symbolic links");
  CHECK(cli(base_cmd() + image + " -o " + q(work / "loop"), err.string()).code == 3);
  CHECK(slurp(err) == "error: cannot write output '" + (work / "loop").string() + "': Too many levels of symbolic links\n");
}

TEST_CASE("issue 20 items 2 and 14: heatmap names are the path flattened, cut to 200 bytes, and its hash", "[outputs][batch]") {
  using medattn::pipeline::heatmap_stem;
  CHECK(heatmap_stem({"scans/a/chest.dcm", "scans/a/chest.dcm", ""}) == "scans_a_chest-1442e7f6");  // README's example
  CHECK(heatmap_stem({"./scans/a/chest.dcm", "./scans/a/chest.dcm", ""}) == "scans_a_chest-1442e7f6");  // same path
  CHECK(heatmap_stem({"scans/a/chest.dcm", "scans", "a/chest.dcm"}) == "scans_a_chest-1442e7f6");
  const std::string a = heatmap_stem({"in/a?b.png", "in", "a?b.png"}), b = heatmap_stem({"in/a b.png", "in", "a b.png"}),
                    c = heatmap_stem({"in/a_b.png", "in", "a_b.png"});
  CHECK(a.substr(0, 7) == "in_a_b-");
  CHECK(b.substr(0, 7) == "in_a_b-");
  CHECK(std::set<std::string>{a, b, c}.size() == 3);
  const std::string long_name = std::string(250, 'z') + ".png";
  const std::string stem = heatmap_stem({long_name, long_name, ""});
  CHECK(stem.size() == 209);
  CHECK((stem + ".heatmap-raw.png").size() <= 255);
}

TEST_CASE("issue 20 item 10: which record errors --resume retries", "[outputs][batch]") {
  using medattn::pipeline::transient_error;
  CHECK(transient_error("cannot write 'h/x.heatmap.png': No space left on device"));
  CHECK(transient_error("cannot read 'x.png': Input/output error"));
  CHECK(transient_error("cannot read 'x.png': Permission denied"));
  CHECK(transient_error("cannot decode 'x.png': out of memory"));
  CHECK(!transient_error("cannot read PNG 'x.png': truncated file"));
  CHECK(!transient_error("cannot read 'x.png': no such file or directory"));
  CHECK(!transient_error("image 'x.png' has NaN or infinite pixels"));
  CHECK(!transient_error(""));
}
