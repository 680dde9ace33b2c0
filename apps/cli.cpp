// The command-line front end's shared helpers (apps/cli.h).
#include "cli.h"

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "explain/registry.h"
#include "model/card.h"

namespace fs = std::filesystem;

namespace medattn::cli {
namespace {
constexpr const char* kDefaultModel = "pneumonia-cxr";

std::string quote_arg(const std::string& a) {
  if (!a.empty() && a.find_first_of(" \t\"'$\\") == std::string::npos) return a;
  std::string q = "'";
  for (char c : a) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  return buf;
}

const CLI::Validator kNotEmpty(
    [](std::string& text) -> std::string { return text.empty() ? "must not be empty" : ""; }, "");

const CLI::Validator kFlips(
    [](std::string& text) -> std::string {
      try {
        model::parse_flips(text);
      } catch (const Error& e) {
        return e.what();
      }
      return "";
    },
    "FLIPS");

CLI::Option* add_method_option(CLI::App& app, std::string& method, const std::string& help_suffix) {
  return app.add_option("--method", method, explain::method_help() + help_suffix)->check(CLI::IsMember(explain::method_names()));
}

void add_flip_options(CLI::App& app, std::string& tta, std::string& heatmap_flips) {
  app.add_option("--tta", tta, "Test-time flips whose logits are averaged: none, hflip, vflip or hflip,vflip (default: the model card's)")
      ->check(kFlips);
  app.add_option("--heatmap-flips", heatmap_flips,
                 "Average each heatmap over these flips of the input: none, hflip, vflip or hflip,vflip "
                 "(default: the flips the model was trained with)")
      ->check(kFlips);
}

void add_method_flags(CLI::App& app, explain::ExplainOptions& options) {
  for (const auto& o : explain::method_options()) {
    auto* opt = app.add_option_function<std::string>(
        o.flag, [&options, set = o.set](const std::string& v) { set(options, v); }, o.help);
    if (!o.choices.empty()) {
      opt->check(CLI::IsMember(o.choices));
    } else if (o.whole) {
      opt->type_name("INT")->check(in_range(static_cast<int>(o.lo), static_cast<int>(o.hi)));
    } else {
      opt->type_name("FLOAT")->check(in_range(o.lo, o.hi));
    }
    if (o.show_default) opt->default_str(o.get(options));
  }
}

std::string default_model_dir() {
  if (const char* env = std::getenv("MEDATTN_MODEL"); env != nullptr && *env) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // build/medattn -> models/; an installed bin/medattn -> share/medattn/models/.
    for (const fs::path& base : {exe.parent_path().parent_path(), exe.parent_path(),
                                 exe.parent_path().parent_path() / "share" / "medattn"}) {
      const fs::path candidate = base / "models" / kDefaultModel;
      if (fs::exists(candidate / model::kCardFile, ec)) return candidate.string();
    }
  }
  return (fs::path(MEDATTN_SOURCE_DIR) / "models" / kDefaultModel).string();
}

std::string command_line(int argc, char** argv) {
  std::string s = "medattn";
  for (int i = 1; i < argc; ++i) s += " " + quote_arg(argv[i]);
  return s;
}

std::string format_seconds(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof(buf), "%.1f s", s);
  else std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return buf;
}

// Parses "C,W" for --window.
io::Window parse_window(const std::string& text) {
  io::Window w;
  char comma = 0;
  std::istringstream in(text);
  if (!(in >> w.center >> comma >> w.width) || comma != ',' || !in.eof() || w.width < 1) {
    throw Error(ErrorKind::kInvalidArgument, "--window expects CENTER,WIDTH with WIDTH >= 1 (got '" + text + "')");
  }
  return w;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// --stem "16,32,64": the channels of each stem stage.
std::vector<int> parse_stem(const std::string& stem) {
  std::vector<int> channels;
  for (const auto& c : split_list(stem)) {
    try {
      channels.push_back(std::stoi(c));
    } catch (const std::exception&) {
      throw Error(ErrorKind::kInvalidArgument, "--stem expects comma-separated channel counts (got '" + stem + "')");
    }
  }
  return channels;
}

}  // namespace medattn::cli
