// Small string helpers shared by the readers of names typed by people (CSV headers, class
// names, covariate values, file extensions) and by the messages and reports.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace medattn {

// The items with `separator` between them (join({"a","b"}, ", ") == "a, b").
std::string join(const std::vector<std::string>& items, const std::string& separator);

// True when `s` ends with `suffix` (case-sensitive).
bool ends_with(const std::string& s, const std::string& suffix);

// `v` with exactly `digits` decimals, rounded as printf's "%.*f" ("0.973" for 0.97251, 3).
std::string fixed(double v, int digits);

// A tensor shape as LibTorch prints it: "[1,3,224,224]" ("[]" for a scalar).
std::string shape_string(const std::vector<int64_t>& shape);

// An array shape as NumPy prints it: "(2, 28, 28)", "(5,)" for one dimension, "()" for none.
std::string numpy_shape_string(const std::vector<int64_t>& shape);

// ASCII lower case.
std::string lower(std::string s);

// Without leading and trailing whitespace (space, tab, CR, LF, ...).
std::string trim(const std::string& s);

// lower(trim(s)).
std::string lower_trimmed(const std::string& s);

}  // namespace medattn

namespace medattn {

// True when `s` is well-formed UTF-8 (no stray continuation bytes, overlong forms,
// surrogates or code points above U+10FFFF): what a JSON writer accepts.
bool valid_utf8(const std::string& s);

// `s` with every byte that is not part of well-formed UTF-8 written as `\xHH` (two lower-case
// hex digits); well-formed text is kept as is. For JSON strings that are read by people only
// (error lines, heatmap paths): not reversible, since a name may itself hold "\xe9".
std::string utf8_or_escaped(const std::string& s);

// `s` as a terminal may show it: control characters (C0, DEL, C1) and bytes that are not
// well-formed UTF-8 written as `\xHH` (C1 as `\u0080`..`\u009f`), so that a file name cannot
// move the cursor, clear the screen or set the window title. Printable text is kept.
std::string printable(const std::string& s);

// The bytes of `s` as lower-case hex ("\xe9a" -> "e961").
std::string to_hex(const std::string& s);

// The bytes that to_hex() wrote; false (and `out` untouched) when `hex` has an odd length or
// a character that is not a hex digit.
bool from_hex(const std::string& hex, std::string* out);

}  // namespace medattn
