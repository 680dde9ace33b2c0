// The npz reader (zip container, .npy headers, dtypes, shapes) and the npz dataset on top.
#include "core/error.h"
#include "fuzz_common.h"
#include "io/dataset.h"
#include "io/npz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = medattn::fuzz::write_input("input.npz", data, size);
  try {
    (void)medattn::io::list_npz(path);
    (void)medattn::io::read_npz(path);
  } catch (const medattn::Error&) {
  }
  try {
    medattn::io::DatasetOptions options;
    options.split = "train";
    (void)medattn::io::load_dataset(path, options);
  } catch (const medattn::Error&) {
  }
  return 0;
}
