// Text helpers for names typed by people or found on disks (core/text.h).
#include <catch2/catch.hpp>
#include <string>

#include "core/text.h"

using namespace medattn;

TEST_CASE("UTF-8 is checked strictly, and bytes outside it are escaped or hex-encoded reversibly", "[core][text]") {
  CHECK(valid_utf8("plain.png"));
  CHECK(valid_utf8("r\xc3\xb6ntgen.png"));        // ö
  CHECK(!valid_utf8("b_latin1-\xe9.png"));       // Latin-1 é
  CHECK(!valid_utf8("\xc0\xaf"));                // overlong '/'
  CHECK(!valid_utf8("\xed\xa0\x80"));            // a surrogate
  CHECK(!valid_utf8("\xe2\x82"));                // cut short
  CHECK(utf8_or_escaped("b_latin1-\xe9.png") == "b_latin1-\\xe9.png");
  CHECK(utf8_or_escaped("r\xc3\xb6ntgen") == "r\xc3\xb6ntgen");
  const std::string bytes = "in/\xe9\xff\x01";
  CHECK(to_hex(bytes) == "696e2fe9ff01");
  std::string back;
  CHECK(from_hex(to_hex(bytes), &back));
  CHECK(back == bytes);
  CHECK(!from_hex("abc", &back));
  CHECK(!from_hex("zz", &back));
  CHECK(back == bytes);
}

TEST_CASE("printable shows control characters and stray bytes escaped and keeps printable text", "[core][text]") {
  CHECK(printable("x-\x1b]0;t\x07.png") == "x-\\x1b]0;t\\x07.png");
  CHECK(printable("tab\there\nDEL\x7f") == "tab\\x09here\\x0aDEL\\x7f");
  CHECK(printable("csi-\xc2\x9b" "2J") == "csi-\\u009b2J");  // C1 CSI
  CHECK(printable("r\xc3\xb6ntgen \xe9.png") == "r\xc3\xb6ntgen \\xe9.png");
  CHECK(printable("plain/a_b.png") == "plain/a_b.png");
}

TEST_CASE("ends_with, fixed and the shape strings say exactly what messages print", "[core][text]") {
  CHECK(ends_with("scan.nii.gz", ".nii.gz"));
  CHECK(ends_with("x", ""));
  CHECK(!ends_with("scan.NII", ".nii"));  // case-sensitive: callers lower() first
  CHECK(!ends_with("gz", ".nii.gz"));
  CHECK(fixed(0.97251, 3) == "0.973");
  CHECK(fixed(2.0, 0) == "2");
  CHECK(fixed(-0.5, 2) == "-0.50");
  CHECK(shape_string({1, 3, 224, 224}) == "[1,3,224,224]");
  CHECK(shape_string({}) == "[]");
  CHECK(numpy_shape_string({2, 28, 28}) == "(2, 28, 28)");
  CHECK(numpy_shape_string({5}) == "(5,)");
  CHECK(numpy_shape_string({}) == "()");
  CHECK(join({"a", "b", "c"}, ", ") == "a, b, c");
  CHECK(join({}, ", ") == "");
}
