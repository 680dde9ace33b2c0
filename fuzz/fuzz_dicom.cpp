// The DICOM reader directly (DCMTK parsing, decompression, rescale, frames).
#include "core/error.h"
#include "fuzz_common.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = medattn::fuzz::write_input("input.dcm", data, size);
  medattn::io::ReadOptions options;
  options.max_pixels = 4'000'000;
  options.frame = size > 0 ? data[0] % 3 : 0;
  try {
    (void)medattn::io::read_dicom(path, options);
  } catch (const medattn::Error&) {
  }
  return 0;
}
