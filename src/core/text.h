// Small string helpers shared by the readers of names typed by people (CSV headers, class
// names, covariate values, file extensions).
#pragma once

#include <string>

namespace medattn {

// ASCII lower case.
std::string lower(std::string s);

// Without leading and trailing whitespace (space, tab, CR, LF, ...).
std::string trim(const std::string& s);

// lower(trim(s)).
std::string lower_trimmed(const std::string& s);

}  // namespace medattn
