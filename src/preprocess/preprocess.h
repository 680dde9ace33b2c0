// Turning a read image into the model's input, driven entirely by the model card, so that
// training, evaluation and diagnosis can never preprocess differently.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "io/image.h"

namespace medattn::preprocess {

struct PreprocessConfig {
  int image_size = 96;      // the model sees image_size x image_size pixels
  int channels = 1;         // 1: colour input is converted to grey (BT.601 luma); 3: colour (BGR),
                            // grey input repeated on the three channels
  bool clahe = false;       // contrast-limited adaptive histogram equalisation after windowing
  double clahe_clip = 2.0;  // CLAHE clip limit
  int clahe_tiles = 8;      // CLAHE tile grid (tiles x tiles)
  // Intensity standardisation after windowing: "none", or "percentile" (each image's content
  // stretched so that its intensity_low-th percentile becomes 0 and its intensity_high-th 1,
  // clipped; colour images by their luma, one stretch for all channels). It takes exposure,
  // window and gain differences between devices out of what the model sees.
  std::string intensity = "none";
  double intensity_low = 1.0;
  double intensity_high = 99.0;
  // Colour constancy for colour models: "none", or "shades-of-grey" (Finlayson and Trezzi 2004,
  // Minkowski norm p = 6: each channel of the content scaled so that the estimated illuminant
  // becomes grey, clipped). It takes the camera's and the light's colour out of what the model
  // sees, as the ISIC challenges' winners did across dermoscopy sites.
  std::string colour_constancy = "none";
  double mean = 0.5;        // input = (windowed - mean) / std
  double std = 0.25;
};

// Where the original image lies inside the square model input (aspect-preserving resize,
// centred, padded with black, i.e. windowed value 0).
struct Letterbox {
  int original_width = 0;
  int original_height = 0;
  cv::Rect content;  // in model-input pixels
};

// Computes the letterbox of a width x height image in a size x size square.
Letterbox letterbox_for(int width, int height, int size);

// image -> windowed [0,1] -> config.channels (to_channels) -> letterboxed size x size
// (INTER_AREA when shrinking, linear when enlarging) -> optional percentile stretch of the
// content (config.intensity) -> optional CLAHE (per channel) ->
// (x - mean) / std. Returns CV_32FC1 or CV_32FC3 (interleaved; see copy_planar) of
// image_size x image_size. Fills *letterbox when not null.
cv::Mat prepare(const io::Image& image, const PreprocessConfig& config,
                Letterbox* letterbox = nullptr);

// The same from an already windowed image (CV_32FC1 or CV_32FC3 in [0,1]) with
// config.channels channels (to_channels); prepare() calls this.
cv::Mat prepare_display(const cv::Mat& display, const PreprocessConfig& config,
                        Letterbox* letterbox = nullptr);

// A display image (CV_32FC1/3/4 in [0,1]) with `channels` channels: 1 = grey (BT.601 luma),
// 3 = BGR (grey repeated, alpha dropped).
cv::Mat to_channels(const cv::Mat& display, int channels);

// Copies a prepared CV_32FC(C) image into `dst` as C planes of rows x cols floats (the
// [C,H,W] layout of a tensor).
void copy_planar(const cv::Mat& prepared, float* dst);

// Maps a map over the model input (any resolution covering the square, e.g. the token grid)
// back to the original image: crops the letterbox content and resizes (bilinear) to
// original_width x original_height. Returns CV_32FC1.
cv::Mat map_to_original(const cv::Mat& square_map, const Letterbox& letterbox, int image_size);

// A lesion mask (a display image in [0,1], lesion where >= 0.5) letterboxed exactly like
// prepare(): CV_8UC1, size x size, 255 inside the lesion, 0 elsewhere (padding included).
cv::Mat prepare_mask(const cv::Mat& mask_display, int size);

// The percentile stretch of config.intensity, in place, on a CV_32FC1/3 image in [0,1]: values
// at the low percentile (of the luma, nearest rank) become 0, at the high one 1, clipped.
// A near-constant image (spread under 1e-3) is left as it is.
void stretch_percentiles(cv::Mat& image, double low, double high);

// Shades-of-grey colour constancy, in place, on a CV_32FC3 image in [0,1]: with e_c the
// Minkowski p-norm mean of channel c, channel c is scaled by |e| / (sqrt(3) e_c), so that the
// illuminant estimate becomes grey and a grey image is unchanged; then clipped to [0,1]. A
// channel with e_c under 1e-4 (black) is left as it is.
void shades_of_grey(cv::Mat& image, double p = 6.0);

// Converts a display image (CV_32FC1/3 in [0,1]) to grey CV_32FC1.
cv::Mat to_grey(const cv::Mat& display);

}  // namespace medattn::preprocess
