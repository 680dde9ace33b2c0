#include "io/inputs.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "io/image.h"

namespace fs = std::filesystem;

namespace medattn::io {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

const char* const kImageExtensions[] = {".nii.gz", ".png", ".jpg", ".jpeg", ".tif", ".tiff",
                                        ".bmp",    ".dcm", ".dicom", ".ima", ".nii"};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool has_image_extension(const std::string& path) {
  const std::string name = lower(fs::path(path).filename().string());
  for (const char* ext : kImageExtensions) {
    if (ends_with(name, ext)) return true;
  }
  return false;
}

ExpandedInputs expand_inputs(const std::vector<std::string>& arguments) {
  ExpandedInputs out;
  for (const auto& arg : arguments) {
    std::error_code ec;
    const auto status = fs::status(arg, ec);
    if (ec || !fs::exists(status)) {
      out.missing.push_back(arg);
      continue;
    }
    if (!fs::is_directory(status)) {
      out.items.push_back({arg, arg, ""});
      continue;
    }
    std::vector<std::string> found;
    fs::recursive_directory_iterator it(arg, fs::directory_options::skip_permission_denied, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      std::error_code fec;
      if (!it->is_regular_file(fec)) continue;
      found.push_back(fs::relative(it->path(), arg, fec).generic_string());
    }
    std::sort(found.begin(), found.end());
    for (const auto& rel : found) {
      const std::string path = (fs::path(arg) / rel).string();
      const bool hidden = fs::path(rel).filename().string().rfind('.', 0) == 0;
      if (!hidden && (sniff_format(path) != FileFormat::kUnknown || has_image_extension(path))) {
        out.items.push_back({path, arg, rel});
      } else {
        out.notices.push_back("skipped '" + path + "': not an image");
      }
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
  for (const char* ext : kImageExtensions) {
    if (ends_with(low, ext) && low.size() > std::string(ext).size()) {
      stem.resize(stem.size() - std::string(ext).size());
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
