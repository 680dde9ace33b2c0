// Preprocessing as the card describes it.
#include <catch2/catch.hpp>

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

TEST_CASE("colour becomes grey with BT.601 weights", "[preprocess]") {
  cv::Mat bgr(1, 1, CV_32FC3, cv::Scalar(1.0, 0.0, 0.0));  // pure blue
  CHECK(to_grey(bgr).at<float>(0, 0) == Approx(0.114).margin(1e-3));
}
