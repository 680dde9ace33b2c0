#include "io/inputs.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <istream>
#include <map>

#include "core/bounded_io.h"
#include "core/text.h"
#include "io/formats.h"
#include "io/image.h"

namespace fs = std::filesystem;

namespace medattn::io {
bool has_image_extension(const std::string& path) {
  const std::string name = lower(fs::path(path).filename().string());
  for (const std::string& ext : image_extensions()) {
    if (ends_with(name, ext)) return true;
  }
  return false;
}

struct InputWalker::State {
  struct Folder {
    std::string relative;             // of this folder, "" for the argument itself
    std::vector<std::string> names;   // sorted entries still to visit (directories end in "/")
    std::map<std::string, std::string> special;  // name -> "a FIFO", ... (not regular files)
    size_t next = 0;
    std::string error;                // the listing failed: the errno's text
  };
  std::vector<std::string> arguments;
  std::istream* paths_in = nullptr;
  size_t argument = 0;
  bool reading_stdin = false;
  std::string root;                   // the directory argument being walked
  std::vector<Folder> stack;
  std::vector<fs::path> excluded;     // canonical folders to skip

  // Lists a folder: names sorted with "/" appended to directories, so that depth-first order
  // equals the sorted order of the full relative paths. A listing that fails (at its start
  // or part way) keeps what it found and says why in `error`.
  Folder list(const std::string& relative) const {
    Folder f;
    f.relative = relative;
    std::error_code ec;
    const fs::path dir = relative.empty() ? fs::path(root) : fs::path(root) / relative;
    fs::directory_iterator it(dir, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      std::error_code sec;
      const auto link = it->symlink_status(sec);
      if (sec) continue;
      const std::string name = it->path().filename().string();
      if (fs::is_directory(link)) {
        if (!excluded.empty()) {
          const fs::path canonical = fs::weakly_canonical(it->path(), sec);
          if (std::find(excluded.begin(), excluded.end(), canonical) != excluded.end()) continue;
        }
        f.names.push_back(name + "/");
      } else if (it->is_regular_file(sec)) {  // a symlink to a file counts as the file
        f.names.push_back(name);
      } else if (!sec) {
        // A FIFO, device or socket (or a symlink to one): never opened, reported.
        const std::string kind = special_file_kind(it->path().string());
        if (!kind.empty() && kind != "a directory") {
          f.names.push_back(name);
          f.special[name] = kind;
        }
      }
    }
    if (ec) f.error = ec.message();
    std::sort(f.names.begin(), f.names.end());
    return f;
  }
};

InputWalker::InputWalker(std::vector<std::string> arguments, std::istream* paths_in) : state_(std::make_unique<State>()) {
  state_->arguments = std::move(arguments);
  state_->paths_in = paths_in;
}

InputWalker::~InputWalker() = default;

void InputWalker::exclude(const std::string& dir) {
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(dir, ec);
  if (!ec) state_->excluded.push_back(canonical);
}

bool InputWalker::next(Event& event) {
  State& s = *state_;
  for (;;) {
    // Inside a directory argument: depth first.
    while (!s.stack.empty()) {
      auto& top = s.stack.back();
      if (top.next == top.names.size()) {
        s.stack.pop_back();
        continue;
      }
      const std::string name = top.names[top.next++];
      const std::string rel = top.relative.empty() ? name : top.relative + "/" + name;
      if (name.back() == '/') {
        s.stack.push_back(s.list(rel.substr(0, rel.size() - 1)));
        if (!s.stack.back().error.empty()) {
          const std::string dir = (fs::path(s.root) / rel.substr(0, rel.size() - 1)).string();
          event = {Kind::kUnreadable, {dir, s.root, rel.substr(0, rel.size() - 1)},
                   "cannot read folder '" + dir + "': " + s.stack.back().error};
          return true;
        }
        continue;
      }
      const std::string path = (fs::path(s.root) / rel).string();
      if (auto sp = top.special.find(name); sp != top.special.end()) {
        event = {Kind::kSkipped, {path, s.root, rel}, "skipped '" + path + "': not a regular file (" + sp->second + ")"};
        return true;
      }
      const bool hidden = name[0] == '.';
      if (!hidden && (has_image_extension(path) || sniff_format(path) != FileFormat::kUnknown)) {
        event = {Kind::kItem, {path, s.root, rel}, ""};
      } else {
        event = {Kind::kSkipped, {path, s.root, rel}, "skipped '" + path + "': not an image"};
      }
      return true;
    }
    if (s.reading_stdin) {
      std::string line;
      if (s.paths_in != nullptr && std::getline(*s.paths_in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        std::error_code ec;
        if (!fs::exists(line, ec)) {
          event = {Kind::kMissing, {line, line, ""}, ""};
        } else {
          event = {Kind::kItem, {line, line, ""}, ""};
        }
        return true;
      }
      s.reading_stdin = false;
    }
    if (s.argument == s.arguments.size()) return false;
    const std::string arg = s.arguments[s.argument++];
    if (arg == "-") {
      s.reading_stdin = true;
      continue;
    }
    std::error_code ec;
    const auto status = fs::status(arg, ec);
    if (ec || !fs::exists(status)) {
      event = {Kind::kMissing, {arg, arg, ""}, ""};
      return true;
    }
    if (!fs::is_directory(status)) {
      event = {Kind::kItem, {arg, arg, ""}, ""};
      return true;
    }
    s.root = arg;
    s.stack.push_back(s.list(""));
    if (!s.stack.back().error.empty()) {
      event = {Kind::kUnreadable, {arg, arg, ""}, "cannot read folder '" + arg + "': " + s.stack.back().error};
      return true;
    }
  }
}

ExpandedInputs expand_inputs(const std::vector<std::string>& arguments) {
  ExpandedInputs out;
  InputWalker walker(arguments, nullptr);
  InputWalker::Event e;
  while (walker.next(e)) {
    switch (e.kind) {
      case InputWalker::Kind::kItem: out.items.push_back(e.item); break;
      case InputWalker::Kind::kSkipped: out.notices.push_back(e.message); break;
      case InputWalker::Kind::kMissing: out.missing.push_back(e.item.path); break;
      case InputWalker::Kind::kUnreadable: out.unreadable.push_back(e.message); break;
    }
  }
  return out;
}

std::string heatmap_stem(const InputItem& item) {
  fs::path given = item.relative.empty() ? fs::path(item.argument) : fs::path(item.argument) / item.relative;
  std::string stem;
  for (const auto& part : given) {
    std::string s = part.string();
    if (s.empty() || s == "/" || s == "." || s == "..") continue;
    if (!stem.empty()) stem += "_";
    stem += s;
  }
  const std::string low = lower(stem);
  for (const std::string& ext : image_extensions()) {
    if (ends_with(low, ext) && low.size() > ext.size()) {
      stem.resize(stem.size() - ext.size());
      break;
    }
  }
  for (char& c : stem) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  }
  while (!stem.empty() && stem[0] == '.') stem.erase(0, 1);
  if (stem.empty()) stem = "image";
  return stem;
}

}  // namespace medattn::io
