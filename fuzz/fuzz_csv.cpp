// The CSV dataset reader: RFC 4180 parsing, header columns, labels, splits, paths.
#include "core/error.h"
#include "fuzz_common.h"
#include "io/csv.h"
#include "io/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = medattn::fuzz::write_input("input.csv", data, size);
  try {
    (void)medattn::io::parse_csv(std::string(reinterpret_cast<const char*>(data), size), path);
  } catch (const medattn::Error&) {
  }
  try {
    (void)medattn::io::load_dataset(path);
  } catch (const medattn::Error&) {
  }
  return 0;
}
