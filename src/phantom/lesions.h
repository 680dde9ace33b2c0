// Lesions of the phantom (phantom/phantom.h). Each is an opacity field in [0,1], already
// confined to a lung field; the lesion adds amp * opacity * gain to the density.
#pragma once

#include "phantom/anatomy.h"

namespace medattn::phantom {

struct Lesion {
  Plane opacity;  // in [0,1], confined to the lung fields
  Plane gain;     // per-pixel multiplier of the amplitude (texture, bronchograms)
  double amp = 0.0;
};

// One to three round nodules (class "nodule").
Lesion make_nodules(const Layers& L, Rng& rng, int size, double lung_depth);

// An ill-defined textured opacity with air bronchograms (class "consolidation").
Lesion make_consolidation(const Layers& L, Rng& rng, int size, double lung_depth);

}  // namespace medattn::phantom
