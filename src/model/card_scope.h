// Two sections of the model card that say when a model should not answer: what it is meant
// for (`intended_use`), and its out-of-distribution gate (`ood`). Torch-free; card.cpp reads
// and writes them, pipeline/scope.h and model/ood.h use them.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace medattn::model {

// What the model was made for, as its card states it. Every field may be empty (unknown):
// a card without the section (written before it existed) accepts everything.
struct IntendedUse {
  std::vector<std::string> modalities;  // accepted DICOM Modality codes (upper case), e.g. {"CR","DX"}
  std::string body_part;                // DICOM BodyPartExamined (upper case), e.g. "CHEST"; empty: any
  std::string view;                     // e.g. "frontal (PA/AP)"; informative
  std::string colour;                   // "grey" or "colour"; empty: as the input channels say
  std::string population;               // who the training images came from
  std::string description;              // what it does
  std::string limitations;              // what it was not shown or does badly
  // The patients' ages in years, both ends included, e.g. {1, 5}; none: any age. A DICOM file
  // whose PatientAge (or birth and study dates) falls outside abstains (pipeline/scope.h).
  std::optional<std::pair<double, double>> age_years;
  bool empty() const {
    return modalities.empty() && body_part.empty() && view.empty() && colour.empty() && population.empty() &&
           description.empty() && limitations.empty() && !age_years;
  }
};

// "1-5 years", "0.5-17 years" (at most two decimals, trailing zeros dropped).
std::string describe_ages(const std::pair<double, double>& years);
// Parses "MIN-MAX" in years (0 <= MIN <= MAX <= 150); throws Error(kInvalidArgument) otherwise.
std::pair<double, double> parse_age_range(const std::string& text);

// The out-of-distribution gate (model/ood.h): a score per image, higher = less like the
// training images, and the threshold above which diagnose abstains.
struct OodGate {
  std::string method = "mahalanobis";  // "mahalanobis": min over classes, shared covariance
  // model/ood_features.h: "cls" (the CLS token after the final norm, what the head reads) or
  // "layers" (CLS, the mean image token and each CNN stage's mean channel response).
  std::string feature = "cls";
  std::string file;                    // the sidecar beside model.json, e.g. "ood.bin"; empty: no gate
  std::string sha256;                  // of `file` (64 lower-case hex digits); checked on load
  double threshold = 0;                // abstain when score > threshold
  double percentile = 98;              // of the validation scores, that gave the threshold
  nlohmann::json fit = nlohmann::json::object();  // data, counts, validation figures, command
  bool enabled() const { return !file.empty(); }
};

// JSON of the sections (card.cpp stores them under "intended_use" and "ood").
nlohmann::json intended_use_to_json(const IntendedUse& use);
nlohmann::json ood_to_json(const OodGate& gate);

// Parse the sections. Throw medattn::Error(kModel) "invalid model card '<source>': <key> ..."
// on a wrong type, an unknown colour, a sidecar that is not a plain file name, a bad digest,
// a non-finite threshold or a percentile outside (0, 100].
IntendedUse intended_use_from_json(const nlohmann::json& j, const std::string& source);
OodGate ood_from_json(const nlohmann::json& j, const std::string& source);

// "CR, DX" from {"CR","DX"}.
std::string join_list(const std::vector<std::string>& items);

// Parses a comma list "cr, DX" into upper-case, trimmed, non-empty items {"CR","DX"}.
std::vector<std::string> parse_upper_list(const std::string& text);

// Lines for `medattn info` (each "key: value\n", aligned like describe_card's).
std::string describe_scope(const IntendedUse& use, const OodGate& gate);

}  // namespace medattn::model
