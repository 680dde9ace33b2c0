// The phantom generator's blur and value-noise planes (phantom/raster.h).
#include "phantom/raster.h"

// Keep a*b+c as two roundings everywhere (GCC does so in ISO mode; clang would fuse).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

namespace medattn::phantom {

double blur(Plane& img, double sigma) {
  if (sigma <= 0.05) return 1.0;
  const int radius = std::max(1, static_cast<int>(3.0 * sigma + 0.5));
  std::vector<float> k(2 * radius + 1);
  double sum = 0.0;
  for (int i = -radius; i <= radius; ++i) {
    const double w = det_exp(-(i * i) / (2.0 * sigma * sigma));
    k[i + radius] = static_cast<float>(w);
    sum += w;
  }
  double sumsq = 0.0;
  for (auto& w : k) {
    w = static_cast<float>(w / sum);
    sumsq += static_cast<double>(w) * w;
  }
  const int rows = img.rows, cols = img.cols;
  Plane tmp(rows, cols);
  std::vector<float> line(std::max(rows, cols) + 2 * radius);
  for (int y = 0; y < rows; ++y) {
    const float* src = img[y];
    for (int i = 0; i < cols + 2 * radius; ++i) line[i] = src[std::clamp(i - radius, 0, cols - 1)];
    float* dst = tmp[y];
    for (int x = 0; x < cols; ++x) {
      float acc = 0.0f;
      for (int j = 0; j <= 2 * radius; ++j) acc += k[j] * line[x + j];
      dst[x] = acc;
    }
  }
  std::vector<float> acc(cols);
  for (int y = 0; y < rows; ++y) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int j = 0; j <= 2 * radius; ++j) {
      const float* src = tmp[std::clamp(y + j - radius, 0, rows - 1)];
      const float w = k[j];
      for (int x = 0; x < cols; ++x) acc[x] += w * src[x];
    }
    std::copy(acc.begin(), acc.end(), img[y]);
  }
  return sumsq;
}

Plane noise_plane(Rng& rng, int size, int cells) {
  ValueNoise noise(rng, cells);
  Plane out(size, size);
  const double inv = 1.0 / size;
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) out(y, x) = static_cast<float>(noise.at((x + 0.5) * inv, (y + 0.5) * inv));
  }
  return out;
}

}  // namespace medattn::phantom
