// The README's examples run as written: every command of the block that follows the marker
// "<!-- examples: tests/cli/readme_test.cpp runs every command below -->" runs, in order, in a
// fresh folder that holds a link to the project's models/, and must exit 0 and leave every
// file or folder it names with -o/--output, --out, --heatmaps, --report or --roc.
#include <catch2/catch.hpp>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "support/cli.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using clitest::run_command;
using clitest::slurp;

namespace {

constexpr const char* kMarker = "<!-- examples: tests/cli/readme_test.cpp runs every command below -->";
constexpr const char* kPrefix = "build/medattn ";

// The commands of the marked block: its lines without comments and blank lines, a line
// ending in a backslash joined with the next.
std::vector<std::string> example_commands(const std::string& readme) {
  std::istringstream in(readme);
  std::vector<std::string> commands;
  bool seen_marker = false, inside = false;
  std::string pending;
  for (std::string line; std::getline(in, line);) {
    if (!seen_marker) {
      seen_marker = line == kMarker;
      continue;
    }
    if (!inside) {
      REQUIRE(line.rfind("```", 0) == 0);  // the fence right after the marker
      inside = true;
      continue;
    }
    if (line.rfind("```", 0) == 0) break;
    if (line.empty() || line[0] == '#') continue;
    if (line.back() == '\\') {
      pending += line.substr(0, line.size() - 1);
      continue;
    }
    commands.push_back(pending + line);
    pending.clear();
  }
  REQUIRE(seen_marker);
  return commands;
}

// The paths a command names as its outputs.
std::vector<std::string> named_outputs(const std::string& command) {
  std::istringstream in(command);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "-o" || w == "--output" || w == "--out" || w == "--heatmaps" || w == "--report" || w == "--roc")
      out.push_back(words[i + 1]);
  }
  return out;
}

}  // namespace

TEST_CASE("README: the examples block is found and holds the documented commands", "[cli][readme]") {
  const auto commands = example_commands(slurp(fs::path(MEDATTN_SOURCE_DIR) / "README.md"));
  REQUIRE(commands.size() >= 4);
  for (const auto& c : commands) {
    INFO(c);
    CHECK(c.rfind(kPrefix, 0) == 0);  // each runs the binary that `make` builds
  }
  CHECK(named_outputs("build/medattn diagnose -o r.json --heatmaps out/ x") == std::vector<std::string>{"r.json", "out/"});
}

TEST_CASE("README: every command of the examples block runs as written", "[cli][readme]") {
  const auto commands = example_commands(slurp(fs::path(MEDATTN_SOURCE_DIR) / "README.md"));
  medattn::testing::TempDir dir("readme");
  fs::create_directory_symlink(fs::path(MEDATTN_SOURCE_DIR) / "models", dir.path / "models");
  for (const auto& command : commands) {
    INFO(command);
    REQUIRE(command.rfind(kPrefix, 0) == 0);
    const std::string err = dir.file("stderr.txt");
    const auto r = run_command("cd " + clitest::q(dir.path) + " && " + MEDATTN_BINARY + " " +
                               command.substr(std::string(kPrefix).size()) + " 2>" + clitest::q(err) + " >/dev/null");
    INFO(slurp(err));
    CHECK(r.code == 0);
    for (const auto& output : named_outputs(command)) {
      INFO(output);
      const fs::path p = dir.path / output;
      CHECK(fs::exists(p));
      if (fs::is_directory(p)) CHECK(!fs::is_empty(p));
      else CHECK(fs::file_size(p) > 0);
    }
  }
}
