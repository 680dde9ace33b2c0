// The records an earlier run left in a diagnose output (jsonl or csv), read back whole, so that
// the HTML report of a resumed run shows the whole set and not only the run's own rows.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "report/record.h"

namespace medattn::pipeline {

// Every record of FILE (format by `csv`) whose `file` is in `keep` (the inputs --resume does
// not repeat), in file order, with the fields the report shows: file, diagnosis, probability,
// probabilities (by `classes`, the model's order), heatmap, error, abstained, ood_score,
// warning, model. When `thumbnail_size` > 0 and the record's overlay PNG still exists, its
// thumbnail is that PNG scaled to fit. A missing file gives nothing. Throws medattn::Error
// naming the file and line on a line that is not a record.
std::vector<report::DiagnosisRecord> read_earlier_records(const std::string& path, bool csv,
                                                          const std::vector<std::string>& classes,
                                                          const std::set<std::string>& keep, int thumbnail_size);

}  // namespace medattn::pipeline
