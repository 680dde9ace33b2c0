#include "eval/shift_card.h"

#include <nlohmann/json.hpp>

#include "model/card.h"

namespace medattn::eval {

void record_shift_in_card(const std::string& model_dir, const ShiftResult& result, const std::string& data) {
  auto card = model::read_card(model_dir);
  if (!card.validation.is_object()) card.validation = nlohmann::json::object();
  card.validation["shift"] = shift_card_record(result, data);
  auto& limitations = card.intended_use.limitations;
  limitations = replace_shift_limitation(limitations, shift_limitation(result));
  model::write_card(model_dir, card);
}

}  // namespace medattn::eval
