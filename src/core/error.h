// Errors a user can cause (a missing file, a corrupt DICOM, a wrong model) are expected
// outcomes in medattn: library code throws medattn::Error, and the CLI turns it into one
// clear line. Internal invariants use TORCH_CHECK or assertions instead.
#pragma once

#include <stdexcept>
#include <string>

namespace medattn {

enum class ErrorKind {
  kInvalidArgument,  // a bad option or value (maps to exit code 2)
  kNotFound,         // a file or directory that does not exist
  kIOError,          // the OS refused a read or write
  kCorruption,       // content that is truncated or malformed
  kUnsupported,      // valid content this build cannot decode (e.g. JPEG 2000)
  kModel,            // a model directory that cannot be loaded (maps to exit code 3)
};

// Returns "invalid argument", "not found", ... for messages.
const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Builds the house-style message "<what> '<path>': <why>", e.g.
//   file_error(ErrorKind::kCorruption, "cannot read DICOM", "a.dcm", "pixel data truncated")
//   -> "cannot read DICOM 'a.dcm': pixel data truncated"
Error file_error(ErrorKind kind, const std::string& what, const std::string& path,
                 const std::string& why);

}  // namespace medattn
