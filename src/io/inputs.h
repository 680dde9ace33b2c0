// Expanding the INPUT arguments of `diagnose` (any mix of files and directories) into the
// list of images to process.
#pragma once

#include <iosfwd>
#include <memory>
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
  // Folders that could not be listed: "cannot read folder '<path>': <errno text>".
  std::vector<std::string> unreadable;
};

// Files given explicitly are always kept (a bad one fails later with its own error).
// Directories are searched recursively (following no symlinked directories); a file found
// there is kept when its content is a supported image or its extension claims one (.png,
// .jpg, .jpeg, .tif, .tiff, .bmp, .dcm, .dicom, .ima, .nii, .nii.gz), so that a broken image
// is reported rather than silently skipped; other files (e.g. .DS_Store, notes.txt) are
// skipped with a notice. Entries that are not regular files (a FIFO, a device, a socket,
// also through a symlink) are skipped with a notice that says what they are, never opened.
// A folder that cannot be listed (permissions, I/O error) is reported with the errno's text.
ExpandedInputs expand_inputs(const std::vector<std::string>& arguments);

// Finds inputs lazily, one at a time, so that an archive of any size costs memory for one
// folder listing, not for every path. Arguments are taken in order; a directory is walked
// depth first with each folder's entries sorted so that the order equals a sort of the
// relative paths (following no symlinked directories); the argument "-" reads one path per
// line from `paths_in` (blank lines ignored). The same files are kept, skipped and reported
// as by expand_inputs().
class InputWalker {
 public:
  // kUnreadable: a folder (an argument or one inside it) that cannot be listed; the run
  // counts it as a failed input.
  enum class Kind { kItem, kSkipped, kMissing, kUnreadable };
  struct Event {
    Kind kind = Kind::kItem;
    InputItem item;       // kItem: the input; other kinds: item.path names the file or folder
    // kSkipped: "skipped '<path>': not an image" (or "...: not a regular file (a FIFO)");
    // kUnreadable: "cannot read folder '<path>': Permission denied".
    std::string message;
  };
  // `paths_in` is read only when an argument is "-"; it must outlive the walker.
  InputWalker(std::vector<std::string> arguments, std::istream* paths_in);
  ~InputWalker();
  InputWalker(const InputWalker&) = delete;
  InputWalker& operator=(const InputWalker&) = delete;
  // Folders never to descend into (e.g. the run's own heatmap folder inside an archive it
  // walks), compared after resolving symlinks. Call before next().
  void exclude(const std::string& dir);
  // The next event; false when every argument has been walked.
  bool next(Event& event);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// True when the file name's extension claims an image format.
bool has_image_extension(const std::string& path);

// The heatmap file stem for an input: the path as given (argument joined with relative),
// with "./" and ".." components dropped, a leading "/" removed, separators turned into "_",
// characters outside [A-Za-z0-9._-] turned into "_", and the image extension removed:
// "scans/a/chest.dcm" -> "scans_a_chest", "/abs/x.nii.gz" -> "abs_x", "../up/y.png" -> "up_y".
// Never empty, never starts with ".", never contains "/" (so it cannot escape its folder).
std::string heatmap_stem(const InputItem& item);

}  // namespace medattn::io
