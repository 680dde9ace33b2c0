// Scope checks of diagnose (pipeline/scope.h): each refuses with its exact reason, and images
// the model is for pass every check.
#include <catch2/catch.hpp>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "io/image.h"
#include "model/card.h"
#include "pipeline/scope.h"
#include "support/helpers.h"

using namespace medattn;

namespace {

model::ModelCard chest_card() {
  model::ModelCard card;
  card.name = "pneumonia-cxr";
  card.classes = {"NORMAL", "PNEUMONIA"};
  card.preprocess.image_size = 64;
  card.preprocess.channels = 1;
  card.intended_use.modalities = {"CR", "DX"};
  card.intended_use.body_part = "CHEST";
  card.intended_use.colour = "grey";
  return card;
}

// A grey image with structure (a ramp plus a bright square), w x h, in 8-bit units.
io::Image ramp(int w, int h, io::FileFormat format = io::FileFormat::kPng) {
  io::Image image;
  image.pixels = cv::Mat(h, w, CV_32FC1);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) image.pixels.at<float>(y, x) = static_cast<float>(255.0 * x / std::max(1, w - 1));
  }
  image.pixels(cv::Rect(w / 4, h / 4, w / 4, h / 4)).setTo(200);
  image.window = io::window_from_range(0, 255);
  image.format = format;
  return image;
}

std::string check(const io::Image& image, const model::ModelCard& card) {
  return pipeline::scope_check(image, io::to_display(image), card);
}

}  // namespace

TEST_CASE("a chest radiograph in the card's scope passes every check", "[ood][scope]") {
  const auto card = chest_card();
  CHECK(check(ramp(224, 224), card).empty());
  auto dicom = ramp(224, 200, io::FileFormat::kDicom);
  dicom.modality = "dx";
  dicom.body_part = "Chest";
  CHECK(check(dicom, card).empty());  // case does not matter
  dicom.body_part.clear();            // a file that does not say passes
  CHECK(check(dicom, card).empty());
  // Grey content stored in three equal channels (as in the Kermany JPEGs) is not colour.
  auto rgb = ramp(100, 100);
  cv::cvtColor(rgb.pixels, rgb.pixels, cv::COLOR_GRAY2BGR);
  CHECK(check(rgb, card).empty());
  // A card without intended_use (written before it existed) takes any modality.
  auto old = card;
  old.intended_use = {};
  dicom.modality = "NM";
  CHECK(check(dicom, old).empty());
}

TEST_CASE("each scope check refuses with its exact reason", "[ood][scope]") {
  const auto card = chest_card();
  auto nm = ramp(128, 128, io::FileFormat::kDicom);
  nm.modality = "NM";
  nm.body_part = "WHOLE BODY";
  CHECK(check(nm, card) == "out of scope: DICOM Modality 'NM' (model 'pneumonia-cxr' takes CR, DX)");
  // A PNG has no modality: the DICOM checks do not apply.
  CHECK(check(ramp(128, 128), card).empty());

  auto body = ramp(128, 128, io::FileFormat::kDicom);
  body.modality = "CR";
  body.body_part = "WHOLE BODY";
  CHECK(check(body, card) == "out of scope: DICOM BodyPartExamined 'WHOLE BODY' (model 'pneumonia-cxr' takes CHEST)");
  auto brain = card;
  brain.name = "brain-mri";
  brain.intended_use.modalities = {"MR"};
  brain.intended_use.body_part = "HEAD, BRAIN";
  body.modality = "MR";
  body.body_part = "BRAIN";
  CHECK(check(body, brain).empty());
  body.body_part = "KNEE";
  CHECK(check(body, brain) == "out of scope: DICOM BodyPartExamined 'KNEE' (model 'brain-mri' takes HEAD, BRAIN)");

  // Too small: the longer side below half the input side (64 -> 32).
  CHECK(check(ramp(32, 20), card).empty());
  CHECK(check(ramp(31, 20), card) ==
        "out of scope: image 31x20 is too small for model 'pneumonia-cxr' (input 64 px; longer side at least 32)");

  io::Image blank = ramp(224, 224);
  blank.pixels.setTo(0);
  CHECK(check(blank, card) ==
        "out of scope: near-constant image after windowing (standard deviation 0.0000, minimum 0.01)");
  blank.pixels.setTo(255);
  CHECK(check(blank, card) ==
        "out of scope: near-constant image after windowing (standard deviation 0.0000, minimum 0.01)");
  // Faint noise (+-1 of 255) is still near-constant; a faint ramp over 5 grey levels is not.
  cv::randu(blank.pixels, 127.0, 129.0);
  CHECK(check(blank, card).rfind("out of scope: near-constant image after windowing (standard deviation 0.00", 0) == 0);

  io::Image photo;
  photo.pixels = cv::Mat(100, 100, CV_32FC3, cv::Scalar(40, 90, 200));  // BGR: a skin-like colour
  photo.pixels(cv::Rect(30, 30, 40, 40)).setTo(cv::Scalar(30, 40, 90));
  photo.window = io::window_from_range(0, 255);
  photo.format = io::FileFormat::kJpeg;
  CHECK(check(photo, card) == "out of scope: colour image for grey model 'pneumonia-cxr' (channel spread 0.565, limit 0.06)");
  auto colour_model = card;
  colour_model.intended_use.colour = "colour";
  colour_model.preprocess.channels = 3;
  CHECK(check(photo, colour_model).empty());
}

TEST_CASE("the whole-body bone scan of the shared DICOM files is out of scope for a chest model", "[ood][scope][shared]") {
  const std::string root = testdeps::shared_data_dir();
  MEDATTN_NEEDS(!root.empty(), "the shared data (" MEDATTN_SHARED_DATA ")");
  const auto image = io::read_image(root + "/dicom/pydicom/JPEG-lossy.dcm");
  CHECK(image.modality == "NM");
  CHECK(image.body_part == "WHOLE BODY");
  CHECK(check(image, chest_card()) == "out of scope: DICOM Modality 'NM' (model 'pneumonia-cxr' takes CR, DX)");
}

TEST_CASE("a DICOM file of a patient outside the card's ages is out of scope, and a file without an age passes", "[ood][scope]") {
  auto card = chest_card();
  card.intended_use.age_years = std::make_pair(1.0, 5.0);
  auto dicom = ramp(128, 128, io::FileFormat::kDicom);
  dicom.modality = "CR";
  dicom.patient_age = io::PatientAge{54.0, "PatientAge '054Y'"};
  CHECK(check(dicom, card) ==
        "out of scope: patient aged 54.0 years (PatientAge '054Y'); model 'pneumonia-cxr' is for patients aged 1-5 years");
  dicom.patient_age = io::PatientAge{0.5, "PatientAge '006M'"};
  CHECK(check(dicom, card) ==
        "out of scope: patient aged 0.5 years (PatientAge '006M'); model 'pneumonia-cxr' is for patients aged 1-5 years");
  // Both ends belong to the range.
  for (double years : {1.0, 3.2, 5.0}) {
    dicom.patient_age = io::PatientAge{years, "PatientAge"};
    CHECK(check(dicom, card).empty());
  }
  dicom.patient_age.reset();  // a file that does not say passes
  CHECK(check(dicom, card).empty());
  // A card without ages takes any.
  dicom.patient_age = io::PatientAge{54.0, "PatientAge '054Y'"};
  CHECK(check(dicom, chest_card()).empty());
}
