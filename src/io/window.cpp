// VOI windowing (io/image.h): the DICOM linear function every reader's window follows.
#include <algorithm>

#include "io/image.h"

namespace medattn::io {

Window window_from_range(double lo, double hi) {
  if (hi < lo) std::swap(lo, hi);
  // Solve the DICOM linear function for lo -> 0 and hi -> 1: w - 1 = hi - lo, c - 0.5 = mid.
  Window w;
  w.width = (hi - lo) + 1.0;
  w.center = lo + (hi - lo) / 2.0 + 0.5;
  return w;
}

double apply_window(double value, const Window& window) {
  const double c = window.center - 0.5;
  const double w = window.width - 1.0;
  if (w <= 0.0) return value > c ? 1.0 : 0.0;
  if (value <= c - w / 2.0) return 0.0;
  if (value > c + w / 2.0) return 1.0;
  return std::clamp((value - c) / w + 0.5, 0.0, 1.0);
}

}  // namespace medattn::io
