#include "model/card_scope.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "core/text.h"

namespace medattn::model {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& source, const std::string& why) {
  throw file_error(ErrorKind::kModel, "invalid model card", source, why);
}

template <typename T>
void get(const json& obj, const char* section, const char* key, T* out, const std::string& source) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    invalid(source, std::string(section) + "." + key + " has the wrong type (got " + it->type_name() + ")");
  }
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool is_hex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The one rule for an age range, from the command line or from a card.
bool valid_ages(double lo, double hi) { return lo >= 0 && lo <= hi && hi <= 150; }

}  // namespace

std::string join_list(const std::vector<std::string>& items) { return join(items, ", "); }

std::vector<std::string> parse_upper_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    item = upper(trim(item));
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string describe_ages(const std::pair<double, double>& years) {
  auto number = [](double v) {
    std::string s = fixed(v, 2);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
  };
  return number(years.first) + "-" + number(years.second) + " years";
}

std::pair<double, double> parse_age_range(const std::string& text) {
  const auto dash = text.find('-', 1);
  char* end = nullptr;
  double lo = -1, hi = -1;
  bool ok = dash != std::string::npos;
  if (ok) {
    const std::string a = trim(text.substr(0, dash)), b = trim(text.substr(dash + 1));
    lo = std::strtod(a.c_str(), &end);
    ok = !a.empty() && *end == '\0';
    hi = std::strtod(b.c_str(), &end);
    ok = ok && !b.empty() && *end == '\0';
  }
  if (!ok || !valid_ages(lo, hi)) {
    throw Error(ErrorKind::kInvalidArgument, "age range '" + text + "' is not MIN-MAX in years with 0 <= MIN <= MAX <= 150");
  }
  return {lo, hi};
}

json intended_use_to_json(const IntendedUse& u) {
  json j = {{"modalities", u.modalities}, {"body_part", u.body_part},     {"view", u.view},
            {"colour", u.colour},         {"population", u.population},   {"description", u.description},
            {"limitations", u.limitations}};
  if (u.age_years) j["age_years"] = {u.age_years->first, u.age_years->second};
  return j;
}

IntendedUse intended_use_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) invalid(source, "intended_use must be an object");
  IntendedUse u;
  get(j, "intended_use", "modalities", &u.modalities, source);
  for (auto& m : u.modalities) m = upper(trim(m));
  get(j, "intended_use", "body_part", &u.body_part, source);
  u.body_part = upper(trim(u.body_part));
  get(j, "intended_use", "view", &u.view, source);
  get(j, "intended_use", "colour", &u.colour, source);
  u.colour = lower_trimmed(u.colour);
  if (!u.colour.empty() && u.colour != "grey" && u.colour != "colour") {
    invalid(source, "intended_use.colour '" + u.colour + "' is not grey or colour");
  }
  get(j, "intended_use", "population", &u.population, source);
  get(j, "intended_use", "description", &u.description, source);
  get(j, "intended_use", "limitations", &u.limitations, source);
  if (j.contains("age_years")) {
    const json& a = j["age_years"];
    if (!a.is_array() || a.size() != 2 || !a[0].is_number() || !a[1].is_number() ||
        !valid_ages(a[0].get<double>(), a[1].get<double>())) {
      invalid(source, "intended_use.age_years must be [min, max] in years with 0 <= min <= max <= 150");
    }
    u.age_years = std::make_pair(a[0].get<double>(), a[1].get<double>());
  }
  return u;
}

json ood_to_json(const OodGate& g) {
  return {{"method", g.method},
          {"feature", g.feature},
          {"file", g.file},
          {"sha256", g.sha256},
          {"threshold", g.threshold},
          {"percentile", g.percentile},
          {"rule", "abstain when the score is above the threshold, the " + std::to_string(static_cast<int>(g.percentile)) +
                       "th percentile of the validation images' scores"},
          {"fit", g.fit}};
}

OodGate ood_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) invalid(source, "ood must be an object");
  OodGate g;
  get(j, "ood", "method", &g.method, source);
  if (g.method != "mahalanobis") invalid(source, "ood.method '" + g.method + "' is not supported (expected mahalanobis)");
  get(j, "ood", "feature", &g.feature, source);
  if (g.feature != "cls" && g.feature != "layers") invalid(source, "ood.feature '" + g.feature + "' is not cls or layers");
  get(j, "ood", "file", &g.file, source);
  const bool plain = !g.file.empty() && g.file != "." && g.file != ".." && g.file.find_first_of("/\\") == std::string::npos;
  if (!plain) invalid(source, "ood.file '" + g.file + "' is not a file name beside the card");
  get(j, "ood", "sha256", &g.sha256, source);
  if (!is_hex64(g.sha256)) invalid(source, "ood.sha256 must be 64 lower-case hex digits");
  get(j, "ood", "threshold", &g.threshold, source);
  if (!std::isfinite(g.threshold)) invalid(source, "ood.threshold must be a finite number");
  get(j, "ood", "percentile", &g.percentile, source);
  if (!(g.percentile > 0 && g.percentile <= 100)) invalid(source, "ood.percentile must be in (0, 100]");
  if (j.contains("fit") && j["fit"].is_object()) g.fit = j["fit"];
  return g;
}

std::string describe_scope(const IntendedUse& u, const OodGate& g) {
  std::ostringstream s;
  if (!u.empty()) {
    if (!u.description.empty()) s << "intended use:  " << u.description << "\n";
    if (!u.modalities.empty()) s << "modalities:    " << join_list(u.modalities) << " (DICOM Modality)\n";
    if (!u.body_part.empty()) s << "body part:     " << u.body_part << "\n";
    if (!u.view.empty()) s << "view:          " << u.view << "\n";
    if (!u.colour.empty()) s << "images:        " << u.colour << "\n";
    if (!u.population.empty()) s << "population:    " << u.population << "\n";
    if (u.age_years) s << "ages:          " << describe_ages(*u.age_years) << " (DICOM files of other ages abstain)\n";
    if (!u.limitations.empty()) s << "limitations:   " << u.limitations << "\n";
  }
  if (g.enabled()) {
    s << "ood gate:      " << g.method << " distance on the " << g.feature << " feature; abstains above " << g.threshold
      << " (" << g.percentile << "th percentile of validation); " << g.file << " sha256 " << g.sha256 << "\n";
  } else {
    s << "ood gate:      none (medattn fit-ood -m MODEL DATA fits one)\n";
  }
  return s.str();
}

}  // namespace medattn::model
