#include "io/patient_age.h"

#include <cctype>
#include <cstdlib>

#include "core/text.h"

namespace medattn::io {
namespace {

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
long days_from_civil(long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long>(doe) - 719468;
}

std::optional<long> date_days(const std::string& text) {
  const std::string s = trim(text);
  if (s.size() != 8 || !all_digits(s)) return std::nullopt;
  const long y = std::strtol(s.substr(0, 4).c_str(), nullptr, 10);
  const unsigned m = static_cast<unsigned>(std::strtoul(s.substr(4, 2).c_str(), nullptr, 10));
  const unsigned d = static_cast<unsigned>(std::strtoul(s.substr(6, 2).c_str(), nullptr, 10));
  static const unsigned month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1800 || m < 1 || m > 12 || d < 1 || d > month_days[m - 1]) return std::nullopt;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return std::nullopt;
  return days_from_civil(y, m, d);
}

}  // namespace

std::optional<double> parse_age_string(const std::string& text) {
  const std::string s = trim(text);
  if (s.size() < 2 || s.size() > 4) return std::nullopt;
  const std::string number = s.substr(0, s.size() - 1);
  if (!all_digits(number)) return std::nullopt;
  const double n = std::strtod(number.c_str(), nullptr);
  switch (s.back()) {
    case 'D': return n / 365.25;
    case 'W': return n * 7.0 / 365.25;
    case 'M': return n / 12.0;
    case 'Y': return n;
    default: return std::nullopt;
  }
}

std::optional<double> years_between(const std::string& birth, const std::string& on) {
  const auto b = date_days(birth), o = date_days(on);
  if (!b || !o || *o < *b) return std::nullopt;
  return static_cast<double>(*o - *b) / 365.25;
}

std::optional<PatientAge> patient_age(const std::string& age_string, const std::string& birth_date,
                                      const std::string& study_date, const std::string& series_date,
                                      const std::string& acquisition_date, const std::string& content_date) {
  if (const auto years = parse_age_string(age_string)) return PatientAge{*years, "PatientAge '" + trim(age_string) + "'"};
  const std::pair<const char*, const std::string*> dates[] = {
      {"StudyDate", &study_date}, {"SeriesDate", &series_date}, {"AcquisitionDate", &acquisition_date}, {"ContentDate", &content_date}};
  for (const auto& [name, date] : dates) {
    if (!date_days(*date)) continue;
    if (const auto years = years_between(birth_date, *date)) {
      return PatientAge{*years, "PatientBirthDate " + trim(birth_date) + " and " + name + " " + trim(*date)};
    }
    return std::nullopt;  // the first valid date decides
  }
  return std::nullopt;
}

}  // namespace medattn::io
