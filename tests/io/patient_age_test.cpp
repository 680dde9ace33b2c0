// The patient's age from DICOM attributes (io/patient_age.h): Age Strings and dates, and what
// is not an age.
#include <catch2/catch.hpp>

#include "io/patient_age.h"

using namespace medattn::io;

TEST_CASE("Age Strings in days, weeks, months and years, and anything else is no age", "[io][dicom]") {
  CHECK(parse_age_string("054Y") == 54.0);
  CHECK(parse_age_string(" 003Y ") == 3.0);
  CHECK(*parse_age_string("018M") == Approx(1.5));
  CHECK(*parse_age_string("026W") == Approx(26 * 7 / 365.25));
  CHECK(*parse_age_string("200D") == Approx(200 / 365.25));
  for (const char* bad : {"", "Y", "54", "054y", "0054Y", "5.5Y", "-05Y", "054X", "O54Y"}) {
    INFO(bad);
    CHECK_FALSE(parse_age_string(bad));
  }
}

TEST_CASE("years between two dates count days over 365.25, and invalid dates or time running back give no age",
          "[io][dicom]") {
  CHECK(*years_between("20000229", "20010301") == Approx(366 / 365.25));
  CHECK(*years_between("19700101", "20240101") == Approx(19723 / 365.25));
  CHECK(*years_between("20240101", "20240101") == 0.0);
  CHECK_FALSE(years_between("20240102", "20240101"));
  CHECK_FALSE(years_between("20230229", "20240101"));  // 2023 has no 29 February
  CHECK_FALSE(years_between("20231301", "20240101"));
  CHECK_FALSE(years_between("2023-01-01", "20240101"));
  CHECK_FALSE(years_between("", "20240101"));
}

TEST_CASE("PatientAge first, then the birth date against the first valid study date", "[io][dicom]") {
  auto age = patient_age("010Y", "19000101", "20240101", "", "", "");
  REQUIRE(age);
  CHECK(age->years == 10.0);
  CHECK(age->source == "PatientAge '010Y'");
  age = patient_age("", "20200101", "", "20210101", "", "");
  REQUIRE(age);
  CHECK(age->years == Approx(366 / 365.25));
  CHECK(age->source == "PatientBirthDate 20200101 and SeriesDate 20210101");
  // An invalid PatientAge falls back to the dates; an invalid StudyDate to the next date.
  age = patient_age("abc", "20200101", "2021", "", "20220101", "");
  REQUIRE(age);
  CHECK(age->source == "PatientBirthDate 20200101 and AcquisitionDate 20220101");
  CHECK_FALSE(patient_age("", "", "20240101", "", "", ""));
  CHECK_FALSE(patient_age("", "20250101", "20240101", "", "", ""));  // born after the study
}
