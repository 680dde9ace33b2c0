// Expanding the INPUT arguments of `diagnose` (any mix of files and directories) into the
// list of images to process.
#pragma once

#include <string>
#include <vector>

namespace medattn::io {

struct InputItem {
  std::string path;      // openable path: the argument, or argument/relative for directories
  std::string argument;  // the INPUT argument it came from
  std::string relative;  // path relative to the argument's directory ("" for a file argument)
};

struct ExpandedInputs {
  std::vector<InputItem> items;      // in argument order; directory contents sorted by path
  std::vector<std::string> notices;  // "skipped '<path>': not an image", one per skipped file
  std::vector<std::string> missing;  // arguments that do not exist
};

// Files given explicitly are always kept (a bad one fails later with its own error).
// Directories are searched recursively (following no symlinked directories); a file found
// there is kept when its content is a supported image or its extension claims one (.png,
// .jpg, .jpeg, .tif, .tiff, .bmp, .dcm, .dicom, .ima, .nii, .nii.gz), so that a broken image
// is reported rather than silently skipped; other files (e.g. .DS_Store, notes.txt) are
// skipped with a notice.
ExpandedInputs expand_inputs(const std::vector<std::string>& arguments);

// True when the file name's extension claims an image format.
bool has_image_extension(const std::string& path);

// The heatmap file stem for an input: the path as given (argument joined with relative),
// with "./" and ".." components dropped, a leading "/" removed, separators turned into "_",
// characters outside [A-Za-z0-9._-] turned into "_", and the image extension removed:
// "scans/a/chest.dcm" -> "scans_a_chest", "/abs/x.nii.gz" -> "abs_x", "../up/y.png" -> "up_y".
// Never empty, never starts with ".", never contains "/" (so it cannot escape its folder).
std::string heatmap_stem(const InputItem& item);

}  // namespace medattn::io
