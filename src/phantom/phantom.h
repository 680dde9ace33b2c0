// Synthetic chest-radiograph-like images with known lesions: the project's own data for the
// demo, for tests, and for proving that heatmaps point at lesions.
#pragma once

#include <cstdint>
#include <functional>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace medattn::phantom {

// Class names in label order.
const std::vector<std::string>& phantom_classes();  // {"normal", "nodule", "consolidation"}

struct Phantom {
  cv::Mat image;  // CV_8UC1, size x size, a frontal chest-radiograph-like picture
  cv::Mat mask;   // CV_8UC1, size x size, 255 inside the lesion, 0 elsewhere (all 0 for normal)
  int label = 0;  // index into phantom_classes()
};

// Makes one phantom of class `label` from `seed`. Deterministic: the same (label, seed,
// size) gives the same pixels on every machine (no std:: distributions, whose output is
// implementation-defined). The label only adds the lesion: make_phantom(0, s) is
// make_phantom(k, s) without it (same anatomy, texture and noise).
// REQUIRES: 0 <= label < 3, size >= 64.
Phantom make_phantom(int label, uint64_t seed, int size = 256);

namespace detail {
// The lung-field mask (CV_8UC1, 255 inside either lung) of make_phantom(label, seed, size),
// for tests that check lesions stay inside the lungs.
cv::Mat phantom_lung_field(int label, uint64_t seed, int size);
}  // namespace detail

struct PhantomOptions {
  int count = 30;       // images in all, spread evenly over the classes (first classes get the remainder)
  uint64_t seed = 1;    // the same seed gives the same files
  int size = 256;       // width and height in pixels
};

// Writes `options.count` phantoms to DIR/images/<class>/<class>_NNNN.png and their masks to
// DIR/masks/<class>/<class>_NNNN.png (same names). Each file is written atomically
// (temporary name, then rename). `progress(done, total)` is called after each image.
// Returns the number of images written. Throws medattn::Error if DIR cannot be written.
int write_phantoms(const std::string& dir, const PhantomOptions& options,
                   const std::function<void(int, int)>& progress = {});

}  // namespace medattn::phantom
