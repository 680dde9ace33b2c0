// SHA-256 against the FIPS 180-4 test vectors and a file.
#include "core/sha256.h"

#include <catch2/catch.hpp>
#include <algorithm>
#include <fstream>

#include "core/error.h"
#include "support/temp_dir.h"

using medattn::sha256_file;
using medattn::sha256_hex;

TEST_CASE("SHA-256 matches the standard vectors, whole and fed in pieces", "[core]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 55 and 64 bytes: the padding edge cases (length fits in the block / a whole block).
  CHECK(sha256_hex(std::string(55, 'x')) == "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
  CHECK(sha256_hex(std::string(64, 'x')) == "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
  medattn::Sha256 h;
  const std::string a(1000000, 'a');
  // Pieces of 1..97 bytes, so that block boundaries fall everywhere inside them.
  for (size_t pos = 0, n = 1; pos < a.size(); pos += n, n = n % 97 + 1) h.update(a.data() + pos, std::min(n, a.size() - pos));
  CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256_file hashes a file's bytes and names a missing one", "[core]") {
  medattn::testing::TempDir dir;
  const auto path = (dir.path / "f.bin").string();
  std::ofstream(path, std::ios::binary) << "abc";
  CHECK(sha256_file(path) == sha256_hex("abc"));
  CHECK_THROWS_AS(sha256_file((dir.path / "none").string()), medattn::Error);
}
