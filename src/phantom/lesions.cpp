// Lesions of the phantom: nodules and consolidations placed inside the lung fields.
#include "phantom/lesions.h"

#include <algorithm>
#include <cmath>

// Keep a*b+c as two roundings everywhere (GCC does so in ISO mode; clang would fuse).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

namespace medattn::phantom {
namespace {

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

}  // namespace

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

}  // namespace medattn::phantom
