// NumPy .npz archives read with libzip; the .npy header is parsed here.
//
// .npy format (numpy/lib/format.py): "\x93NUMPY", major, minor, a little-endian header
// length (uint16 for version 1.0, uint32 for 2.0 and 3.0), then an ASCII (3.0: UTF-8)
// Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded
// with spaces and a newline, then the raw data.
#include "io/npz.h"

#include <zip.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "core/text.h"

namespace medattn::io {
namespace {

constexpr const char* kWhat = "cannot read npz";
// No array we read may exceed this many bytes (guards allocations against corrupt shapes).
constexpr uint64_t kMaxArrayBytes = uint64_t{16} << 30;  // 16 GiB
// Arrays above this size must not decompress from fewer than 1/kMaxCompressionRatio bytes.
constexpr uint64_t kBombMinBytes = uint64_t{64} << 20;  // 64 MiB
constexpr uint64_t kMaxCompressionRatio = 100;

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileClose {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscard>;
using ZipFilePtr = std::unique_ptr<zip_file_t, ZipFileClose>;

Error npz_error(ErrorKind kind, const std::string& path, const std::string& why) {
  return file_error(kind, kWhat, path, why);
}

Error array_error(ErrorKind kind, const std::string& path, const std::string& name, const std::string& why) {
  return file_error(kind, kWhat, path, "array '" + name + "': " + why);
}

ZipPtr open_zip(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw npz_error(ErrorKind::kNotFound, path, "no such file");
  if (std::filesystem::is_directory(path, ec))
    throw npz_error(ErrorKind::kInvalidArgument, path, "is a directory");
  int code = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY, &code);
  if (z == nullptr) {
    switch (code) {
      case ZIP_ER_NOZIP:
        throw npz_error(ErrorKind::kCorruption, path, "not a zip archive");
      case ZIP_ER_NOENT:
        throw npz_error(ErrorKind::kNotFound, path, "no such file");
      case ZIP_ER_OPEN:
      case ZIP_ER_READ:
        throw npz_error(ErrorKind::kIOError, path, "cannot open the file");
      default: {
        zip_error_t error;
        zip_error_init_with_code(&error, code);
        std::string why = zip_error_strerror(&error);
        zip_error_fini(&error);
        if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
        throw npz_error(ErrorKind::kCorruption, path, "not a valid zip archive (" + why + ")");
      }
    }
  }
  return ZipPtr(z);
}

// Array names in archive order, with each member's index.
std::vector<std::pair<std::string, zip_uint64_t>> npy_members(zip_t* z) {
  std::vector<std::pair<std::string, zip_uint64_t>> out;
  const zip_int64_t n = zip_get_num_entries(z, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    const char* name = zip_get_name(z, static_cast<zip_uint64_t>(i), 0);
    if (name == nullptr) continue;
    const std::string s(name);
    if (ends_with(s, ".npy") && s.size() > 4)
      out.emplace_back(s.substr(0, s.size() - 4), static_cast<zip_uint64_t>(i));
  }
  return out;
}

// ---- .npy header --------------------------------------------------------------------------

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// A tiny parser for the Python dict literal numpy writes.
class HeaderParser {
 public:
  explicit HeaderParser(const std::string& text) : s_(text) {}

  // Returns an empty string on success, else what is wrong.
  std::string parse(NpyHeader& h) {
    bool has_descr = false, has_order = false, has_shape = false;
    skip_ws();
    if (!eat('{')) return "expected '{'";
    for (;;) {
      skip_ws();
      if (eat('}')) break;
      std::string key;
      if (!parse_string(key)) return "expected a quoted key";
      skip_ws();
      if (!eat(':')) return "expected ':' after '" + key + "'";
      skip_ws();
      if (key == "descr") {
        if (peek() == '[') return "structured dtypes are not supported";
        if (!parse_string(h.descr)) return "'descr' is not a string";
        has_descr = true;
      } else if (key == "fortran_order") {
        if (match("True")) {
          h.fortran_order = true;
        } else if (match("False")) {
          h.fortran_order = false;
        } else {
          return "'fortran_order' is not True or False";
        }
        has_order = true;
      } else if (key == "shape") {
        if (!parse_shape(h.shape)) return "'shape' is not a tuple of integers";
        has_shape = true;
      } else {
        return "unexpected key '" + key + "'";
      }
      skip_ws();
      if (eat(',')) continue;
      skip_ws();
      if (eat('}')) break;
      return "expected ',' or '}'";
    }
    if (!has_descr) return "no 'descr'";
    if (!has_order) return "no 'fortran_order'";
    if (!has_shape) return "no 'shape'";
    return "";
  }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  bool match(const char* word) {
    const size_t n = std::strlen(word);
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }
  void skip_ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool parse_string(std::string& out) {
    const char q = peek();
    if (q != '\'' && q != '"') return false;
    ++i_;
    out.clear();
    while (i_ < s_.size() && s_[i_] != q) out += s_[i_++];
    return eat(q);
  }
  bool parse_shape(std::vector<int64_t>& shape) {
    shape.clear();
    if (!eat('(')) return false;
    for (;;) {
      skip_ws();
      if (eat(')')) return true;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return false;
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (s_[i_++] - '0');
      }
      eat('L');  // Python 2 long literals
      shape.push_back(v);
      skip_ws();
      if (eat(',')) continue;
      skip_ws();
      if (eat(')')) return true;
      return false;
    }
  }

  const std::string& s_;
  size_t i_ = 0;
};

int dtype_itemsize(const std::string& dtype) {
  if (dtype.size() < 3) return 0;
  int n = 0;
  for (size_t i = 2; i < dtype.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(dtype[i])) || n > 64) return 0;
    n = n * 10 + (dtype[i] - '0');
  }
  return n;
}

// Little-endian (or byte-order-free) dtypes we hand out.
bool supported_dtype(const std::string& d) {
  static const char* kSupported[] = {"|u1", "|i1", "|b1", "<u2", "<i2", "<u4",
                                     "<i4", "<u8", "<i8", "<f2", "<f4", "<f8"};
  for (const char* s : kSupported)
    if (d == s) return true;
  return false;
}

// Reads exactly `n` bytes (fewer at the end of the member). Throws on a zip read error.
size_t read_some(zip_file_t* f, uint8_t* buf, size_t n, const std::string& path, const std::string& name) {
  size_t done = 0;
  while (done < n) {
    const zip_int64_t r = zip_fread(f, buf + done, n - done);
    if (r < 0) {
      std::string why = zip_error_strerror(zip_file_get_error(f));
      if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
      throw array_error(ErrorKind::kCorruption, path, name, why);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

NpyArray read_member(zip_t* z, zip_uint64_t index, const std::string& path, const std::string& name) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(z, index, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
    throw array_error(ErrorKind::kCorruption, path, name, "cannot read the zip entry");
  const uint64_t member_size = st.size;
  ZipFilePtr f(zip_fopen_index(z, index, 0));
  if (!f) {
    std::string why = zip_error_strerror(zip_get_error(z));
    if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
    const ErrorKind kind = zip_error_code_zip(zip_get_error(z)) == ZIP_ER_COMPNOTSUPP
                               ? ErrorKind::kUnsupported
                               : ErrorKind::kCorruption;
    throw array_error(kind, path, name, why);
  }

  uint8_t preamble[12] = {};
  const size_t got = read_some(f.get(), preamble, 10, path, name);
  static const uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (got < 10 || std::memcmp(preamble, kMagic, 6) != 0)
    throw array_error(ErrorKind::kCorruption, path, name, "not a .npy file (bad magic)");
  const int major = preamble[6], minor = preamble[7];
  uint64_t header_len = 0, prefix = 0;
  if (major == 1) {
    header_len = preamble[8] | (preamble[9] << 8);
    prefix = 10;
  } else if (major == 2 || major == 3) {
    if (read_some(f.get(), preamble + 10, 2, path, name) < 2)
      throw array_error(ErrorKind::kCorruption, path, name, "truncated header");
    header_len = uint64_t{preamble[8]} | (uint64_t{preamble[9]} << 8) | (uint64_t{preamble[10]} << 16) |
                 (uint64_t{preamble[11]} << 24);
    prefix = 12;
  } else {
    throw array_error(ErrorKind::kUnsupported, path, name,
                      "unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor));
  }
  if (header_len > (1u << 20) || prefix + header_len > member_size)
    throw array_error(ErrorKind::kCorruption, path, name, "truncated header");
  std::string text(header_len, '\0');
  if (read_some(f.get(), reinterpret_cast<uint8_t*>(&text[0]), header_len, path, name) < header_len)
    throw array_error(ErrorKind::kCorruption, path, name, "truncated header");

  NpyHeader h;
  const std::string problem = HeaderParser(text).parse(h);
  if (!problem.empty())
    throw array_error(ErrorKind::kCorruption, path, name, "malformed header (" + problem + ")");
  if (!h.descr.empty() && h.descr[0] == '>' && dtype_itemsize(h.descr) > 1)
    throw array_error(ErrorKind::kUnsupported, path, name,
                      "big-endian dtype '" + h.descr + "' is not supported");
  if (!supported_dtype(h.descr))
    throw array_error(ErrorKind::kUnsupported, path, name,
                      "unsupported dtype '" + h.descr +
                          "' (expected one of |u1 |i1 |b1 <u2 <i2 <u4 <i4 <u8 <i8 <f2 <f4 <f8)");
  if (h.fortran_order)
    throw array_error(ErrorKind::kUnsupported, path, name, "fortran-order arrays are not supported");

  // Guard the element count before any allocation.
  const uint64_t itemsize = static_cast<uint64_t>(dtype_itemsize(h.descr));
  uint64_t bytes = itemsize;
  for (int64_t d : h.shape) {
    if (d < 0 || (d != 0 && bytes > kMaxArrayBytes / static_cast<uint64_t>(d)))
      throw array_error(ErrorKind::kCorruption, path, name,
                        "shape " + numpy_shape_string(h.shape) + " is too large");
    bytes *= static_cast<uint64_t>(d);
  }
  if (bytes > kMaxArrayBytes)
    throw array_error(ErrorKind::kCorruption, path, name, "shape " + numpy_shape_string(h.shape) + " is too large");
  const uint64_t available = member_size - prefix - header_len;
  if (available < bytes)
    throw array_error(ErrorKind::kCorruption, path, name,
                      "truncated data (got " + std::to_string(available) + " bytes, expected " +
                          std::to_string(bytes) + ")");
  if (available > bytes)
    throw array_error(ErrorKind::kCorruption, path, name,
                      "data size mismatch (got " + std::to_string(available) + " bytes, expected " +
                          std::to_string(bytes) + ")");

  // A decompression bomb (a few MB of deflate holding GB of zeros) is refused before the
  // allocation: above kBombMinBytes, at most kMaxCompressionRatio bytes per compressed byte.
  if (bytes > kBombMinBytes && (st.valid & ZIP_STAT_COMP_SIZE) && st.comp_size > 0 &&
      bytes / st.comp_size > kMaxCompressionRatio) {
    throw array_error(ErrorKind::kUnsupported, path, name,
                      "decompresses to " + std::to_string(bytes >> 20) + " MB from " +
                          std::to_string(st.comp_size >> 10) + " KB (more than " + std::to_string(kMaxCompressionRatio) +
                          ":1 is refused as a decompression bomb)");
  }
  NpyArray array;
  array.dtype = h.descr;
  array.shape = h.shape;
  array.data.resize(static_cast<size_t>(bytes));
  const size_t read = read_some(f.get(), array.data.data(), array.data.size(), path, name);
  if (read < array.data.size())
    throw array_error(
        ErrorKind::kCorruption, path, name,
        "truncated data (got " + std::to_string(read) + " bytes, expected " + std::to_string(bytes) + ")");
  return array;
}

}  // namespace

int64_t NpyArray::size() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int NpyArray::itemsize() const { return dtype_itemsize(dtype); }

std::vector<std::string> list_npz(const std::string& path) {
  ZipPtr z = open_zip(path);
  std::vector<std::string> names;
  for (const auto& m : npy_members(z.get())) names.push_back(m.first);
  return names;
}

std::map<std::string, NpyArray> read_npz(const std::string& path, const std::vector<std::string>& names) {
  ZipPtr z = open_zip(path);
  const auto members = npy_members(z.get());
  std::map<std::string, NpyArray> out;
  if (names.empty()) {
    for (const auto& [name, index] : members) out[name] = read_member(z.get(), index, path, name);
    return out;
  }
  for (const auto& name : names) {
    if (out.count(name)) continue;
    const auto it =
        std::find_if(members.begin(), members.end(), [&](const auto& m) { return m.first == name; });
    if (it == members.end()) {
      std::vector<std::string> have;
      for (const auto& m : members) have.push_back(m.first);
      throw npz_error(ErrorKind::kNotFound, path,
                      "no array '" + name + "' (arrays: " + (have.empty() ? "none" : join(have, ", ")) + ")");
    }
    out[name] = read_member(z.get(), it->second, path, name);
  }
  return out;
}

}  // namespace medattn::io
