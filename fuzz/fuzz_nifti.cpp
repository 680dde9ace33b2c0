// The NIfTI reader directly (header checks, nifticlib, slices), plain and gzipped names.
#include "core/error.h"
#include "fuzz_common.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool gz = size > 2 && data[0] == 0x1f && data[1] == 0x8b;
  const std::string path = medattn::fuzz::write_input(gz ? "input.nii.gz" : "input.nii", data, size);
  medattn::io::ReadOptions options;
  options.max_pixels = 4'000'000;
  options.max_frames = 64;
  try {
    (void)medattn::io::read_nifti(path, options);
  } catch (const medattn::Error&) {
  }
  return 0;
}
