// Reading NumPy .npz archives (a zip, usually deflate-compressed, of .npy files), as used by
// MedMNIST.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace medattn::io {

struct NpyArray {
  std::string dtype;             // numpy descr, e.g. "|u1", "<i8", "<f4"
  std::vector<int64_t> shape;    // C order (fortran_order arrays are refused)
  std::vector<uint8_t> data;     // raw little-endian bytes, product(shape) * itemsize
  int64_t size() const;          // number of elements
  int itemsize() const;          // bytes per element, from dtype
};

// Lists the array names in `path` (member names without the ".npy" suffix).
// Throws medattn::Error ("cannot read npz '<path>': <why>") on a missing or corrupt archive.
std::vector<std::string> list_npz(const std::string& path);

// Reads the named arrays (all arrays when `names` is empty). Throws medattn::Error naming the
// archive and the array on a missing array, a corrupt header, an unsupported dtype/order or
// truncated data.
std::map<std::string, NpyArray> read_npz(const std::string& path,
                                         const std::vector<std::string>& names = {});

}  // namespace medattn::io
