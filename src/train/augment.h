// Training augmentation: random geometric and photometric changes of a normalised batch, and
// the sentence the model card stores about them. The lead extends this file with the
// robustness recipes (issue 19); train.cpp only calls augment() and describe_augment().
#pragma once

#include <ATen/core/Tensor.h>
#include <string>

#include "preprocess/preprocess.h"

namespace medattn::train {

struct AugmentOptions {
  bool hflip = false;  // anatomy has a side: off unless asked
  bool vflip = false;  // e.g. dermoscopy, which has no up
  bool colour = false; // colour input: per-channel gain
  // Random erasing (Zhong et al. 2020): the share of images in which one rectangle of 2-25% of
  // the area (aspect 0.3-3.3) is replaced by uniform random values. 0 = off, and then augment()
  // draws exactly what it drew before the option existed.
  double erase = 0.0;
  // Multi-resolution training: the share of images seen at a lower resolution, one size per
  // batch drawn from 0.35-1 of the input size (area-averaged down, bilinear back up), so that the
  // model cannot lean on detail finer than another site's detector or a downscaled export
  // keeps. Drawn after everything else; 0 = off, and then augment() draws what it drew before.
  double multires = 0.0;
};

// What augment() does with these options, for the model card ("rotation +-7 deg, ...").
std::string describe_augment(const AugmentOptions& a);

// Random affine (rotation +-7 deg, scale 0.9-1.1, shift +-6%), optional horizontal flip,
// brightness/contrast/gamma, per-channel gain for colour, blur or resolution jitter, and
// noise, then random erasing when asked, applied in windowed [0,1] space. Draws from LibTorch's default CPU generator, in a
// fixed order for a given batch shape (training is reproducible from its seed).
// x: [B,C,S,S] normalised with config's mean/std -> same shape, normalised.
at::Tensor augment(const at::Tensor& x, const preprocess::PreprocessConfig& config, const AugmentOptions& options);

}  // namespace medattn::train
