// Running the built medattn binary from tests, and a shared phantom set with a tiny model.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <istream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

// Not inside namespace medattn: the tests call the helper `medattn(...)`, like the binary.
namespace clitest {

struct Run {
  int code = -1;
  std::string out;
};

// Runs a shell command line; stdout captured, its exit code (-1 when killed by a signal).
inline Run run_command(const std::string& cmd) {
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs the built medattn with `args` (a shell fragment); stdout captured, stderr to `err`.
inline Run medattn(const std::string& args, const std::string& err = "/dev/null") {
  return run_command(std::string(MEDATTN_BINARY) + " " + args + " 2>" + err);
}

// A path in single quotes, for the shell fragments medattn() takes.
inline std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// The JSON objects of a jsonl stream, one per non-empty line.
inline std::vector<nlohmann::json> jsonl_objects(std::istream& in) {
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A phantom set (DIR/ph, 24 images of 64 px, seed 3) and a tiny model trained on it
// (DIR/model), made once per test process (ctest runs test cases in parallel processes, so
// each gets its own folder) and removed at exit.
struct CliFixture {
  std::filesystem::path dir;
  CliFixture() : dir(std::filesystem::temp_directory_path() / ("medattn_cli_test_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string q = "'" + dir.string() + "'";
    REQUIRE(medattn("phantom --out " + q + "/ph --count 24 --seed 3 --size 64").code == 0);
    REQUIRE(medattn("train " + q + "/ph/images --out " + q +
                    "/model --classes normal,nodule,consolidation --epochs 1 --image-size 32 "
                    "--stem 8,16 --dim 16 --depth 1 --heads 2 --batch-size 8 --threads 1").code == 0);
  }
  ~CliFixture() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

inline const std::filesystem::path& fixture() {
  static const CliFixture f;
  return f.dir;
}

// Starts medattn in the background with `env` (NAME=value entries) added to its environment
// and its stdin from `stdin_fd` (-1: /dev/null); returns its pid.
inline pid_t spawn(const std::vector<std::string>& args, int stdin_fd = -1, const std::vector<std::string>& env = {}) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(MEDATTN_BINARY));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    const int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(stdin_fd >= 0 ? stdin_fd : devnull, STDIN_FILENO);
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
    ::execv(MEDATTN_BINARY, argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits until `done()` holds; fails the test after 10 minutes (a hang, not a slow machine).
template <typename Pred>
void wait_until(Pred done) {
  const auto t0 = std::chrono::steady_clock::now();
  while (!done()) {
    REQUIRE(std::chrono::steady_clock::now() - t0 < std::chrono::minutes(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace clitest
