// The model loader: the card (JSON, validation, bounds) and the weights file (magic, names,
// shapes, truncation). The input is split at its first NUL byte: card before, weights after.
#include <cstring>

#include "core/error.h"
#include "fuzz_common.h"
#include "model/card.h"
#include "model/net.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t card_size = nul ? static_cast<size_t>(nul - data) : size;
  const auto dir = medattn::fuzz::scratch() / "model";
  std::filesystem::create_directories(dir);
  medattn::fuzz::write_input("model/model.json", data, card_size);
  medattn::fuzz::write_input("model/weights.bin", nul ? nul + 1 : data + size, nul ? size - card_size - 1 : 0);
  try {
    (void)medattn::model::load_model(dir.string());
  } catch (const medattn::Error&) {
  }
  return 0;
}
