// Labelled datasets for train and evaluate: class folders, CSV files, MedMNIST npz.
#pragma once

#include <opencv2/core.hpp>
#include <map>
#include <string>
#include <vector>

namespace medattn::io {

struct Sample {
  std::string path;  // image file, or "<npz>#<split>[<index>]" for in-memory samples
  cv::Mat pixels;    // in-memory samples only (npz): CV_8UC1; empty for file samples
  int label = -1;    // index into Dataset::classes
  std::string group; // patient/lesion group for grouped splits; empty when unknown
  std::string mask;  // CSV `mask` column: the lesion mask's path (resolved like `path`); empty: none
  // CSV only: every column of the row by its lower-case header name (clinical covariates are
  // read from here).
  std::map<std::string, std::string> columns;
};

struct Dataset {
  std::vector<std::string> classes;  // in label order
  std::vector<Sample> samples;
  std::vector<std::string> notices;  // e.g. "skipped 'x/.DS_Store': not an image"
};

struct DatasetOptions {
  // Class names in label order. For class folders and CSVs: matched to folder names/labels
  // case-insensitively (a folder/label not in the list is an error naming it); empty = use
  // the folder names / distinct labels, sorted. For npz: names for label values 0..K-1;
  // empty = "0", "1", ...
  std::vector<std::string> classes;
  // npz: picks arrays NAME_images / NAME_labels (default "train"); CSV: keeps rows whose
  // `split` column equals NAME (empty = all rows).
  std::string split;
};

// Loads DATA: a directory of class folders (DATA/<class>/<images>, searched recursively,
// non-image files skipped with a notice), a CSV with a header containing `path,label`
// (relative paths taken from the CSV's folder), or a MedMNIST .npz. Throws medattn::Error
// on a missing or malformed dataset.
Dataset load_dataset(const std::string& data, const DatasetOptions& options = {});

}  // namespace medattn::io
