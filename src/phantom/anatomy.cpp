// Anatomy of the phantom: shape parameters (sample_anatomy) and the composed layers
// (compose_anatomy): background, body outline, two lung fields with a diaphragm dome, the
// mediastinum and heart shadow, spine, ribs, clavicles, lung texture and vessels.
#include "phantom/anatomy.h"

#include <algorithm>
#include <cmath>

// Keep a*b+c as two roundings everywhere (GCC does so in ISO mode; clang would fuse).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

namespace medattn::phantom {
namespace {

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

}  // namespace

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

}  // namespace medattn::phantom
