// The evaluate report: what `medattn evaluate` prints, as a library. From an EvaluateResult it
// derives the bootstrap intervals, the chance-level ECE, the `--compare` paired bootstrap and
// the ROC series, and formats the evaluate JSON contract (../shared/CLI.md) or the table.
// Nothing here prints; the CLI writes the returned text.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eval/evaluate.h"
#include "eval/metrics.h"
#include "report/roc_plot.h"

namespace medattn::eval {

// The evaluate JSON keys of ../shared/CLI.md plus balanced_accuracy and per_class: precision,
// recall, n (samples of the class) and auc (one-vs-rest). Values rounded to 6 decimals, NaN as
// null. Also the model card's "validation" block.
nlohmann::json metrics_to_json(const Metrics& m, const std::vector<std::string>& classes);

// {"mean": .., "p95": ..} of ece_if_calibrated(), rounded to 4 decimals (1000 draws do not
// support more): evaluate's "ece_if_calibrated" and the model card's.
nlohmann::json calibrated_ece_to_json(const CalibratedEce& chance);

// `--compare`: the other model evaluated on the same samples and the paired bootstrap.
struct Comparison {
  std::string other_model;        // as given on the command line
  PairedBootstrapResult paired;   // this - other, 1000 resamples, seed 1
};

// Paired bootstrap of `result` against `other` (run_evaluate of another model with the same
// options). Throws Error(kInvalidArgument) "--compare OTHER: the two models did not read the
// same samples, so they cannot be paired" when their labels differ.
Comparison compare_with(const EvaluateResult& result, const EvaluateResult& other, const std::string& other_model);

struct EvaluateReport {
  EvaluateResult result;
  BootstrapResult ci;                    // AUC and accuracy, 1000 resamples, seed 1
  CalibratedEce chance;                  // ECE a perfectly calibrated model would show here
  std::optional<Comparison> comparison;  // with --compare
  std::string class_map;                 // EvaluateOptions::class_map (shown when set)
  bool masks = false;                    // EvaluateOptions::masks was set: mask keys always in the JSON
};

// The report of a result: intervals and chance-level ECE computed (deterministic, seed 1).
EvaluateReport make_report(EvaluateResult result, const EvaluateOptions& options,
                           std::optional<Comparison> comparison = std::nullopt);

// The evaluate JSON object (../shared/CLI.md, "evaluate --format json"); scores rounded to 4
// decimals beside metrics_to_json()'s 6.
nlohmann::json report_json(const EvaluateReport& report);

// The evaluate table, as `medattn evaluate` prints it (lines end with '\n').
std::string report_table(const EvaluateReport& report);

// One ROC series per class (binary: the positive class only), labelled "NAME (AUC 0.xxx)",
// with the decision rule's operating point (sensitivity, 1 - specificity) from the confusion.
std::vector<report::RocSeries> roc_series(const EvaluateResult& result);

// What `medattn evaluate` does: options.evaluate through run_evaluate (and compare_model's
// model on the same data with --compare, heatmap metrics left out for it), the ROC plot written
// to roc_path when set, and the report formatted as `format` ("json": one line; "table").
struct EvaluateCommand {
  EvaluateOptions evaluate;
  std::string format = "table";  // table or json
  std::string roc_path;          // write the ROC curve PNG here (empty: none)
  std::string compare_model;     // --compare (empty: none)
  // --shift-to-card: keep the shift summary in the model's card (eval/shift_card.h); the
  // notice says so.
  bool shift_to_card = false;
};
struct EvaluateOutput {
  std::string text;  // to standard output
  int skipped = 0;   // samples that could not be read
};
// Throws medattn::Error as run_evaluate does; Error(kInvalidArgument) for an unknown format.
EvaluateOutput run_evaluate_command(const EvaluateCommand& command, const NoticeCallback& on_notice);

}  // namespace medattn::eval
