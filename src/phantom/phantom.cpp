// Synthetic frontal chest radiographs with known lesions.
//
// An image is composed in a float "density" map (0 = air/black, 1 = bone/white) from
// analytic shapes in normalised coordinates (x, y in [0,1], y down; image left is the
// patient's right): background, body outline, two lung fields with a diaphragm dome, the
// mediastinum and heart shadow, spine, ribs, clavicles, lung texture and vessels. A lesion
// adds density inside a lung field. Then a global gamma/contrast/brightness mapping, a
// small blur and Gaussian noise turn it into an 8-bit picture.
//
// Determinism: every random number comes from our own xoshiro256** generator, and every
// per-pixel computation uses only +, -, *, / and sqrt (IEEE-exact) — no libm
// transcendental functions and no OpenCV float filters, whose results can differ between
// CPUs and library builds. So the same (label, seed, size) gives the same bytes everywhere.
//
// Three independent random streams derive from the seed: anatomy (shapes and global
// appearance), texture/noise, and lesion. The label only decides which lesion is added, so
// make_phantom(0, s) is exactly make_phantom(k, s) without its lesion — tests rely on it.
//
// The steps live beside this file: rng.h (random numbers), raster.* (blur, value noise),
// anatomy.* (shape parameters and layers), lesions.* (nodules, consolidations); this file
// renders the picture and writes the files.
#include "phantom/phantom.h"

#include <opencv2/imgcodecs.hpp>

#include <cstdio>
#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "core/fs.h"
#include "phantom/anatomy.h"
#include "phantom/lesions.h"
#include "phantom/raster.h"
#include "phantom/rng.h"

// Keep a*b+c as two roundings everywhere (GCC does so in ISO mode; clang would fuse).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

namespace medattn::phantom {
namespace {

namespace fs = std::filesystem;

Phantom render(int label, uint64_t seed, int size, cv::Mat* lung_field) {
  uint64_t s = seed;
  Rng anatomy_rng(splitmix64(s));
  Rng texture_rng(splitmix64(s));
  Rng noise_rng(splitmix64(s));
  Rng lesion_rng(mix(splitmix64(s), static_cast<uint64_t>(label) + 1));

  const Anatomy a = sample_anatomy(anatomy_rng);
  Layers L = compose_anatomy(a, texture_rng, size);
  Plane& d = L.density;

  Phantom out;
  out.label = label;
  out.mask = cv::Mat(size, size, CV_8UC1, cv::Scalar(0));
  if (label != 0) {
    const Lesion les = label == 1 ? make_nodules(L, lesion_rng, size, a.lung_depth)
                                  : make_consolidation(L, lesion_rng, size, a.lung_depth);
    for (int y = 0; y < size; ++y) {
      for (int x = 0; x < size; ++x) {
        const float o = les.opacity(y, x);
        if (o <= 0.0f) continue;
        d(y, x) += static_cast<float>(les.amp * o * les.gain(y, x));
        if (o >= 0.5f) out.mask.at<uint8_t>(y, x) = 255;
      }
    }
  }
  if (lung_field) {
    *lung_field = cv::Mat(size, size, CV_8UC1, cv::Scalar(0));
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x)
        if (L.lung[0](y, x) >= 0.5f || L.lung[1](y, x) >= 0.5f) lung_field->at<uint8_t>(y, x) = 255;
  }

  // Global appearance: gamma-like bias curve, contrast and brightness; all monotone, so a
  // lesion never makes a pixel darker.
  const double g = a.gamma_bias;
  const double kg = 1.0 / g - 2.0;
  for (int y = 0; y < size; ++y) {
    float* row = d[y];
    for (int x = 0; x < size; ++x) {
      const double v = clamp01(row[x]);
      const double b = v / (kg * (1.0 - v) + 1.0);  // Schlick's bias: b(0.5) = g
      row[x] = static_cast<float>(a.contrast * (b - 0.42) + 0.42 + a.brightness);
    }
  }
  blur(d, a.blur_sigma * size / 256.0);
  out.image = cv::Mat(size, size, CV_8UC1);
  const float sigma = static_cast<float>(a.noise_sigma);
  for (int y = 0; y < size; ++y) {
    const float* row = d[y];
    uint8_t* o = out.image.ptr<uint8_t>(y);
    for (int x = 0; x < size; ++x) {
      float v = row[x] + sigma * noise_rng.fast_normal();
      v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
      o[x] = static_cast<uint8_t>(v * 255.0f + 0.5f);
    }
  }
  return out;
}

uint64_t image_seed(uint64_t seed, int label, int index) {
  return mix(mix(seed, 0x5EEDC1A55ULL + static_cast<uint64_t>(label)), static_cast<uint64_t>(index));
}

void write_png(const fs::path& path, const cv::Mat& image) {
  std::vector<uchar> bytes;
  if (!cv::imencode(".png", image, bytes))
    throw file_error(ErrorKind::kIOError, "cannot write", path.string(), "PNG encoding failed");
  write_file_atomic(path.string(), std::string(bytes.begin(), bytes.end()), /*sync=*/false);
}

}  // namespace

// For tests; not part of the public API. The lung fields (255 inside either lung, heart and
// mediastinum excluded) of the phantom make_phantom(label, seed, size) would draw.
namespace detail {
cv::Mat phantom_lung_field(int label, uint64_t seed, int size) {
  cv::Mat field;
  render(label, seed, size, &field);
  return field;
}
}  // namespace detail

const std::vector<std::string>& phantom_classes() {
  static const std::vector<std::string> kClasses = {"normal", "nodule", "consolidation"};
  return kClasses;
}

Phantom make_phantom(int label, uint64_t seed, int size) {
  if (label < 0 || label >= static_cast<int>(phantom_classes().size()))
    throw Error(ErrorKind::kInvalidArgument,
                "phantom label out of range (got " + std::to_string(label) + ", expected 0..2)");
  if (size < 64)
    throw Error(ErrorKind::kInvalidArgument,
                "phantom size too small (got " + std::to_string(size) + ", expected >= 64)");
  return render(label, seed, size, nullptr);
}

int write_phantoms(const std::string& dir, const PhantomOptions& options,
                   const std::function<void(int, int)>& progress) {
  if (options.count < 0)
    throw Error(ErrorKind::kInvalidArgument,
                "phantom count must be >= 0 (got " + std::to_string(options.count) + ")");
  if (options.size < 64)
    throw Error(ErrorKind::kInvalidArgument,
                "phantom size too small (got " + std::to_string(options.size) + ", expected >= 64)");
  const auto& classes = phantom_classes();
  const int n_classes = static_cast<int>(classes.size());
  const fs::path root(dir);
  for (const auto& name : classes) {
    for (const char* kind : {"images", "masks"}) {
      std::error_code ec;
      fs::create_directories(root / kind / name, ec);
      if (ec || !fs::is_directory(root / kind / name, ec))
        throw file_error(ErrorKind::kIOError, "cannot write phantoms", dir,
                         ec ? ec.message() : "cannot create " + (root / kind / name).string());
    }
  }
  int done = 0;
  for (int label = 0; label < n_classes; ++label) {
    const int n = options.count / n_classes + (label < options.count % n_classes ? 1 : 0);
    for (int index = 0; index < n; ++index) {
      const Phantom p = make_phantom(label, image_seed(options.seed, label, index), options.size);
      char name[64];
      std::snprintf(name, sizeof(name), "%s_%04d.png", classes[label].c_str(), index);
      write_png(root / "images" / classes[label] / name, p.image);
      write_png(root / "masks" / classes[label] / name, p.mask);
      ++done;
      if (progress) progress(done, options.count);
    }
  }
  return done;
}

}  // namespace medattn::phantom
