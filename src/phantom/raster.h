// Deterministic raster helpers of the phantom generator (phantom/phantom.h): no libm
// transcendental functions and no OpenCV float filters, whose results can differ between
// CPUs and library builds; every per-pixel step uses only +, -, *, / and sqrt.
#pragma once

#include <opencv2/core.hpp>

#include <algorithm>
#include <vector>

#include "phantom/rng.h"

namespace medattn::phantom {

inline double clamp01(double v) { return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v); }

inline double smoothstep(double e0, double e1, double x) {
  const double t = clamp01((x - e0) / (e1 - e0));
  return t * t * (3.0 - 2.0 * t);
}

// exp(x) by range reduction and squaring; relative error ~1e-9 for |x| < 30.
inline double det_exp(double x) {
  const double y = x / 1024.0;
  double e = 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * (1.0 / 24.0))));
  for (int i = 0; i < 10; ++i) e *= e;
  return e;
}

// A rotation by roughly `angle` radians (exact rotation matrix by the half-angle tangent).
struct Rotation {
  double c = 1.0, s = 0.0;
  explicit Rotation(double angle) {
    const double t = angle / 2.0;
    c = (1.0 - t * t) / (1.0 + t * t);
    s = 2.0 * t / (1.0 + t * t);
  }
};

using Plane = cv::Mat_<float>;

// Separable Gaussian blur with replicated borders. Returns the sum of the squared 1-D kernel
// weights (so blurred unit white noise has standard deviation about that value).
double blur(Plane& img, double sigma);

// Smooth value noise in [-1, 1] on a grid of `cells` x `cells` over the unit square.
class ValueNoise {
 public:
  ValueNoise(Rng& rng, int cells) : cells_(cells), values_((cells + 1) * (cells + 1)) {
    for (auto& v : values_) v = rng.uniform(-1.0, 1.0);
  }
  double at(double u, double v) const {
    const double gx = clamp01(u) * cells_, gy = clamp01(v) * cells_;
    const int ix = std::min(static_cast<int>(gx), cells_ - 1);
    const int iy = std::min(static_cast<int>(gy), cells_ - 1);
    double fx = gx - ix, fy = gy - iy;
    fx = fx * fx * (3.0 - 2.0 * fx);
    fy = fy * fy * (3.0 - 2.0 * fy);
    const int w = cells_ + 1;
    const double a = values_[iy * w + ix], b = values_[iy * w + ix + 1];
    const double c = values_[(iy + 1) * w + ix], d = values_[(iy + 1) * w + ix + 1];
    return (a + (b - a) * fx) * (1.0 - fy) + (c + (d - c) * fx) * fy;
  }

 private:
  int cells_;
  std::vector<double> values_;
};

// Fills a plane with value noise sampled at every pixel.
Plane noise_plane(Rng& rng, int size, int cells);

}  // namespace medattn::phantom
