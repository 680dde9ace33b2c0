// Scope and sanity checks that run on a decoded image before the model sees it: is this an
// image the model's card says it is for? Torch-free.
#pragma once

#include <opencv2/core.hpp>
#include <string>

#include "io/image.h"
#include "model/card.h"

namespace medattn::pipeline {

// Limits of the checks; the defaults are what diagnose uses.
struct ScopeLimits {
  // Near-constant: the standard deviation of the windowed grey values (in [0,1]) below this.
  double min_std = 0.01;
  // Too small: the image's longer side below this share of the model input's side.
  double min_side_share = 0.5;
  // Colour photograph for a grey model: the mean over pixels of (max - min over B,G,R) of the
  // windowed values above this. Grey content stored as RGB JPEG stays near 0.01.
  double max_channel_spread = 0.06;
};

// Mean over pixels of max(B,G,R) - min(B,G,R) of a CV_32FC3 display image in [0,1]; 0 for
// one channel.
double channel_spread(const cv::Mat& display);

// The first check the image fails, as one line, or "" when it is in scope. In order:
//   "out of scope: DICOM Modality 'NM' (model 'pneumonia-cxr' takes CR, DX)"
//     (a DICOM input with a Modality not in card.intended_use.modalities, when the card lists any);
//   "out of scope: DICOM BodyPartExamined 'WHOLE BODY' (model 'pneumonia-cxr' takes CHEST)"
//     (only when both the file and the card name one; the card may list several, comma-separated);
//   "out of scope: image 33x41 is too small for model 'brain-mri' (input 128 px; longer side at least 64)";
//   "out of scope: near-constant image after windowing (standard deviation 0.0000, minimum 0.01)";
//   "out of scope: colour image for grey model 'pneumonia-cxr' (channel spread 0.213, limit 0.06)".
// `image` is the decoded file (its format, modality, body part and size are used), `display`
// its windowed CV_32FC1/3 version in [0,1] (io::to_display); `grey`, when given, is
// preprocess::to_grey(display) already computed by the caller.
std::string scope_check(const io::Image& image, const cv::Mat& display, const model::ModelCard& card,
                        const ScopeLimits& limits = {}, const cv::Mat& grey = cv::Mat());

}  // namespace medattn::pipeline
