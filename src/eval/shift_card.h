// Keeping a shift benchmark's result in the model's card, beside its validation figures.
#pragma once

#include <string>

#include "eval/shift.h"

namespace medattn::eval {

// Writes `result` into MODEL_DIR's card: "validation" -> "shift" (shift_card_record, with
// `data` naming what it ran on) and the shift sentence of its intended use's limitations
// (replacing an earlier one). The card is rewritten atomically; the weights, and so the
// model's id, stay as they are.
void record_shift_in_card(const std::string& model_dir, const ShiftResult& result, const std::string& data);

}  // namespace medattn::eval
