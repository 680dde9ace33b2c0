#include "core/error.h"

namespace medattn {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return "invalid argument";
    case ErrorKind::kNotFound: return "not found";
    case ErrorKind::kIOError: return "I/O error";
    case ErrorKind::kCorruption: return "corrupt input";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kModel: return "model error";
  }
  return "error";
}

Error file_error(ErrorKind kind, const std::string& what, const std::string& path,
                 const std::string& why) {
  return Error(kind, what + " '" + path + "': " + why);
}

}  // namespace medattn
