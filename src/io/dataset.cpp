// Labelled datasets: class folders, CSV files and MedMNIST npz archives.
#include "io/dataset.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <system_error>

#include "core/bounded_io.h"
#include "core/error.h"
#include "core/text.h"
#include "io/csv.h"
#include "io/image.h"
#include "io/npz.h"

namespace medattn::io {
namespace {

namespace fs = std::filesystem;

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// Maps a class name to its index in `classes`, case-insensitively; -1 when absent.
int find_class(const std::vector<std::string>& classes, const std::string& name) {
  const std::string key = lower(name);
  for (size_t i = 0; i < classes.size(); ++i)
    if (lower(classes[i]) == key) return static_cast<int>(i);
  return -1;
}

void sort_samples(std::vector<Sample>& samples) {
  std::stable_sort(samples.begin(), samples.end(),
                   [](const Sample& a, const Sample& b) { return a.path < b.path; });
}

// ---- class folders ------------------------------------------------------------------------

Dataset load_class_folders(const std::string& data, const DatasetOptions& options) {
  constexpr const char* kWhat = "cannot read dataset";
  Dataset ds;
  std::vector<std::pair<std::string, fs::path>> folders;  // (name, path)
  std::error_code ec;
  fs::directory_iterator it(data, fs::directory_options::skip_permission_denied, ec);
  if (ec) throw file_error(ErrorKind::kIOError, kWhat, data, ec.message());
  std::vector<fs::directory_entry> top(it, fs::directory_iterator());
  std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) { return a.path() < b.path(); });
  for (const auto& entry : top) {
    const fs::path& p = entry.path();
    if (entry.is_directory(ec)) {
      if (is_hidden(p)) {
        ds.notices.push_back("skipped '" + p.string() + "': hidden folder");
        continue;
      }
      folders.emplace_back(p.filename().string(), p);
    } else {
      ds.notices.push_back("skipped '" + p.string() + "': not in a class folder");
    }
  }
  if (folders.empty())
    throw file_error(ErrorKind::kInvalidArgument, kWhat, data,
                     "no class folders (expected DATA/<class>/<images>)");

  // Label of each folder.
  std::vector<int> folder_label(folders.size());
  if (options.classes.empty()) {
    for (const auto& f : folders) ds.classes.push_back(f.first);  // already sorted
    for (size_t i = 0; i < folders.size(); ++i) folder_label[i] = static_cast<int>(i);
  } else {
    ds.classes = options.classes;
    for (size_t i = 0; i < folders.size(); ++i) {
      folder_label[i] = find_class(ds.classes, folders[i].first);
      if (folder_label[i] < 0)
        throw file_error(
            ErrorKind::kInvalidArgument, kWhat, data,
            "folder '" + folders[i].first + "' is not one of the classes (" + join(ds.classes, ", ") + ")");
    }
  }

  for (size_t i = 0; i < folders.size(); ++i) {
    fs::recursive_directory_iterator walk(folders[i].second, fs::directory_options::skip_permission_denied,
                                          ec);
    if (ec) throw file_error(ErrorKind::kIOError, kWhat, folders[i].second.string(), ec.message());
    for (auto end = fs::recursive_directory_iterator(); walk != end; walk.increment(ec)) {
      if (ec) throw file_error(ErrorKind::kIOError, kWhat, folders[i].second.string(), ec.message());
      const fs::path& p = walk->path();
      if (walk->is_directory(ec)) {
        if (is_hidden(p)) {
          ds.notices.push_back("skipped '" + p.string() + "': hidden folder");
          walk.disable_recursion_pending();
        }
        continue;
      }
      if (const std::string kind = special_file_kind(p.string()); !kind.empty()) {
        ds.notices.push_back("skipped '" + p.string() + "': not a regular file (" + kind + ")");
        continue;
      }
      const FileFormat format = sniff_format(p.string());
      if (format == FileFormat::kUnknown) {
        ds.notices.push_back("skipped '" + p.string() + "': not an image");
        continue;
      }
      if (is_hidden(p)) {
        ds.notices.push_back("skipped '" + p.string() + "': hidden file");
        continue;
      }
      Sample s;
      s.path = p.string();
      s.label = folder_label[i];
      ds.samples.push_back(std::move(s));
    }
  }
  if (ds.samples.empty())
    throw file_error(ErrorKind::kInvalidArgument, kWhat, data, "no images in the class folders");
  sort_samples(ds.samples);
  std::sort(ds.notices.begin(), ds.notices.end());
  return ds;
}

// ---- CSV ----------------------------------------------------------------------------------

Dataset load_csv(const std::string& csv, const DatasetOptions& options) {
  constexpr const char* kWhat = "cannot read CSV";
  const CsvTable table = read_csv_table(csv, kWhat, "empty file (expected a header with path,label)");
  const auto& header = table.header;
  auto column = [&](const char* name) { return table.column(name); };
  const int col_path = column("path"), col_label = column("label");
  const int col_split = column("split"), col_group = column("group"), col_mask = column("mask");
  for (const auto& [col, name] : {std::pair<int, const char*>{col_path, "path"}, {col_label, "label"}}) {
    if (col < 0)
      throw file_error(
          ErrorKind::kCorruption, kWhat, csv,
          std::string("header has no '") + name + "' column (columns: " + join(header, ", ") + ")");
  }
  if (!options.split.empty() && col_split < 0)
    throw file_error(ErrorKind::kInvalidArgument, kWhat, csv,
                     "no 'split' column to select split '" + options.split + "'");

  Dataset ds;
  if (options.classes.empty()) {
    // Classes from all rows (not only the selected split), so every split gets the same labels.
    std::set<std::string> labels;
    for (const CsvRecord& rec : table.rows) {
      const std::string label = trim(rec.fields[col_label]);
      if (!label.empty()) labels.insert(label);
    }
    ds.classes.assign(labels.begin(), labels.end());
  } else {
    ds.classes = options.classes;
  }

  std::set<std::string> splits;
  for (const CsvRecord& rec : table.rows) {
    const std::string where = "line " + std::to_string(rec.line) + ": ";
    if (col_split >= 0) {
      const std::string split = trim(rec.fields[col_split]);
      splits.insert(split);
      if (!options.split.empty() && split != options.split) continue;
    }
    const std::string path = trim(rec.fields[col_path]);
    const std::string label = trim(rec.fields[col_label]);
    if (path.empty()) throw file_error(ErrorKind::kCorruption, kWhat, csv, where + "empty path");
    if (label.empty()) throw file_error(ErrorKind::kCorruption, kWhat, csv, where + "empty label");
    Sample s;
    s.label = options.classes.empty()
                  ? static_cast<int>(std::lower_bound(ds.classes.begin(), ds.classes.end(), label) -
                                     ds.classes.begin())
                  : find_class(ds.classes, label);
    if (s.label < 0)
      throw file_error(ErrorKind::kInvalidArgument, kWhat, csv,
                       where + "unknown label '" + label + "' (classes: " + join(ds.classes, ", ") + ")");
    s.path = table.resolve(path);
    if (col_group >= 0) s.group = trim(rec.fields[col_group]);
    if (col_mask >= 0 && !trim(rec.fields[col_mask]).empty()) {
      s.mask = table.resolve(trim(rec.fields[col_mask]));
    }
    for (size_t c = 0; c < header.size(); ++c) s.columns[header[c]] = rec.fields[c];
    ds.samples.push_back(std::move(s));
  }
  if (ds.samples.empty()) {
    if (!options.split.empty())
      throw file_error(ErrorKind::kInvalidArgument, kWhat, csv,
                       "no rows with split '" + options.split + "' (splits: " +
                           join(std::vector<std::string>(splits.begin(), splits.end()), ", ") + ")");
    throw file_error(ErrorKind::kInvalidArgument, kWhat, csv, "no rows after the header");
  }
  sort_samples(ds.samples);
  return ds;
}

// ---- npz ----------------------------------------------------------------------------------

// Reads element `i` of an integer array as int64; false for a non-integer dtype.
bool integer_at(const NpyArray& a, int64_t i, int64_t& out) {
  const uint8_t* p = a.data.data() + i * a.itemsize();
  const std::string& d = a.dtype;
  auto le = [&](int n) {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | p[k];
    return v;
  };
  if (d == "|u1" || d == "|b1")
    out = p[0];
  else if (d == "|i1")
    out = static_cast<int8_t>(p[0]);
  else if (d == "<u2")
    out = static_cast<int64_t>(le(2));
  else if (d == "<i2")
    out = static_cast<int16_t>(le(2));
  else if (d == "<u4")
    out = static_cast<int64_t>(le(4));
  else if (d == "<i4")
    out = static_cast<int32_t>(le(4));
  else if (d == "<u8")
    out = le(8) > static_cast<uint64_t>(INT64_MAX) ? -1 : static_cast<int64_t>(le(8));
  else if (d == "<i8")
    out = static_cast<int64_t>(le(8));
  else
    return false;
  return true;
}

Dataset load_npz(const std::string& npz, const DatasetOptions& options) {
  constexpr const char* kWhat = "cannot read npz";
  const std::string split = options.split.empty() ? "train" : options.split;
  const std::string images_name = split + "_images", labels_name = split + "_labels";
  auto arrays = read_npz(npz, {images_name, labels_name});
  const NpyArray& images = arrays.at(images_name);
  const NpyArray& labels = arrays.at(labels_name);
  const auto& s = images.shape;
  if (images.dtype != "|u1")
    throw file_error(ErrorKind::kUnsupported, kWhat, npz,
                     "array '" + images_name + "': images must be uint8 (got dtype '" + images.dtype + "')");
  const bool grey = s.size() == 3 || (s.size() == 4 && s[3] == 1);
  const bool rgb = s.size() == 4 && s[3] == 3;
  if (!grey && !rgb)
    throw file_error(
        ErrorKind::kUnsupported, kWhat, npz,
        "array '" + images_name + "': expected shape (N, H, W) or (N, H, W, 1|3), got " + numpy_shape_string(s));
  const int64_t n = s[0], h = s[1], w = s[2];
  if (h <= 0 || w <= 0 || h > 65536 || w > 65536)
    throw file_error(ErrorKind::kCorruption, kWhat, npz,
                     "array '" + images_name + "': bad image size " + numpy_shape_string(s));
  const auto& ls = labels.shape;
  if (!(ls.size() == 1 || (ls.size() == 2 && ls[1] == 1)))
    throw file_error(ErrorKind::kUnsupported, kWhat, npz,
                     "array '" + labels_name + "': expected shape (N,) or (N, 1), got " + numpy_shape_string(ls) +
                         " (multi-label data is not supported)");
  if (ls[0] != n)
    throw file_error(ErrorKind::kCorruption, kWhat, npz,
                     "array '" + labels_name + "' has " + std::to_string(ls[0]) + " labels for " +
                         std::to_string(n) + " images");

  std::vector<int64_t> values(static_cast<size_t>(n));
  int64_t max_label = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (!integer_at(labels, i, values[i]))
      throw file_error(
          ErrorKind::kUnsupported, kWhat, npz,
          "array '" + labels_name + "': labels must be integers (got dtype '" + labels.dtype + "')");
    max_label = std::max(max_label, values[i]);
  }
  Dataset ds;
  if (options.classes.empty()) {
    if (max_label > 10000)
      throw file_error(
          ErrorKind::kCorruption, kWhat, npz,
          "array '" + labels_name + "': label " + std::to_string(max_label) + " is implausibly large");
    for (int64_t k = 0; k <= max_label; ++k) ds.classes.push_back(std::to_string(k));
  } else {
    ds.classes = options.classes;
  }
  const int64_t k = static_cast<int64_t>(ds.classes.size());
  for (int64_t i = 0; i < n; ++i) {
    if (values[i] < 0 || values[i] >= k)
      throw file_error(ErrorKind::kInvalidArgument, kWhat, npz,
                       "array '" + labels_name + "': label " + std::to_string(values[i]) + " at index " +
                           std::to_string(i) + " is out of range for " + std::to_string(k) + " classes (" +
                           join(ds.classes, ", ") + ")");
  }

  const size_t channels = rgb ? 3 : 1;
  const size_t stride = static_cast<size_t>(h * w) * channels;
  ds.samples.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    Sample sample;
    sample.path = npz + "#" + split + "[" + std::to_string(i) + "]";
    sample.label = static_cast<int>(values[i]);
    const uint8_t* src = images.data.data() + static_cast<size_t>(i) * stride;
    if (rgb) {
      cv::Mat colour(static_cast<int>(h), static_cast<int>(w), CV_8UC3, const_cast<uint8_t*>(src));
      cv::cvtColor(colour, sample.pixels, cv::COLOR_RGB2GRAY);
    } else {
      sample.pixels =
          cv::Mat(static_cast<int>(h), static_cast<int>(w), CV_8UC1, const_cast<uint8_t*>(src)).clone();
    }
    ds.samples.push_back(std::move(sample));
  }
  if (rgb) ds.notices.push_back("converted RGB images in '" + npz + "' to grey");
  if (ds.samples.empty())
    throw file_error(ErrorKind::kInvalidArgument, kWhat, npz, "array '" + images_name + "' is empty");
  // Paths "<npz>#split[i]" sort lexically (1, 10, 100, 2...); keep index order instead, which
  // is just as deterministic and matches the arrays.
  return ds;
}

bool looks_like_zip(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  return f.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' &&
         ((magic[2] == 3 && magic[3] == 4) || (magic[2] == 5 && magic[3] == 6));
}

}  // namespace

Dataset load_dataset(const std::string& data, const DatasetOptions& options) {
  std::error_code ec;
  const fs::file_status st = fs::status(data, ec);
  if (ec || !fs::exists(st))
    throw file_error(ErrorKind::kNotFound, "cannot read dataset", data, "no such file or directory");
  if (fs::is_directory(st)) return load_class_folders(data, options);
  if (!fs::is_regular_file(st))  // a FIFO or a device would block or never end
    throw file_error(ErrorKind::kInvalidArgument, "cannot read dataset", data,
                     "not a regular file (" + special_file_kind(data) + ")");
  const std::string ext = lower(fs::path(data).extension().string());
  if (ext == ".npz" || looks_like_zip(data)) return load_npz(data, options);
  if (ext != ".csv") {
    const FileFormat format = sniff_format(data);
    if (format != FileFormat::kUnknown)
      throw file_error(ErrorKind::kInvalidArgument, "cannot read dataset", data,
                       std::string("is a ") + format_name(format) +
                           " image, not a dataset (expected a class-folder directory, a CSV or a .npz)");
  }
  return load_csv(data, options);
}

}  // namespace medattn::io
