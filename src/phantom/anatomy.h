// The anatomy of a phantom chest radiograph (phantom/phantom.h): its random shape
// parameters, and the per-pixel layers (body, lung fields, density) composed from them.
#pragma once

#include "phantom/raster.h"
#include "phantom/rng.h"

namespace medattn::phantom {

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

// Per-pixel anatomical layers, shared by the image and the lesion placement.
struct Layers {
  Plane body;      // body weight
  Plane lung[2];   // lung field weight of each lung, with heart and mediastinum removed
  Plane lung_air;  // how much lung darkening a pixel gets (sum over lungs, heart partly removed)
  Plane density;   // the composed density map
};

// Draws the shape and appearance parameters of one chest from `rng`.
Anatomy sample_anatomy(Rng& rng);

// Composes the layers at `size` x `size` pixels; lung texture and vessels draw on `tex_rng`.
Layers compose_anatomy(const Anatomy& a, Rng& tex_rng, int size);

}  // namespace medattn::phantom
