// The parts of run_evaluate (eval/evaluate.h) in their own files, on the samples prepared as
// train/samples.h prepares them. Internal to eval/ (includes LibTorch through model/net.h).
#pragma once

#include <string>

#include "eval/evaluate.h"
#include "io/dataset.h"
#include "model/net.h"
#include "train/samples.h"

namespace medattn::eval {

// The gate's figures (GateMetrics) for a model on prepared DATA `t` (rows of `data`) with its
// calibrated predictions; reads the OOD sets of options.ood_data (evaluate_gate.cpp).
GateMetrics evaluate_gate(const model::LoadedModel& model, const train::Tensors& t, const io::Dataset& data,
                          const Predictions& predictions, const EvaluateOptions& options,
                          const NoticeCallback& on_notice);

// The shift benchmark (EvaluateOptions::shift) on the rows of `t` (prepared from `data`): every
// corruption of the set at severities 1..5 and the clean images, each through the card's
// preprocessing, decision rule, temperature, test-time flips and gate (shift_eval.cpp).
ShiftResult run_shift(const model::LoadedModel& model, const io::Dataset& data, const train::Tensors& t,
                      const EvaluateOptions& options, const NoticeCallback& on_notice);

// Heatmap metrics of `method` for the class each row of `t` is predicted as under the card's
// decision rule (`model_level`: the calibrated predictions over the model's own classes):
// deletion/insertion unless options.no_deletion, pointing game and IoU where masks exist, the
// card's heatmap scale reference (written to the model's card) with
// options.calibrate_heatmap_scale, the randomisation check (which re-initialises a copy of
// model.net, hence not const; heatmap_metrics.cpp).
HeatmapMetrics measure_heatmaps(model::LoadedModel& model, const io::Dataset& data, const train::Tensors& t,
                                const Predictions& model_level, const EvaluateOptions& options, const std::string& method,
                                const NoticeCallback& on_notice);

}  // namespace medattn::eval
