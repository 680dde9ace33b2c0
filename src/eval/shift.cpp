#include "eval/shift.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/text.h"

namespace medattn::eval {
namespace {

cv::Mat clamp01(const cv::Mat& m) {
  cv::Mat out;
  cv::min(cv::max(m, 0.0), 1.0, out);
  return out;
}

cv::Mat gaussian_blur(const cv::Mat& x, double sigma) {
  cv::Mat out;
  cv::GaussianBlur(x, out, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT);
  return out;
}

// Standard normal noise of x's size and type.
cv::Mat normal_noise(const cv::Mat& x, cv::RNG& rng) {
  cv::Mat z(x.size(), x.type());
  rng.fill(z, cv::RNG::NORMAL, 0.0, 1.0);
  return z;
}

// Pixel coordinates in [-1, 1] over the image: u along columns, v along rows.
void unit_grid(const cv::Size& size, cv::Mat& u, cv::Mat& v) {
  u.create(size, CV_32FC1);
  v.create(size, CV_32FC1);
  for (int r = 0; r < size.height; ++r) {
    float* pu = u.ptr<float>(r);
    float* pv = v.ptr<float>(r);
    const float vr = size.height > 1 ? 2.0f * r / (size.height - 1) - 1.0f : 0.0f;
    for (int c = 0; c < size.width; ++c) {
      pu[c] = size.width > 1 ? 2.0f * c / (size.width - 1) - 1.0f : 0.0f;
      pv[c] = vr;
    }
  }
}

// A one-channel field applied to every channel of x.
cv::Mat multiply_field(const cv::Mat& x, const cv::Mat& field) {
  cv::Mat f = field;
  if (x.channels() == 3) cv::merge(std::vector<cv::Mat>{field, field, field}, f);
  return x.mul(f);
}

// --- radiographs -----------------------------------------------------------------------------

// Exposure: the detector's response bent by gamma > 1 (an under-exposed film).
cv::Mat exposure(const cv::Mat& x, double gamma, double, cv::RNG&) {
  cv::Mat out;
  cv::pow(cv::max(x, 0.0), gamma, out);
  return clamp01(out);
}

// Quantum (photon) noise: Poisson with `photons` quanta per unit of intensity, in its Gaussian
// approximation (variance x / photons).
cv::Mat quantum_noise(const cv::Mat& x, double photons, double, cv::RNG& rng) {
  cv::Mat sd;
  cv::sqrt(cv::max(x, 0.0) / photons, sd);
  return clamp01(x + normal_noise(x, rng).mul(sd));
}

cv::Mat blur(const cv::Mat& x, double sigma, double scale, cv::RNG&) {
  return clamp01(gaussian_blur(x, sigma * scale));
}

// A lower acquisition resolution: down by `factor` (area), back up (linear).
cv::Mat downsample(const cv::Mat& x, double factor, double scale, cv::RNG&) {
  // The model sees the longer side at max(width, height) / scale pixels (never more than the
  // image has): the new resolution is that view divided by `factor`.
  const double f = factor * std::max(1.0, scale);
  const int w = std::max(2, static_cast<int>(std::lround(x.cols / f)));
  const int h = std::max(2, static_cast<int>(std::lround(x.rows / f)));
  cv::Mat small, out;
  cv::resize(x, small, cv::Size(std::min(w, x.cols), std::min(h, x.rows)), 0, 0, cv::INTER_AREA);
  cv::resize(small, out, x.size(), 0, 0, cv::INTER_LINEAR);
  return clamp01(out);
}

// Vendor edge enhancement: unsharp masking with `amount` at a radius of 1.2 model pixels.
cv::Mat edge_enhancement(const cv::Mat& x, double amount, double scale, cv::RNG&) {
  return clamp01(x + amount * (x - gaussian_blur(x, 1.2 * scale)));
}

// Lossy JPEG at `quality`, of the 8-bit image.
cv::Mat jpeg(const cv::Mat& x, double quality, double, cv::RNG&) {
  cv::Mat bytes;
  x.convertTo(bytes, x.channels() == 3 ? CV_8UC3 : CV_8UC1, 255.0);
  std::vector<uchar> buf;
  cv::imencode(".jpg", bytes, buf, {cv::IMWRITE_JPEG_QUALITY, static_cast<int>(quality)});
  cv::Mat decoded = cv::imdecode(buf, x.channels() == 3 ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE);
  cv::Mat out;
  decoded.convertTo(out, x.type(), 1.0 / 255.0);
  return out;
}

// A wider display window: contrast multiplied by `factor` about the image's mean.
cv::Mat window(const cv::Mat& x, double factor, double, cv::RNG&) {
  const cv::Scalar m = cv::mean(x);
  cv::Mat out = x.clone();
  std::vector<cv::Mat> planes;
  cv::split(out, planes);
  for (size_t c = 0; c < planes.size(); ++c) planes[c] = (planes[c] - m[static_cast<int>(c)]) * factor + m[static_cast<int>(c)];
  cv::merge(planes, out);
  return clamp01(out);
}

// Fewer stored bits: values rounded to 2^bits levels.
cv::Mat bit_depth(const cv::Mat& x, double bits, double, cv::RNG&) {
  const double levels = std::pow(2.0, bits) - 1.0;
  cv::Mat out = (x * levels + 0.5);
  cv::Mat flat = out.reshape(1);
  flat.forEach<float>([](float& v, const int*) { v = std::floor(v); });
  return clamp01(out / levels);
}

// The stripes of an anti-scatter grid: vertical lines every 2.5 model pixels that absorb up to
// `depth` of the signal, at a random phase.
cv::Mat grid_lines(const cv::Mat& x, double depth, double scale, cv::RNG& rng) {
  const double period = 2.5 * std::max(scale, 1.0);
  const double phase = rng.uniform(0.0, 2.0 * M_PI);
  cv::Mat field(x.size(), CV_32FC1);
  for (int c = 0; c < x.cols; ++c) {
    const float f = static_cast<float>(1.0 - depth * (0.5 + 0.5 * std::cos(2.0 * M_PI * c / period + phase)));
    for (int r = 0; r < x.rows; ++r) field.at<float>(r, c) = f;
  }
  return clamp01(multiply_field(x, field));
}

// --- MRI -------------------------------------------------------------------------------------

// A smooth multiplicative bias field exp(strength * p(u, v)), p a random second-order
// polynomial scaled so that max |p| = 1 over the image.
cv::Mat bias_field(const cv::Mat& x, double strength, double, cv::RNG& rng) {
  cv::Mat u, v;
  unit_grid(x.size(), u, v);
  double k[5];
  for (double& c : k) c = rng.gaussian(1.0);
  cv::Mat p = k[0] * u + k[1] * v + k[2] * u.mul(v) + k[3] * (u.mul(u) - 1.0 / 3) + k[4] * (v.mul(v) - 1.0 / 3);
  double lo, hi;
  cv::minMaxLoc(p, &lo, &hi);
  const double peak = std::max(std::abs(lo), std::abs(hi));
  if (peak > 0) p /= peak;
  cv::Mat field;
  cv::exp(p * strength, field);
  return clamp01(multiply_field(x, field));
}

// Rician noise of magnitude images: |x + sigma * (z1 + i z2)|.
cv::Mat rician_noise(const cv::Mat& x, double sigma, double, cv::RNG& rng) {
  cv::Mat re = x + sigma * normal_noise(x, rng);
  cv::Mat im = sigma * normal_noise(x, rng);
  cv::Mat out;
  cv::sqrt(re.mul(re) + im.mul(im), out);
  return clamp01(out);
}

// Motion ghosting: replicas shifted a quarter of the field of view along the phase-encoding
// direction (rows), each with `weight` / 2 of the signal.
cv::Mat ghosting(const cv::Mat& x, double weight, double, cv::RNG&) {
  const int d = std::max(1, x.rows / 4);
  cv::Mat up, down;
  cv::vconcat(x.rowRange(d, x.rows), x.rowRange(0, d), up);
  cv::vconcat(x.rowRange(x.rows - d, x.rows), x.rowRange(0, x.rows - d), down);
  return clamp01((1.0 - weight) * x + (weight / 2.0) * (up + down));
}

// Another sequence's contrast: gamma < 1 lifts the dark tissue.
cv::Mat contrast(const cv::Mat& x, double gamma, double scale, cv::RNG& rng) { return exposure(x, gamma, scale, rng); }

// --- ultrasound ------------------------------------------------------------------------------

// Multiplicative speckle, correlated over a resolution cell (0.7 model pixels), of standard
// deviation `sd`.
cv::Mat speckle(const cv::Mat& x, double sd, double scale, cv::RNG& rng) {
  cv::Mat z = gaussian_blur(normal_noise(x, rng), 0.7 * std::max(scale, 1.0));
  cv::Scalar m, s;
  cv::meanStdDev(z, m, s);
  if (s[0] > 0) z = (z - m[0]) / s[0];
  return clamp01(x.mul(1.0 + sd * z));
}

// Receiver gain turned up by `gain` (bright parts saturate).
cv::Mat gain(const cv::Mat& x, double g, double, cv::RNG&) { return clamp01(x * g); }

// Depth attenuation left uncompensated: intensity falls as exp(-a * depth), depth = row / rows.
cv::Mat depth_attenuation(const cv::Mat& x, double a, double, cv::RNG&) {
  cv::Mat field(x.size(), CV_32FC1);
  for (int r = 0; r < x.rows; ++r) field.row(r).setTo(std::exp(-a * r / static_cast<double>(x.rows)));
  return clamp01(multiply_field(x, field));
}

// --- dermoscopy ------------------------------------------------------------------------------

// A white-balance error: red raised and blue lowered by `shift` (a warm cast). Grey images
// have no colour to cast and are returned unchanged.
cv::Mat colour_cast(const cv::Mat& x, double shift, double, cv::RNG&) {
  if (x.channels() != 3) return x.clone();
  std::vector<cv::Mat> bgr;
  cv::split(x, bgr);
  bgr[0] *= 1.0 - shift;
  bgr[2] *= 1.0 + shift;
  cv::Mat out;
  cv::merge(bgr, out);
  return clamp01(out);
}

// Uneven illumination: light falling off as 1 - strength * r^2 from a random centre within
// the middle half of the image (r = 1 at the farthest corner).
cv::Mat uneven_illumination(const cv::Mat& x, double strength, double, cv::RNG& rng) {
  cv::Mat u, v;
  unit_grid(x.size(), u, v);
  const double cu = rng.uniform(-0.5, 0.5), cv_ = rng.uniform(-0.5, 0.5);
  cv::Mat r2 = (u - cu).mul(u - cu) + (v - cv_).mul(v - cv_);
  double hi;
  cv::minMaxLoc(r2, nullptr, &hi);
  if (hi > 0) r2 /= hi;
  return clamp01(multiply_field(x, 1.0 - strength * r2));
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

const std::vector<Corruption>& corruption_registry() {
  static const std::vector<Corruption> registry = {
      {"exposure", "intensity", "under-exposed film: the response bent by gamma", "gamma", {1.3, 1.6, 2.0, 2.5, 3.1}, exposure},
      {"quantum_noise", "noise", "fewer X-ray quanta: Poisson noise", "quanta per unit intensity", {400, 160, 64, 26, 10}, quantum_noise},
      {"blur", "blur", "focal spot, motion or a soft reconstruction: Gaussian blur", "sigma in model pixels", {0.6, 0.9, 1.3, 1.8, 2.5}, blur},
      {"downsample", "resolution", "a coarser detector or a resized export", "downsampling factor", {1.5, 2, 2.5, 3.5, 5}, downsample},
      {"edge_enhancement", "sharpening", "a vendor's edge enhancement: unsharp masking", "amount", {0.4, 0.8, 1.3, 2, 3}, edge_enhancement},
      {"jpeg", "compression", "lossy JPEG export", "quality", {60, 40, 25, 15, 8}, jpeg},
      {"window", "intensity", "a wider display window: lower contrast", "contrast factor", {0.75, 0.6, 0.48, 0.38, 0.3}, window},
      {"bit_depth", "quantisation", "fewer stored bits", "bits", {6, 5, 4, 3, 2}, bit_depth},
      {"grid_lines", "grid", "anti-scatter grid lines", "absorption depth", {0.03, 0.06, 0.1, 0.15, 0.22}, grid_lines},
      {"bias_field", "bias_field", "coil sensitivity: a smooth multiplicative bias field", "log-amplitude", {0.15, 0.3, 0.45, 0.65, 0.9}, bias_field},
      {"rician_noise", "noise", "thermal noise of magnitude images: Rician", "sigma", {0.02, 0.04, 0.07, 0.1, 0.14}, rician_noise},
      {"ghosting", "ghosting", "patient motion: ghosts along the phase-encoding direction", "ghost weight", {0.06, 0.12, 0.18, 0.25, 0.33}, ghosting},
      {"contrast", "intensity", "another sequence's contrast: gamma below 1", "gamma", {0.8, 0.65, 0.52, 0.42, 0.33}, contrast},
      {"speckle", "speckle", "ultrasound speckle: correlated multiplicative noise", "standard deviation", {0.1, 0.2, 0.3, 0.45, 0.6}, speckle},
      {"gain", "intensity", "receiver gain turned up", "gain", {1.2, 1.45, 1.75, 2.1, 2.6}, gain},
      {"depth_attenuation", "attenuation", "uncompensated depth attenuation", "attenuation over the depth", {0.3, 0.6, 1.0, 1.4, 2.0}, depth_attenuation},
      {"colour_cast", "colour", "a white-balance error: a warm cast", "red up, blue down by", {0.05, 0.1, 0.16, 0.23, 0.3}, colour_cast},
      {"uneven_illumination", "illumination", "uneven illumination: light falling off from an off-centre spot", "fall-off at the far corner", {0.15, 0.3, 0.45, 0.6, 0.75}, uneven_illumination},
  };
  return registry;
}

const Corruption& find_corruption(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& c : corruption_registry()) {
    if (name == c.name) return c;
    names.push_back(c.name);
  }
  throw Error(ErrorKind::kInvalidArgument, "unknown corruption '" + name + "' (known: " + join(names, ", ") + ")");
}

const std::vector<ShiftSetDef>& shift_sets() {
  static const std::vector<ShiftSetDef> sets = {
      {"radiograph", "CR, DX, CT, MG, OT",
       {"exposure", "quantum_noise", "blur", "downsample", "edge_enhancement", "jpeg", "window", "bit_depth", "grid_lines"}},
      {"mri", "MR", {"bias_field", "rician_noise", "ghosting", "contrast", "downsample"}},
      {"ultrasound", "US", {"speckle", "gain", "depth_attenuation", "blur", "jpeg"}},
      {"dermoscopy", "XC, DMS, GM", {"colour_cast", "blur", "uneven_illumination", "jpeg"}},
  };
  return sets;
}

const ShiftSetDef& find_shift_set(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& s : shift_sets()) {
    if (name == s.name) return s;
    names.push_back(s.name);
  }
  throw Error(ErrorKind::kInvalidArgument, "unknown shift set '" + name + "' (known: " + join(names, ", ") + ")");
}

std::string shift_set_for(const std::vector<std::string>& modalities, int channels) {
  auto has = [&](const char* m) { return std::find(modalities.begin(), modalities.end(), m) != modalities.end(); };
  if (has("MR")) return "mri";
  if (has("US")) return "ultrasound";
  if (has("XC") || has("DMS") || has("GM")) return "dermoscopy";
  if (modalities.empty() && channels == 3) return "dermoscopy";
  return "radiograph";
}

std::set<std::string> seen_families(const std::string& augment) {
  std::set<std::string> seen;
  if (augment.empty() || augment == "false") return seen;
  auto has = [&](const char* word) { return augment.find(word) != std::string::npos; };
  if (has("contrast") || has("brightness") || has("gamma")) seen.insert("intensity");
  if (has("noise")) seen.insert("noise");
  if (has("blur")) seen.insert("blur");
  if (has("resolution")) seen.insert("resolution");
  if (has("per-channel gain")) seen.insert("colour");
  return seen;
}

uint64_t corruption_seed(uint64_t seed, const std::string& corruption, uint64_t sample) {
  uint64_t h = splitmix64(seed);
  for (unsigned char ch : corruption) h = splitmix64(h ^ ch);
  return splitmix64(h ^ sample);
}

cv::Mat corrupt(const cv::Mat& display, const Corruption& c, int severity, double scale, uint64_t seed) {
  if (severity < 0 || severity > kShiftSeverities) {
    throw Error(ErrorKind::kInvalidArgument, "severity must be 0.." + std::to_string(kShiftSeverities) + " (got " + std::to_string(severity) + ")");
  }
  if (severity == 0) return display.clone();
  cv::RNG rng(seed == 0 ? 1 : seed);
  cv::Mat out = c.apply(display, c.params[severity - 1], std::max(scale, 1e-6), rng);
  CV_Assert(out.type() == display.type() && out.size() == display.size());
  return out;
}

ShiftSummary summarise(const ShiftResult& result, bool unseen_only) {
  ShiftSummary s;
  int cells = 0, covered = 0;
  double coverage = 0;
  for (const auto& row : result.rows) {
    if (unseen_only && row.seen) continue;
    ++s.corruptions;
    for (const auto& c : row.cells) {
      ++cells;
      s.accuracy += c.accuracy;
      s.balanced_accuracy += c.balanced_accuracy;
      s.auc += c.auc;
      s.ece += c.ece;
      if (c.coverage >= 0) {
        coverage += c.coverage;
        ++covered;
      }
    }
  }
  if (cells == 0) return ShiftSummary{};
  s.accuracy /= cells;
  s.balanced_accuracy /= cells;
  s.auc /= cells;
  s.ece /= cells;
  s.coverage = covered == cells ? coverage / cells : -1;
  s.relative_accuracy_drop = result.clean.accuracy > 0 ? (result.clean.accuracy - s.accuracy) / result.clean.accuracy : 0;
  s.relative_balanced_accuracy_drop =
      result.clean.balanced_accuracy > 0 ? (result.clean.balanced_accuracy - s.balanced_accuracy) / result.clean.balanced_accuracy : 0;
  return s;
}

}  // namespace medattn::eval
