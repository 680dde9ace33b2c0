// Hashes: SHA-256 (FIPS 180-4) for fingerprinting model weights, and FNV-1a 64 for cheap,
// stable keys (shard assignment, duplicate images).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace medattn {

// Incremental SHA-256: update() any number of times, then hex_digest() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t bytes);
  void update(const std::string& bytes) { update(bytes.data(), bytes.size()); }
  // The 64-character lower-case hex digest. REQUIRES: called once; no update() after it.
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t length_ = 0;  // bytes hashed so far
};

// FNV-1a 64 of `bytes` bytes. Stable across runs, machines and releases.
uint64_t fnv1a64(const void* data, size_t bytes);

// SHA-256 of a string of bytes, as hex.
std::string sha256_hex(const std::string& bytes);

// SHA-256 of a file's contents, as hex. Throws medattn::Error(kNotFound/kIOError) naming it.
std::string sha256_file(const std::string& path);

}  // namespace medattn
