// The front door: content sniffing, then whichever reader the content picks (OpenCV formats,
// DICOM, NIfTI), then windowing and the model's preprocessing.
#include "core/error.h"
#include "fuzz_common.h"
#include "io/image.h"
#include "preprocess/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = medattn::fuzz::write_input("input", data, size);
  medattn::io::ReadOptions options;
  options.max_pixels = 4'000'000;  // keeps each run fast; the limit logic itself is exercised
  try {
    (void)medattn::io::sniff_format(path);
    const auto image = medattn::io::read_image(path, options);
    const cv::Mat display = medattn::io::to_display(image);
    medattn::preprocess::PreprocessConfig config;
    config.image_size = 32;
    (void)medattn::preprocess::prepare_display(medattn::preprocess::to_grey(display), config);
  } catch (const medattn::Error&) {
  }
  return 0;
}
