// The bash completion generated from the CLI (`medattn --completion bash`, build/medattn.bash):
// every flag of every command's --help is offered, enumerated options offer their values, and
// the usage lines (hence the man page) say "medattn", not the build machine's path.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "support/cli.h"

using clitest::medattn;
using clitest::q;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The flags a command's --help lists: the words starting with "-" at the start of an option line.
std::set<std::string> help_flags(const std::string& help) {
  std::set<std::string> flags;
  const std::regex option_line(R"(^  (-[-A-Za-z0-9,]+))");
  for (const auto& line : lines_of(help)) {
    std::smatch m;
    if (!std::regex_search(line, m, option_line)) continue;
    std::stringstream names(m[1].str());
    for (std::string name; std::getline(names, name, ',');) flags.insert(name);
  }
  return flags;
}

// What the completion offers for the command line `words` (the last one being completed).
std::vector<std::string> complete(const std::string& script, const std::string& words) {
  const auto dir = std::filesystem::temp_directory_path() / ("medattn_completion_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "medattn.bash") << script;
  std::ofstream(dir / "run.sh") << "source " << q(dir / "medattn.bash") << "\n"
                                << "COMP_WORDS=(" << words << ")\nCOMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
                                << "_medattn\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n";
  std::vector<std::string> out;
  for (const auto& l : lines_of(clitest::run_command("bash " + q(dir / "run.sh")).out)) {
    if (!l.empty()) out.push_back(l);
  }
  std::filesystem::remove_all(dir);
  return out;
}

}  // namespace

TEST_CASE("the completion offers every flag of every command's --help", "[cli][completion]") {
  const auto script = medattn("--completion bash");
  REQUIRE(script.code == 0);
  const auto commands = lines_of(medattn("--completion commands").out);
  CHECK(commands == std::vector<std::string>{"diagnose", "merge", "train", "pretrain", "evaluate", "fit-ood", "info", "phantom"});
  const auto top = complete(script.out, "medattn ''");
  for (const auto& c : commands) CHECK(std::count(top.begin(), top.end(), c) == 1);
  for (const auto& c : commands) {
    INFO(c);
    const auto help = medattn(c + " --help");
    REQUIRE(help.code == 0);
    const auto flags = help_flags(help.out);
    CHECK(flags.size() > 2);
    const auto offered = complete(script.out, "medattn " + c + " -");
    const std::set<std::string> offered_set(offered.begin(), offered.end());
    for (const auto& f : flags) {
      INFO(f);
      CHECK(offered_set.count(f) == 1);
    }
  }
}

TEST_CASE("the completion offers the allowed values of enumerated options", "[cli][completion]") {
  const auto script = medattn("--completion bash").out;
  CHECK(complete(script, "medattn train --balance ''") == std::vector<std::string>{"weights", "logit-adjust", "none"});
  const auto methods = lines_of(medattn("--completion methods").out);
  CHECK(methods.size() == 8);
  CHECK(complete(script, "medattn diagnose --method ''") == methods);
  CHECK(complete(script, "medattn evaluate --method ''") == methods);
  CHECK(complete(script, "medattn diagnose --format j") == std::vector<std::string>{"json", "jsonl"});
  CHECK(complete(script, "medattn evaluate --format ''") == std::vector<std::string>{"table", "json"});
  CHECK(complete(script, "medattn diagnose --head-fusion m") == std::vector<std::string>{"mean", "max", "min"});
  CHECK(complete(script, "medattn diagnose --threads ''").empty());  // a number: no file names
}

TEST_CASE("the build installs the generated completion, and usage lines name medattn, not a path", "[cli][completion]") {
  const auto built = std::filesystem::path(MEDATTN_BINARY).parent_path() / "medattn.bash";
  REQUIRE(std::filesystem::exists(built));
  CHECK(clitest::slurp(built) == medattn("--completion bash").out);
  CHECK(medattn("--completion zsh").code == 2);
  for (const char* c : {"diagnose", "evaluate", "train"}) {
    const auto help = medattn(std::string(c) + " --help").out;
    CHECK(help.find("\nUsage: medattn " + std::string(c) + " [OPTIONS]") != std::string::npos);
    CHECK(help.find(MEDATTN_BINARY) == std::string::npos);
  }
}
