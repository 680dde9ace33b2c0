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
#include "phantom/phantom.h"

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "core/error.h"
#include "core/fs.h"

// Keep a*b+c as two roundings everywhere (GCC does so in ISO mode; clang would fuse).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

namespace medattn::phantom {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------
// Random numbers.

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t s = a ^ (b * 0xD1B54A32D192ED03ULL);
  splitmix64(s);
  return splitmix64(s);
}

// xoshiro256** (Blackman & Vigna), seeded through splitmix64.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) s = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool chance(double p) { return uniform() < p; }
  // Standard normal, Irwin-Hall (sum of 12 uniforms): pure arithmetic, bounded at +-6.
  double normal() {
    double sum = 0.0;
    for (int i = 0; i < 12; ++i) sum += uniform();
    return sum - 6.0;
  }
  // Approximately standard normal from one draw (sum of four 16-bit uniforms), for pixels.
  float fast_normal() {
    const uint64_t r = next();
    const uint32_t sum = static_cast<uint32_t>(r & 0xFFFF) + static_cast<uint32_t>((r >> 16) & 0xFFFF) +
                         static_cast<uint32_t>((r >> 32) & 0xFFFF) + static_cast<uint32_t>(r >> 48);
    // Each term has mean 32767.5 and variance 65536^2/12; the sum has sd 65536/sqrt(3).
    return (static_cast<float>(sum) - 131070.0f) * (1.7320508f / 65536.0f);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// ---------------------------------------------------------------------------------------
// Arithmetic helpers (deterministic: no libm transcendental functions).

double clamp01(double v) { return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v); }

double smoothstep(double e0, double e1, double x) {
  const double t = clamp01((x - e0) / (e1 - e0));
  return t * t * (3.0 - 2.0 * t);
}

// exp(x) by range reduction and squaring; relative error ~1e-9 for |x| < 30.
double det_exp(double x) {
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
Plane noise_plane(Rng& rng, int size, int cells) {
  ValueNoise noise(rng, cells);
  Plane out(size, size);
  const double inv = 1.0 / size;
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) out(y, x) = static_cast<float>(noise.at((x + 0.5) * inv, (y + 0.5) * inv));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Anatomy.

struct Lung {
  int side = 1;                        // -1: image left (patient right), +1: image right (patient left)
  double cx = 0, cy = 0;               // centre
  double a_lat = 0, a_med = 0, b = 0;  // lateral/medial half widths, half height
  double apex_taper = 0.55;            // relative half width at the apex
  Rotation rot{0.0};
  double dome_x = 0, dome_y = 0, dome_k = 0;  // diaphragm: y = dome_y + dome_k (x - dome_x)^2
};

struct Anatomy {
  double bg = 0.05;
  double body_cx = 0.5, body_a = 0.45, neck_w = 0.1, shoulder_y = 0.12, body_level = 0.55;
  double abdomen_extra = 0.1;
  Lung lungs[2];
  double lung_depth = 0.3;
  double lung_grad = 0.0;  // apex-to-base change of lung darkness
  double heart_cx = 0, heart_cy = 0, heart_a = 0, heart_b = 0, heart_extra = 0;
  Rotation heart_rot{0.0};
  double heart_opacity = 0.8;
  double med_w = 0.06, med_extra = 0.06, knob_x = 0, knob_y = 0, knob_r = 0.03;
  double trachea_x = 0.5, trachea_w = 0.014, trachea_end = 0.32, trachea_depth = 0.06;
  double spine_w = 0.035, spine_extra = 0.04;
  bool gastric_bubble = false;
  double bubble_x = 0, bubble_y = 0, bubble_a = 0, bubble_b = 0;
  double lowfreq_amp = 0.08, heel_x = 0.0, heel_y = 0.0;
  double rib_amp = 0.1, clavicle_amp = 0.12, texture_amp = 0.15, vessel_amp = 0.04;
  double gamma_bias = 0.5, contrast = 1.0, brightness = 0.0;
  double blur_sigma = 0.8, noise_sigma = 0.02;
};

Anatomy sample_anatomy(Rng& rng) {
  Anatomy a;
  a.bg = rng.uniform(0.02, 0.09);
  a.body_cx = 0.5 + 0.015 * rng.normal();
  a.body_a = rng.uniform(0.41, 0.50);
  a.neck_w = rng.uniform(0.075, 0.10);
  a.shoulder_y = rng.uniform(0.0, 0.08);
  a.body_level = rng.uniform(0.40, 0.52);
  const double lung_y = rng.uniform(0.43, 0.49);
  const double lung_scale = rng.uniform(0.90, 1.08);
  for (int i = 0; i < 2; ++i) {
    Lung& l = a.lungs[i];
    l.side = i == 0 ? -1 : 1;
    const double asym = rng.uniform(0.92, 1.08);
    // The patient's left lung (image right) is narrower (heart) and a little longer.
    // Lateral border a little inside the chest wall, medial border behind the mediastinum.
    const double lateral = a.body_a - rng.uniform(0.025, 0.08) - (l.side > 0 ? 0.01 : 0.0);
    const double medial = rng.uniform(0.03, 0.06);
    l.cx = a.body_cx + l.side * (lateral + medial) / 2.0;
    l.cy = lung_y + rng.uniform(-0.015, 0.015) + (l.side > 0 ? 0.01 : -0.005);
    l.a_lat = (lateral - medial) / 2.0;
    l.a_med = l.a_lat * rng.uniform(0.9, 1.0);
    l.b = lung_scale * asym * rng.uniform(0.28, 0.33);
    l.apex_taper = rng.uniform(0.60, 0.80);
    l.rot = Rotation(l.side * rng.uniform(-0.05, 0.12));
    l.dome_x = l.cx - l.side * rng.uniform(0.0, 0.04);
    l.dome_y = l.cy + l.b * rng.uniform(0.55, 0.75) + (l.side < 0 ? -0.015 : 0.0);
    const double drop = rng.uniform(0.05, 0.10);
    l.dome_k = drop / ((l.a_lat + 0.02) * (l.a_lat + 0.02));
  }
  a.lung_depth = rng.uniform(0.17, 0.27);
  a.lung_grad = rng.uniform(-0.15, 0.2);
  a.heart_cx = a.body_cx + rng.uniform(0.025, 0.07);
  a.heart_a = rng.uniform(0.145, 0.195);
  a.heart_b = rng.uniform(0.105, 0.145);
  {
    // The heart sits on the left hemidiaphragm.
    const Lung& l = a.lungs[1];
    const double hx = a.heart_cx + 0.3 * a.heart_a;
    a.heart_cy = l.dome_y + l.dome_k * (hx - l.dome_x) * (hx - l.dome_x) - a.heart_b * rng.uniform(0.45, 0.8);
  }
  a.heart_rot = Rotation(rng.uniform(0.25, 0.55));
  a.heart_opacity = rng.uniform(0.75, 0.95);
  a.heart_extra = rng.uniform(0.0, 0.04);
  a.med_w = rng.uniform(0.055, 0.075);
  a.med_extra = rng.uniform(0.10, 0.18);
  a.abdomen_extra = a.med_extra * rng.uniform(0.85, 1.0);
  a.knob_x = a.body_cx + rng.uniform(0.04, 0.07);
  a.knob_y = rng.uniform(0.27, 0.33);
  a.knob_r = rng.uniform(0.025, 0.04);
  a.trachea_x = a.body_cx + 0.006 * rng.normal();
  a.trachea_w = rng.uniform(0.011, 0.017);
  a.trachea_end = rng.uniform(0.28, 0.35);
  a.trachea_depth = rng.uniform(0.04, 0.09);
  a.spine_w = rng.uniform(0.03, 0.04);
  a.spine_extra = rng.uniform(0.015, 0.04);
  a.gastric_bubble = rng.chance(0.5);
  {
    const Lung& l = a.lungs[1];
    a.bubble_x = l.cx + rng.uniform(-0.03, 0.05);
    a.bubble_y = l.dome_y + rng.uniform(0.04, 0.07);
    a.bubble_a = rng.uniform(0.025, 0.05);
    a.bubble_b = rng.uniform(0.018, 0.03);
  }
  a.lowfreq_amp = rng.uniform(0.03, 0.12);
  a.heel_x = rng.uniform(-0.06, 0.06);
  a.heel_y = rng.uniform(-0.06, 0.06);
  a.rib_amp = rng.uniform(0.08, 0.14);
  a.clavicle_amp = rng.uniform(0.08, 0.15);
  a.texture_amp = rng.uniform(0.06, 0.14);
  a.vessel_amp = rng.uniform(0.03, 0.07);
  a.gamma_bias = rng.uniform(0.40, 0.60);
  a.contrast = rng.uniform(0.80, 1.25);
  a.brightness = rng.uniform(-0.07, 0.07);
  a.blur_sigma = rng.uniform(0.5, 1.1);
  a.noise_sigma = rng.uniform(0.008, 0.03);
  return a;
}

// Soft lung-field weight of one lung (1 inside, 0 outside), before heart/mediastinum.
double lung_weight(const Lung& l, double x, double y) {
  const double dx = x - l.cx, dy = y - l.cy;
  const double xl = l.rot.c * dx + l.rot.s * dy;
  const double yl = -l.rot.s * dx + l.rot.c * dy;
  const double xo = l.side * xl;  // > 0 laterally
  const double q = yl / l.b;
  if (q < -1.2 || q > 1.2) return 0.0;
  const double taper = l.apex_taper + (1.0 - l.apex_taper) * smoothstep(-1.05, 0.25, q);
  const double p = xo / ((xo > 0 ? l.a_lat : l.a_med) * taper);
  const double qq = q < 0 ? q * q : q * q * q * q;
  const double f = 1.0 - p * p - qq;
  if (f <= 0.0) return 0.0;
  const double yd = l.dome_y + l.dome_k * (x - l.dome_x) * (x - l.dome_x);
  return smoothstep(0.0, 0.14, f) * smoothstep(0.0, 0.012, yd - y);
}

double ellipse_weight(double dx, double dy, const Rotation& rot, double a, double b, double edge) {
  const double xl = rot.c * dx + rot.s * dy;
  const double yl = -rot.s * dx + rot.c * dy;
  const double r2 = (xl * xl) / (a * a) + (yl * yl) / (b * b);
  return smoothstep(0.0, edge, 1.0 - r2);
}

// Half width of the body at height y: the neck, rounded shoulders, then the chest wall.
double body_half_width(const Anatomy& a, double y) {
  const double t = clamp01((y - a.shoulder_y) / 0.16);
  const double shoulder = std::sqrt(1.0 - (1.0 - t) * (1.0 - t));
  const double w = a.neck_w + (a.body_a - a.neck_w) * shoulder;
  return w * (1.0 - 0.04 * smoothstep(0.8, 1.0, y));
}

// Per-pixel anatomical layers, shared by the image and the lesion placement.
struct Layers {
  Plane body;      // body weight
  Plane lung[2];   // lung field weight of each lung, with heart and mediastinum removed
  Plane lung_air;  // how much lung darkening a pixel gets (sum over lungs, heart partly removed)
  Plane density;   // the composed density map
};

// Adds a bright band of half thickness `half` (normalised) around the curve y = curve(x)
// for x in [x0, x1], with `fade(x)` in [0,1] scaling it along its length.
template <typename Curve, typename Fade>
void add_band(Plane& out, int size, double x0, double x1, double half, double amp, bool cortex, Curve curve,
              Fade fade) {
  const int px0 = std::max(0, static_cast<int>(x0 * size));
  const int px1 = std::min(size - 1, static_cast<int>(x1 * size) + 1);
  const double inv = 1.0 / size;
  for (int px = px0; px <= px1; ++px) {
    const double x = (px + 0.5) * inv;
    const double f = fade(x);
    if (f <= 0.0) continue;
    const double yc = curve(x);
    const int py0 = std::max(0, static_cast<int>((yc - half * 1.3) * size) - 1);
    const int py1 = std::min(size - 1, static_cast<int>((yc + half * 1.3) * size) + 1);
    for (int py = py0; py <= py1; ++py) {
      const double y = (py + 0.5) * inv;
      const double u = std::abs(y - yc) / half;
      if (u >= 1.2) continue;
      double v = 1.0 - smoothstep(0.65, 1.05, u);
      if (cortex) v *= 0.75 + 0.45 * (1.0 - smoothstep(0.0, 0.3, std::abs(u - 0.78)));
      out(py, px) += static_cast<float>(amp * f * v);
    }
  }
}

Layers compose_anatomy(const Anatomy& a, Rng& tex_rng, int size) {
  Layers L;
  L.body = Plane(size, size);
  L.lung[0] = Plane(size, size);
  L.lung[1] = Plane(size, size);
  L.lung_air = Plane(size, size);
  L.density = Plane(size, size);
  const double inv = 1.0 / size;

  // Fine lung texture: blurred white noise plus medium-scale value noise.
  Plane fine(size, size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) fine(y, x) = tex_rng.fast_normal();
  const double fine_sd = blur(fine, 1.6 * size / 256.0);
  fine *= static_cast<float>(1.0 / fine_sd);  // back to unit standard deviation
  const Plane medium = noise_plane(tex_rng, size, 9);
  const Plane lowfreq = noise_plane(tex_rng, size, 3);

  for (int py = 0; py < size; ++py) {
    const double y = (py + 0.5) * inv;
    const double bw_half = body_half_width(a, y);
    for (int pxi = 0; pxi < size; ++pxi) {
      const double x = (pxi + 0.5) * inv;
      const double dxb = std::abs(x - a.body_cx);
      const double body = smoothstep(0.0, 0.025, bw_half - dxb);
      const double dn = std::min(1.0, dxb / bw_half);
      double d = a.bg + body * (a.body_level * (0.80 + 0.20 * (1.0 - dn * dn * dn * dn)) - a.bg);
      double abdomen = 0.0;
      {
        // Top of the abdomen: each dome laterally, the higher of the two between the peaks.
        const Lung& l0 = a.lungs[0];
        const Lung& l1 = a.lungs[1];
        double yd = 0.0;
        if (x <= l0.dome_x) {
          yd = l0.dome_y + l0.dome_k * (x - l0.dome_x) * (x - l0.dome_x);
        } else if (x >= l1.dome_x) {
          yd = l1.dome_y + l1.dome_k * (x - l1.dome_x) * (x - l1.dome_x);
        } else {
          const double y0 = l0.dome_y + l0.dome_k * (x - l0.dome_x) * (x - l0.dome_x);
          const double y1 = l1.dome_y + l1.dome_k * (x - l1.dome_x) * (x - l1.dome_x);
          yd = std::min(std::min(y0, y1), std::max(l0.dome_y, l1.dome_y) + 0.02);
        }
        abdomen = smoothstep(yd - 0.01, yd + 0.05, y);
      }

      // Mediastinum: a vertical band, the aortic knob, and the heart.
      const double mw = a.med_w * (1.0 + 0.25 * smoothstep(0.2, 0.55, y));
      double med = smoothstep(0.0, 0.02, mw - std::abs(x - a.body_cx)) *
                   smoothstep(a.shoulder_y + 0.04, a.shoulder_y + 0.14, y) *
                   (1.0 - smoothstep(a.heart_cy, a.heart_cy + a.heart_b, y));
      {
        const double kx = x - a.knob_x, ky = y - a.knob_y;
        const double r2 = (kx * kx + ky * ky) / (a.knob_r * a.knob_r);
        med = std::max(med, smoothstep(0.0, 0.3, 1.0 - r2));
      }
      const double heart =
          ellipse_weight(x - a.heart_cx, y - a.heart_cy, a.heart_rot, a.heart_a, a.heart_b, 0.18);

      double air = 0.0;
      for (int i = 0; i < 2; ++i) {
        const double lw = lung_weight(a.lungs[i], x, y);
        const double field = lw * (1.0 - heart) * (1.0 - med);
        L.lung[i](py, pxi) = static_cast<float>(field);
        air += lw * (1.0 - a.heart_opacity * heart) * (1.0 - med);
      }
      air = std::min(air, 1.0) * body;
      L.lung_air(py, pxi) = static_cast<float>(air);
      L.body(py, pxi) = static_cast<float>(body);

      // Lung darkening, modulated by height, hilar density and texture.
      const double hil_dx = std::abs(x - a.body_cx) - 0.09, hil_dy = y - 0.43;
      const double hilum = 1.0 - smoothstep(0.0, 0.16, std::sqrt(hil_dx * hil_dx + hil_dy * hil_dy));
      const double grad = 1.0 + a.lung_grad * (y - 0.45) / 0.3;
      const double tex = a.texture_amp * (0.6 * fine(py, pxi) + 0.4 * medium(py, pxi));
      d -= air * a.lung_depth * grad * (1.0 - 0.30 * hilum) * (1.0 + tex);

      const double heart_above = heart * (1.0 - abdomen);  // merges into the abdomen below
      d += body * std::max(std::max(med, heart_above) * a.med_extra + heart_above * a.heart_extra,
                           abdomen * a.abdomen_extra);
      // Trachea: an air column in the neck and upper mediastinum.
      const double tr = smoothstep(0.0, 0.006, a.trachea_w - std::abs(x - a.trachea_x)) *
                        (1.0 - smoothstep(a.trachea_end - 0.03, a.trachea_end, y));
      d -= tr * a.trachea_depth * body;
      // Spine, with faint vertebral end plates.
      const double spine = smoothstep(0.0, 0.012, a.spine_w - std::abs(x - a.body_cx));
      if (spine > 0.0) {
        double ph = y / 0.055;
        ph -= static_cast<int>(ph);
        const double plate = 1.0 - smoothstep(0.0, 0.18, std::abs(ph - 0.5));
        d += body * spine * a.spine_extra * (0.8 + 0.5 * plate);
      }
      if (a.gastric_bubble) {
        const double gx = (x - a.bubble_x) / a.bubble_a, gy = (y - a.bubble_y) / a.bubble_b;
        d -= body * 0.6 * a.lung_depth * smoothstep(0.0, 0.4, 1.0 - gx * gx - gy * gy);
      }
      L.density(py, pxi) = static_cast<float>(d);
    }
  }

  // Ribs: posterior ribs arc laterally and downwards from the spine; anterior ribs, fainter,
  // run medially and downwards from the body wall. Visible over the lungs, faint elsewhere.
  Plane bones(size, size, 0.0f);
  {
    Rng& r = tex_rng;
    const double top = a.shoulder_y + r.uniform(0.06, 0.10);
    const double bottom = std::max(a.lungs[0].dome_y, a.lungs[1].dome_y) + r.uniform(0.0, 0.05);
    const double spacing = (bottom - top) / (10.0 * 1.16);
    for (int side = -1; side <= 1; side += 2) {
      const double tilt = r.uniform(-0.02, 0.02);
      double y0 = top + r.uniform(-0.01, 0.01);
      for (int k = 0; k < 10; ++k) {
        const double curv = r.uniform(0.55, 1.05);
        const double slope = r.uniform(-0.15, 0.05);
        const double half = r.uniform(0.010, 0.014) * (1.0 + 0.03 * k);
        const double reach = body_half_width(a, y0 + 0.05) * r.uniform(0.9, 1.0);
        const double amp = a.rib_amp * r.uniform(0.75, 1.15);
        const double yy = y0, sw = a.spine_w;
        auto curve = [&, yy, side, curv, slope, tilt](double x) {
          const double dd = side * (x - a.body_cx);
          return yy + slope * dd + curv * dd * dd + tilt * dd;
        };
        auto fade = [&, side, reach, sw](double x) {
          const double dd = side * (x - a.body_cx);
          return smoothstep(sw * 0.6, sw * 1.4, dd) * (1.0 - smoothstep(reach - 0.05, reach, dd));
        };
        add_band(bones, size, side < 0 ? a.body_cx - 0.5 : a.body_cx, side < 0 ? a.body_cx : a.body_cx + 0.5,
                 half, amp, true, curve, fade);
        // The anterior end of the same rib, lower and sloping medially, fainter.
        const double ay = y0 + r.uniform(0.04, 0.07);
        const double aslope = r.uniform(0.30, 0.50);
        const double ahalf = half * r.uniform(0.8, 1.1);
        auto acurve = [&, ay, side, aslope, reach](double x) {
          const double dd = side * (x - a.body_cx);
          return ay + aslope * (reach - dd);
        };
        auto afade = [&, side, reach](double x) {
          const double dd = side * (x - a.body_cx);
          return smoothstep(0.06, 0.14, dd) * (1.0 - smoothstep(reach - 0.06, reach - 0.01, dd));
        };
        add_band(bones, size, side < 0 ? a.body_cx - 0.5 : a.body_cx, side < 0 ? a.body_cx : a.body_cx + 0.5,
                 ahalf, amp * r.uniform(0.3, 0.5), false, acurve, afade);
        y0 += spacing * (1.0 + 0.035 * k) * r.uniform(0.88, 1.12);
      }
    }
    // Clavicles: from the sternal end outwards and slightly up, a gentle S.
    const double cy = a.shoulder_y + r.uniform(0.10, 0.15);
    for (int side = -1; side <= 1; side += 2) {
      const double c0 = cy + r.uniform(-0.012, 0.012);
      const double rise = r.uniform(0.02, 0.07);
      const double wave = r.uniform(0.005, 0.02);
      const double half = r.uniform(0.013, 0.019);
      const double len = r.uniform(0.26, 0.34);
      auto curve = [&, side, c0, rise, wave, len](double x) {
        const double dd = side * (x - a.body_cx);
        const double t = (dd - 0.04) / len;
        return c0 - rise * t + wave * (t * (1.0 - t)) * 4.0 * (t - 0.5);
      };
      auto fade = [&, side, len](double x) {
        const double dd = side * (x - a.body_cx);
        return smoothstep(0.03, 0.06, dd) * (1.0 - smoothstep(len - 0.01, len + 0.04, dd));
      };
      add_band(bones, size, side < 0 ? a.body_cx - 0.5 : a.body_cx, side < 0 ? a.body_cx : a.body_cx + 0.5,
               half, a.clavicle_amp, true, curve, fade);
    }
  }

  // Vessels: faint branching lines fanning out from each hilum, fading towards the periphery.
  Plane vessels(size, size, 0.0f);
  {
    Rng& r = tex_rng;
    for (int side = -1; side <= 1; side += 2) {
      const int n = 7 + static_cast<int>(r.uniform() * 4);
      for (int v = 0; v < n; ++v) {
        // Direction fans from up-and-out to down-and-out.
        double dirx = side * r.uniform(0.3, 1.0), diry = r.uniform(-0.9, 0.9);
        double len = std::sqrt(dirx * dirx + diry * diry);
        dirx /= len;
        diry /= len;
        double x = a.body_cx + side * r.uniform(0.07, 0.1), y = r.uniform(0.38, 0.5);
        double thick = r.uniform(0.005, 0.009);
        const int steps = static_cast<int>(r.uniform(0.14, 0.26) / 0.004);
        for (int s = 0; s < steps; ++s) {
          dirx += 0.25 * r.uniform(-1.0, 1.0) * 0.3;
          diry += 0.25 * r.uniform(-1.0, 1.0) * 0.3;
          len = std::sqrt(dirx * dirx + diry * diry);
          dirx /= len;
          diry /= len;
          x += dirx * 0.004;
          y += diry * 0.004;
          thick *= 0.985;
          const double t = static_cast<double>(s) / steps;
          const double amp = a.vessel_amp * (1.0 - t);
          const int cx = static_cast<int>(x * size), cy = static_cast<int>(y * size);
          const int rad = static_cast<int>(thick * size) + 2;
          for (int yy = std::max(0, cy - rad); yy <= std::min(size - 1, cy + rad); ++yy) {
            for (int xx = std::max(0, cx - rad); xx <= std::min(size - 1, cx + rad); ++xx) {
              const double ddx = (xx + 0.5) * inv - x, ddy = (yy + 0.5) * inv - y;
              const double dist = std::sqrt(ddx * ddx + ddy * ddy);
              const double w = 1.0 - smoothstep(thick * 0.4, thick, dist);
              float& o = vessels(yy, xx);
              o = std::max(o, static_cast<float>(amp * w));
            }
          }
        }
      }
    }
  }

  for (int py = 0; py < size; ++py) {
    const double y = (py + 0.5) * inv;
    for (int pxi = 0; pxi < size; ++pxi) {
      const double x = (pxi + 0.5) * inv;
      const double body = L.body(py, pxi), air = L.lung_air(py, pxi);
      double d = L.density(py, pxi);
      d += body * bones(py, pxi) * (0.15 + 0.85 * std::min(1.0, air * 1.3));
      d += vessels(py, pxi) * air;
      d *= 1.0 + a.lowfreq_amp * lowfreq(py, pxi);
      d += body * (a.heel_x * (x - 0.5) + a.heel_y * (y - 0.5));
      L.density(py, pxi) = static_cast<float>(d);
    }
  }
  return L;
}

// ---------------------------------------------------------------------------------------
// Lesions. Each returns an opacity field in [0,1] (already confined to a lung field); the
// lesion adds amp * opacity (times a texture for consolidations) to the density.

// Picks a point well inside lung `i` such that a disc of radius `r` stays mostly inside.
bool pick_inside(const Layers& L, int i, double r, Rng& rng, int size, double& ox, double& oy) {
  const Plane& f = L.lung[i];
  for (int attempt = 0; attempt < 400; ++attempt) {
    const double x = rng.uniform(0.05, 0.95), y = rng.uniform(0.1, 0.9);
    auto at = [&](double u, double v) {
      const int px = std::clamp(static_cast<int>(u * size), 0, size - 1);
      const int py = std::clamp(static_cast<int>(v * size), 0, size - 1);
      return f(py, px);
    };
    if (at(x, y) < 0.95f) continue;
    bool ok = true;
    static const double kDirs[8][2] = {{1, 0},
                                       {-1, 0},
                                       {0, 1},
                                       {0, -1},
                                       {0.7071, 0.7071},
                                       {-0.7071, 0.7071},
                                       {0.7071, -0.7071},
                                       {-0.7071, -0.7071}};
    for (const auto& d : kDirs) {
      if (at(x + d[0] * r, y + d[1] * r) < 0.6f) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    ox = x;
    oy = y;
    return true;
  }
  return false;
}

// Fallback centre: the pixel of lung `i` farthest inside (largest field, then closest to the
// lung's centroid).
void lung_centroid(const Layers& L, int i, int size, double& ox, double& oy) {
  double sx = 0, sy = 0, sw = 0;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      const double w = L.lung[i](y, x) > 0.95f ? 1.0 : 0.0;
      sx += w * x;
      sy += w * y;
      sw += w;
    }
  if (sw == 0) {
    ox = 0.5;
    oy = 0.5;
    return;
  }
  ox = (sx / sw + 0.5) / size;
  oy = (sy / sw + 0.5) / size;
}

struct Lesion {
  Plane opacity;  // in [0,1], confined to the lung fields
  Plane gain;     // per-pixel multiplier of the amplitude (texture, bronchograms)
  double amp = 0.0;
};

void add_nodule(const Layers& L, Rng& rng, int size, double r, double cx, double cy, int lung,
                Plane& opacity) {
  // Slightly lobulated outline: r(theta) = r (1 + a1 cos + b1 sin + a2 cos2 + b2 sin2).
  const double a1 = rng.uniform(-0.06, 0.06), b1 = rng.uniform(-0.06, 0.06);
  const double a2 = rng.uniform(-0.08, 0.08), b2 = rng.uniform(-0.08, 0.08);
  const double edge_in = rng.uniform(0.6, 0.8);
  const int x0 = std::max(0, static_cast<int>((cx - 1.4 * r) * size));
  const int x1 = std::min(size - 1, static_cast<int>((cx + 1.4 * r) * size) + 1);
  const int y0 = std::max(0, static_cast<int>((cy - 1.4 * r) * size));
  const int y1 = std::min(size - 1, static_cast<int>((cy + 1.4 * r) * size) + 1);
  for (int py = y0; py <= y1; ++py) {
    for (int px = x0; px <= x1; ++px) {
      const double dx = (px + 0.5) / size - cx, dy = (py + 0.5) / size - cy;
      const double dist = std::sqrt(dx * dx + dy * dy);
      double ct = 1.0, st = 0.0;
      if (dist > 1e-12) {
        ct = dx / dist;
        st = dy / dist;
      }
      const double rr = r * (1.0 + a1 * ct + b1 * st + a2 * (ct * ct - st * st) + b2 * 2.0 * ct * st);
      const double rho = dist / rr;
      if (rho >= 1.2) continue;
      const double sphere = 1.0 - std::min(1.0, rho * rho);
      const double v = (1.0 - smoothstep(edge_in, 1.15, rho)) * (0.8 + 0.2 * sphere);
      const double o = v * L.lung[lung](py, px);
      float& out = opacity(py, px);
      out = std::max(out, static_cast<float>(o));
    }
  }
}

Lesion make_nodules(const Layers& L, Rng& rng, int size, double lung_depth) {
  Lesion les;
  les.opacity = Plane(size, size, 0.0f);
  les.gain = Plane(size, size, 1.0f);
  les.amp = lung_depth * rng.uniform(0.9, 1.3);
  const int lung = rng.chance(0.5) ? 0 : 1;
  const double r = rng.uniform(0.045, 0.085);
  double cx = 0, cy = 0;
  if (!pick_inside(L, lung, r, rng, size, cx, cy)) lung_centroid(L, lung, size, cx, cy);
  add_nodule(L, rng, size, r, cx, cy, lung, les.opacity);
  if (rng.chance(0.2)) {
    const int lung2 = rng.chance(0.5) ? 0 : 1;
    const double r2 = rng.uniform(0.04, 0.06);
    double x2 = 0, y2 = 0;
    for (int attempt = 0; attempt < 10; ++attempt) {
      if (!pick_inside(L, lung2, r2, rng, size, x2, y2)) break;
      const double ddx = x2 - cx, ddy = y2 - cy;
      if (std::sqrt(ddx * ddx + ddy * ddy) > (r + r2) * 1.5) {
        add_nodule(L, rng, size, r2, x2, y2, lung2, les.opacity);
        break;
      }
    }
  }
  return les;
}

Lesion make_consolidation(const Layers& L, Rng& rng, int size, double lung_depth) {
  Lesion les;
  les.opacity = Plane(size, size, 0.0f);
  les.gain = Plane(size, size, 1.0f);
  les.amp = lung_depth * rng.uniform(0.8, 1.2);
  const int lung = rng.chance(0.5) ? 0 : 1;
  const Plane& field = L.lung[lung];
  int lung_pixels = 0;
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) lung_pixels += field(y, x) >= 0.5f;
  const double frac = rng.uniform(0.12, 0.25);
  const double area = frac * lung_pixels / (static_cast<double>(size) * size);  // normalised
  const double radius = std::sqrt(area / 3.14159265358979) * 1.25;
  double cx = 0, cy = 0;
  if (!pick_inside(L, lung, radius * 0.6, rng, size, cx, cy)) lung_centroid(L, lung, size, cx, cy);
  const double stretch_x = rng.uniform(0.75, 1.3), stretch_y = 1.0 / stretch_x;
  ValueNoise n1(rng, 11), n2(rng, 23);
  const double noise_amp = rng.uniform(0.5, 0.9);
  // Score: a broad envelope around the centre plus noise; the lesion is the top `frac` of
  // the lung's pixels by score, with a soft threshold for fuzzy edges.
  Plane score(size, size, -10.0f);
  std::vector<float> values;
  values.reserve(lung_pixels);
  for (int py = 0; py < size; ++py) {
    for (int px = 0; px < size; ++px) {
      if (field(py, px) < 0.05f) continue;
      const double u = (px + 0.5) / size, v = (py + 0.5) / size;
      const double dx = (u - cx) / (radius * stretch_x), dy = (v - cy) / (radius * stretch_y);
      const double env = 1.0 - 0.5 * (dx * dx + dy * dy);
      const double s = env + noise_amp * (0.7 * n1.at(u, v) + 0.3 * n2.at(u, v));
      score(py, px) = static_cast<float>(s);
      if (field(py, px) >= 0.5f) values.push_back(static_cast<float>(s));
    }
  }
  const size_t target = std::max<size_t>(1, static_cast<size_t>(frac * lung_pixels));
  if (values.empty()) return les;
  const size_t k = std::min(values.size() - 1, target);
  std::nth_element(values.begin(), values.begin() + k, values.end(), std::greater<float>());
  const double threshold = values[k];
  const double soft = rng.uniform(0.08, 0.22);
  ValueNoise patch(rng, 24);
  const double patch_amp = rng.uniform(0.1, 0.3);
  for (int py = 0; py < size; ++py) {
    for (int px = 0; px < size; ++px) {
      const double s = score(py, px);
      if (s < threshold - soft) continue;
      const double o = smoothstep(threshold - soft, threshold + soft, s) * field(py, px);
      les.opacity(py, px) = static_cast<float>(o);
      const double u = (px + 0.5) / size, v = (py + 0.5) / size;
      les.gain(py, px) = static_cast<float>(1.0 - patch_amp * 0.5 * (1.0 + patch.at(u, v)));
    }
  }
  // Air bronchograms: a few darker branching streaks inside the opacity.
  if (rng.chance(0.5)) {
    const int streaks = 2 + static_cast<int>(rng.uniform() * 3);
    const double hx = 0.5 + (lung == 0 ? -0.08 : 0.08), hy = 0.45;
    for (int s = 0; s < streaks; ++s) {
      double dirx = cx - hx, diry = cy - hy;
      double len = std::sqrt(dirx * dirx + diry * diry) + 1e-9;
      dirx = dirx / len + rng.uniform(-0.5, 0.5);
      diry = diry / len + rng.uniform(-0.5, 0.5);
      double x = cx + rng.uniform(-0.5, 0.5) * radius, y = cy + rng.uniform(-0.5, 0.5) * radius;
      x -= dirx * radius * 0.5;
      y -= diry * radius * 0.5;
      const double thick = rng.uniform(0.004, 0.007);
      const int steps = static_cast<int>(rng.uniform(0.6, 1.3) * radius / 0.003);
      for (int i = 0; i < steps; ++i) {
        len = std::sqrt(dirx * dirx + diry * diry) + 1e-9;
        dirx /= len;
        diry /= len;
        x += dirx * 0.003;
        y += diry * 0.003;
        dirx += rng.uniform(-0.15, 0.15);
        diry += rng.uniform(-0.15, 0.15);
        const int pcx = static_cast<int>(x * size), pcy = static_cast<int>(y * size);
        const int rad = static_cast<int>(thick * size) + 2;
        for (int yy = std::max(0, pcy - rad); yy <= std::min(size - 1, pcy + rad); ++yy) {
          for (int xx = std::max(0, pcx - rad); xx <= std::min(size - 1, pcx + rad); ++xx) {
            const double ddx = (xx + 0.5) / size - x, ddy = (yy + 0.5) / size - y;
            const double dist = std::sqrt(ddx * ddx + ddy * ddy);
            const double w = 1.0 - smoothstep(thick * 0.3, thick, dist);
            const float g = static_cast<float>(1.0 - 0.6 * w);
            les.gain(yy, xx) = std::min(les.gain(yy, xx), g);
          }
        }
      }
    }
  }
  return les;
}

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
