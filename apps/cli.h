// The command-line front end's shared parts: exit codes, flag checks and small helpers
// used by every command file (apps/cmd_*.cpp). Each command file adds its subcommand and
// flags to the app and returns what runs it; main.cpp only parses and dispatches.
#pragma once
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "io/image.h"

namespace medattn::explain {
struct ExplainOptions;
}

namespace medattn::cli {

constexpr int kExitOk = 0, kExitSomeFailed = 1, kExitUsage = 2, kExitCannotRun = 3;

// Thread counts above this are refused: more threads than any machine this runs on has
// cores only cost time (100000 used to create threads one by one for minutes).
constexpr int kMaxThreads = 256;

// A subcommand and what runs it once the command line is parsed (given the command line
// as one string, for the records and cards that keep it).
struct Command {
  CLI::App* app = nullptr;
  std::function<int(const std::string& command_line)> run;
};

Command add_diagnose(CLI::App& app);
Command add_merge(CLI::App& app);
Command add_train(CLI::App& app);
Command add_pretrain(CLI::App& app);
Command add_evaluate(CLI::App& app);
Command add_fit_ood(CLI::App& app);
Command add_info(CLI::App& app);
Command add_phantom(CLI::App& app);

std::string short_number(double v);

// CLI11 checks that let nothing odd through. CLI11's own ranges accept nan and print the
// limits of double in 309 digits; these want a finite number (a whole one for integer
// options) in [lo, hi] ("(lo" when lo itself is excluded) and say so in one short line:
// "--threads: must be a whole number in [0, 256] (got 100000)".
template <typename T>
CLI::Validator in_range(T lo, T hi, bool lo_excluded = false) {
  constexpr bool kWhole = std::is_integral_v<T>;
  const std::string range = std::string(lo_excluded ? "(" : "[") + short_number(static_cast<double>(lo)) + ", " +
                            short_number(static_cast<double>(hi)) + "]";
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        const std::string got = text.size() > 24 ? text.substr(0, 21) + "..." : text;
        const std::string problem = std::string("must be ") + (kWhole ? "a whole number" : "a number") + " in " + range + " (got " + got + ")";
        if (kWhole) {
          const size_t digits = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
          if (text.size() == digits || text.size() > 19 || text.find_first_not_of("0123456789", digits) != std::string::npos) return problem;
        }
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v)) return problem;
        if (v < static_cast<double>(lo) || v > static_cast<double>(hi) || (lo_excluded && v == static_cast<double>(lo))) return problem;
        return "";
      },
      range);
}

// `-m ''` names no model: a usage error, never the default model (README "Limits").
extern const CLI::Validator kNotEmpty;
// A list of flips (model::parse_flips), checked when the flag is read.
extern const CLI::Validator kFlips;

// `--method NAME` bound to `method`, its allowed values and help from the method table
// (explain/registry.h); `help_suffix` is appended to the help text.
CLI::Option* add_method_option(CLI::App& app, std::string& method, const std::string& help_suffix = "");
// Every heatmap method's own flags (--occlusion-patch, --saliency-sigma, --head-fusion, ...),
// from the method table, bound to `options`. Used by diagnose and evaluate.
void add_method_flags(CLI::App& app, explain::ExplainOptions& options);

// --tta and --heatmap-flips (lists of flips overriding the card's), as diagnose and evaluate
// take them.
void add_flip_options(CLI::App& app, std::string& tta, std::string& heatmap_flips);

// The type name of an option whose value is a folder: --help shows DIR, and the completion
// offers folders.
inline constexpr const char* kDir = "DIR";

// The bash completion script for `app` (`medattn --completion bash`): every command, every
// visible flag of each, the allowed values of options restricted to a set (CLI::IsMember),
// folders for DIR options, nothing for numbers, files otherwise (apps/completion.cpp).
std::string bash_completion(const CLI::App& app);

// The default model: $MEDATTN_MODEL, else models/<default> beside the executable's build
// folder or under an installation's share/medattn/, else in the source tree it was built from.
std::string default_model_dir();
std::string command_line(int argc, char** argv);
std::string format_seconds(double s);
// Parses "C,W" for --window.
io::Window parse_window(const std::string& text);
std::vector<std::string> split_list(const std::string& text);
// --stem "16,32,64": the channels of each stem stage.
std::vector<int> parse_stem(const std::string& stem);

}  // namespace medattn::cli
