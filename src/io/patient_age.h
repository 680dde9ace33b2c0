// The patient's age from DICOM attributes, for the model's intended population (a model trained
// on children abstains on an adult's radiograph when the file says how old the patient was).
#pragma once

#include <optional>
#include <string>

namespace medattn::io {

struct PatientAge {
  double years = 0;
  std::string source;  // what it was read from, e.g. "PatientAge '054Y'"
};

// Age String (DICOM PS3.5 AS): "nnnD", "nnnW", "nnnM" or "nnnY" (surrounding spaces allowed).
// Days count 365.25 to the year, weeks 7 days, months 12 to the year. Anything else: none.
std::optional<double> parse_age_string(const std::string& text);

// Years between two DICOM dates (DA, "YYYYMMDD"), by days over 365.25: none when either is not a
// valid date or `on` comes before `birth`.
std::optional<double> years_between(const std::string& birth, const std::string& on);

// PatientAge when it is valid, else PatientBirthDate against the first valid date of `dates`
// (StudyDate, SeriesDate, AcquisitionDate, ContentDate in that order), else none.
std::optional<PatientAge> patient_age(const std::string& age_string, const std::string& birth_date,
                                      const std::string& study_date, const std::string& series_date,
                                      const std::string& acquisition_date, const std::string& content_date);

}  // namespace medattn::io
