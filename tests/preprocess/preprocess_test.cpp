// Preprocessing as the card describes it.
#include <catch2/catch.hpp>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "preprocess/preprocess.h"

using namespace medattn::preprocess;

TEST_CASE("the letterbox keeps the aspect ratio and centres the image", "[preprocess]") {
  auto lb = letterbox_for(200, 100, 64);
  CHECK(lb.content == cv::Rect(0, 16, 64, 32));
  lb = letterbox_for(30, 90, 96);
  CHECK(lb.content == cv::Rect(32, 0, 32, 96));
  lb = letterbox_for(50, 50, 64);
  CHECK(lb.content == cv::Rect(0, 0, 64, 64));
}

TEST_CASE("prepare windows, letterboxes and normalises with the card's mean and std", "[preprocess]") {
  PreprocessConfig config;
  config.image_size = 8;
  config.mean = 0.5;
  config.std = 0.25;
  cv::Mat grey(4, 8, CV_32FC1, cv::Scalar(1.0));  // white, 2:1
  Letterbox lb;
  cv::Mat in = prepare_display(grey, config, &lb);
  REQUIRE(in.size() == cv::Size(8, 8));
  CHECK(lb.content == cv::Rect(0, 2, 8, 4));
  CHECK(in.at<float>(0, 0) == Approx(-2.0));  // padding is black: (0 - .5) / .25
  CHECK(in.at<float>(3, 3) == Approx(2.0));   // content white: (1 - .5) / .25
}

TEST_CASE("maps go back to the original size through the letterbox", "[preprocess]") {
  const auto lb = letterbox_for(200, 100, 64);
  // A 4x4 token map whose top half (the padding rows overlap it) is hot.
  cv::Mat map(4, 4, CV_32FC1, cv::Scalar(0));
  map.rowRange(0, 2).setTo(1.0);
  cv::Mat back = map_to_original(map, lb, 64);
  CHECK(back.size() == cv::Size(200, 100));
  CHECK(back.at<float>(5, 100) > back.at<float>(95, 100));
}

TEST_CASE("the letterbox of a non-square image: where it lies and where one of its pixels lands", "[preprocess]") {
  // 60x30 in 32: scale 32/60, 32 x round(16.0) = 16 px, centred: rows 8 to 23.
  CHECK(letterbox_for(60, 30, 32).content == cv::Rect(0, 8, 32, 16));
  CHECK(letterbox_for(30, 60, 32).content == cv::Rect(8, 0, 16, 32));
  // 64x32 in 32: exactly half size. A white 2x2 block at rows 10-11, columns 40-41 of a black
  // image is averaged (INTER_AREA) into the single pixel (5, 20) of the content, which starts
  // at row 8: model-input pixel (13, 20) is white, every other pixel black.
  PreprocessConfig config;
  config.image_size = 32;
  cv::Mat image(32, 64, CV_32FC1, cv::Scalar(0.0));
  image(cv::Rect(40, 10, 2, 2)).setTo(1.0);
  Letterbox lb;
  const cv::Mat in = prepare_display(image, config, &lb);
  CHECK(lb.original_width == 64);
  CHECK(lb.original_height == 32);
  CHECK(lb.content == cv::Rect(0, 8, 32, 16));
  cv::Mat expected(32, 32, CV_32FC1, cv::Scalar(-2.0));  // black: (0 - 0.5) / 0.25
  expected.at<float>(13, 20) = 2.0f;                     // white: (1 - 0.5) / 0.25
  CHECK(cv::norm(in, expected, cv::NORM_INF) == 0.0);
}

TEST_CASE("a hot spot of the model-input map lands on the original pixels it came from", "[preprocess]") {
  // Back through the same letterbox: the content (rows 8-23) is enlarged twice. Bilinear
  // with pixel centres puts weights 1/4, 3/4, 3/4, 1/4 on original columns 39-42 and rows 9-12
  // for a single hot pixel at content (5, 20), i.e. model input (13, 20): the peak covers the
  // 2x2 block it was made from.
  const auto lb = letterbox_for(64, 32, 32);
  cv::Mat map(32, 32, CV_32FC1, cv::Scalar(0.0));
  map.at<float>(13, 20) = 1.0f;
  const cv::Mat back = map_to_original(map, lb, 32);
  REQUIRE(back.size() == cv::Size(64, 32));
  cv::Mat expected(32, 64, CV_32FC1, cv::Scalar(0.0));
  const float w[4] = {0.25f, 0.75f, 0.75f, 0.25f};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) expected.at<float>(9 + i, 39 + j) = w[i] * w[j];
  }
  CHECK(cv::norm(back, expected, cv::NORM_INF) < 1e-6);

  // A tall 16x32 image fills columns 8-23 at scale 1: the crop alone takes model input
  // (7, 11) to original (7, 3), unchanged.
  const auto tall = letterbox_for(16, 32, 32);
  CHECK(tall.content == cv::Rect(8, 0, 16, 32));
  cv::Mat tall_map(32, 32, CV_32FC1, cv::Scalar(0.0));
  tall_map.at<float>(7, 11) = 1.0f;
  cv::Mat tall_expected(32, 16, CV_32FC1, cv::Scalar(0.0));
  tall_expected.at<float>(7, 3) = 1.0f;
  CHECK(cv::norm(map_to_original(tall_map, tall, 32), tall_expected, cv::NORM_INF) == 0.0);

  // 60x30: the content (rows 8-23) is enlarged 1.875 times. Original pixel (y, x) samples the
  // content at ((y + 0.5) / 1.875 - 0.5, (x + 0.5) / 1.875 - 0.5); for a hot pixel at content
  // (5, 20) the nearest sample is (10, 38), at (5.1, 20.0333): weight 0.9 * 0.96667 = 0.87.
  const auto wide = letterbox_for(60, 30, 32);
  const cv::Mat spot = map_to_original(map, wide, 32);
  REQUIRE(spot.size() == cv::Size(60, 30));
  double peak = 0;
  cv::Point where;
  cv::minMaxLoc(spot, nullptr, &peak, nullptr, &where);
  CHECK(where == cv::Point(38, 10));
  CHECK(peak == Approx(0.9 * (1 - 0.1 / 3)).margin(1e-5));
  CHECK(spot.at<float>(9, 37) == Approx((9.5 / 1.875 - 4.5) * 0.5).margin(1e-5));  // 0.56667 * 0.5
  // Padding never reaches the original: a map that is hot only outside the content maps to 0.
  cv::Mat padding(32, 32, CV_32FC1, cv::Scalar(1.0));
  padding(wide.content).setTo(0.0);
  CHECK(cv::countNonZero(map_to_original(padding, wide, 32)) == 0);
}

TEST_CASE("colour becomes grey with BT.601 weights", "[preprocess]") {
  cv::Mat bgr(1, 1, CV_32FC3, cv::Scalar(1.0, 0.0, 0.0));  // pure blue
  CHECK(to_grey(bgr).at<float>(0, 0) == Approx(0.114).margin(1e-3));
}

TEST_CASE("percentile intensity standardisation stretches each image's own range", "[preprocess]") {
  // A ramp of 101 values 0.00..1.00: the 10th percentile (nearest rank) is 0.10, the 90th 0.90.
  cv::Mat ramp(1, 101, CV_32FC1);
  for (int i = 0; i <= 100; ++i) ramp.at<float>(0, i) = i / 100.0f;
  stretch_percentiles(ramp, 10, 90);
  CHECK(ramp.at<float>(0, 0) == 0.0f);
  CHECK(ramp.at<float>(0, 10) == Approx(0.0).margin(1e-6));
  CHECK(ramp.at<float>(0, 50) == Approx(0.5).margin(1e-6));
  CHECK(ramp.at<float>(0, 90) == Approx(1.0).margin(1e-6));
  CHECK(ramp.at<float>(0, 100) == 1.0f);
  // A constant image is left alone (no division by a zero spread).
  cv::Mat flat(4, 4, CV_32FC1, cv::Scalar(0.3));
  stretch_percentiles(flat, 1, 99);
  CHECK(cv::countNonZero(flat != 0.3f) == 0);
}

TEST_CASE("with percentile standardisation a window or gain change no longer reaches the model", "[preprocess]") {
  // The same anatomy under another window or detector gain (x -> 0.6 x + 0.25): without the
  // stretch the model's input moves, with it the input is the same.
  cv::Mat image(40, 30, CV_32FC1);
  cv::RNG rng(7);
  rng.fill(image, cv::RNG::UNIFORM, 0.0, 1.0);
  cv::GaussianBlur(image, image, cv::Size(5, 5), 0);
  cv::Mat shifted = image * 0.6 + 0.25;
  PreprocessConfig config;
  config.image_size = 16;
  const double plain = cv::norm(prepare_display(image, config), prepare_display(shifted, config), cv::NORM_INF);
  CHECK(plain > 0.1);
  config.intensity = "percentile";
  const double stretched = cv::norm(prepare_display(image, config), prepare_display(shifted, config), cv::NORM_INF);
  CHECK(stretched < 1e-4);
  // The letterbox padding stays black: the stretch sees the content only.
  const cv::Mat out = prepare_display(image, config);
  CHECK(out.at<float>(0, 0) == Approx((0.0 - config.mean) / config.std));
}

TEST_CASE("shades-of-grey colour constancy: hand-computed gains, a grey image unchanged, clipping", "[preprocess]") {
  // Two pixels per channel, p = 1 so that e_c is the plain mean: B (0.2, 0.4) -> 0.3,
  // G (0.5, 0.5) -> 0.5, R (0.6, 0.8) -> 0.7. |e| = sqrt(0.09 + 0.25 + 0.49) = 0.911043;
  // gains |e| / (sqrt(3) e_c) = 1.753304, 1.051982, 0.751416.
  cv::Mat image(1, 2, CV_32FC3);
  image.at<cv::Vec3f>(0, 0) = cv::Vec3f(0.2f, 0.5f, 0.6f);
  image.at<cv::Vec3f>(0, 1) = cv::Vec3f(0.4f, 0.5f, 0.8f);
  shades_of_grey(image, 1.0);
  CHECK(image.at<cv::Vec3f>(0, 0)[0] == Approx(0.2 * 1.753304).epsilon(1e-5));
  CHECK(image.at<cv::Vec3f>(0, 1)[0] == Approx(0.4 * 1.753304).epsilon(1e-5));
  CHECK(image.at<cv::Vec3f>(0, 0)[1] == Approx(0.5 * 1.051982).epsilon(1e-5));
  CHECK(image.at<cv::Vec3f>(0, 1)[2] == Approx(0.8 * 0.751416).epsilon(1e-5));
  // A grey image has a grey illuminant: left as it was.
  cv::Mat grey(3, 3, CV_32FC3, cv::Scalar(0.3, 0.3, 0.3));
  grey.at<cv::Vec3f>(1, 1) = cv::Vec3f(0.9f, 0.9f, 0.9f);
  const cv::Mat before = grey.clone();
  shades_of_grey(grey);
  CHECK(cv::norm(grey, before, cv::NORM_INF) < 1e-6);
  // A dim channel's gain above 1 can push values past white: clipped.
  cv::Mat cast(1, 2, CV_32FC3);
  cast.at<cv::Vec3f>(0, 0) = cv::Vec3f(0.05f, 0.9f, 0.9f);
  cast.at<cv::Vec3f>(0, 1) = cv::Vec3f(0.95f, 0.9f, 0.9f);
  shades_of_grey(cast, 1.0);
  CHECK(cast.at<cv::Vec3f>(0, 1)[0] == 1.0f);
}

TEST_CASE("with colour constancy a white-balance cast no longer changes the colour the model sees", "[preprocess]") {
  // The same lesion under a warm cast (red x1.25, blue x0.8): without constancy the input's
  // chromaticity moves; with it, the two inputs differ by one overall brightness factor only.
  cv::Mat image(40, 40, CV_32FC3);
  cv::RNG rng(3);
  rng.fill(image, cv::RNG::UNIFORM, 0.1, 0.7);
  cv::GaussianBlur(image, image, cv::Size(7, 7), 0);
  cv::Mat warm;
  cv::multiply(image, cv::Scalar(0.8, 1.0, 1.25), warm);
  PreprocessConfig config;
  config.channels = 3;
  config.image_size = 16;
  config.mean = 0.0;  // the input is then the processed display image scaled by 1/std
  auto chroma_gap = [&](const cv::Mat& a, const cv::Mat& b) {
    // Largest difference of blue/green and red/green ratios over the content pixels.
    const cv::Mat pa = prepare_display(a, config), pb = prepare_display(b, config);
    double gap = 0;
    for (int y = 0; y < pa.rows; ++y) {
      for (int x = 0; x < pa.cols; ++x) {
        const auto u = pa.at<cv::Vec3f>(y, x), v = pb.at<cv::Vec3f>(y, x);
        if (u[1] <= 0 || v[1] <= 0) continue;  // letterbox padding
        gap = std::max({gap, static_cast<double>(std::abs(u[0] / u[1] - v[0] / v[1])),
                        static_cast<double>(std::abs(u[2] / u[1] - v[2] / v[1]))});
      }
    }
    return gap;
  };
  CHECK(chroma_gap(image, warm) > 0.1);
  config.colour_constancy = "shades-of-grey";
  CHECK(chroma_gap(image, warm) < 1e-4);
}
