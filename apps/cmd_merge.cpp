// `medattn merge`: joins the outputs of diagnose shards into one file.
#include "cli.h"

#include <spdlog/spdlog.h>
#include <memory>

#include "core/text.h"
#include "pipeline/batch.h"

namespace medattn::cli {
namespace {

struct MergeArgs {
  std::vector<std::string> inputs, files;
  std::string out;
};

int run_merge_command(const std::vector<std::string>& files, const std::string& out, const std::vector<std::string>& inputs) {
  const auto r = pipeline::merge_outputs(files, out, inputs);
  spdlog::info("merged {} shard file(s) into {}: {} record(s)", r.shards, out, r.records);
  if (r.models.size() > 1) spdlog::warn("the shards were written by {} different models", r.models.size());
  for (const auto& f : r.duplicates) spdlog::warn("duplicate: '{}' is recorded more than once (the first record is kept)", printable(f));
  for (const auto& f : r.missing) spdlog::error("missing: '{}' is in the inputs but in no shard", printable(f));
  for (const auto& f : r.unexpected) spdlog::warn("unexpected: '{}' is recorded but not in the inputs", printable(f));
  spdlog::info("{} duplicate(s), {} missing{}", r.duplicates.size(), r.missing.size(), inputs.empty() ? " (not checked: no --inputs)" : "");
  return r.duplicates.empty() && r.missing.empty() && r.models.size() <= 1 ? kExitOk : kExitSomeFailed;
}

}  // namespace

Command add_merge(CLI::App& app) {
  auto a = std::make_shared<MergeArgs>();
  auto* merge = app.add_subcommand("merge", "Join the outputs of diagnose shards into one file; report missing and duplicated files");
  merge->add_option("files", a->files, "Shard outputs (all jsonl or all csv)")->required();
  merge->add_option("-o,--output", a->out, "Merged output (.jsonl or .csv), written atomically")->required();
  merge->add_option("--inputs", a->inputs, "The INPUTs the shards were run on: report inputs no shard recorded")->expected(1, -1);
  merge->footer("Example:\n  medattn merge part-*.jsonl -o results.jsonl --inputs archive/");
  return {merge, [a](const std::string&) { return run_merge_command(a->files, a->out, a->inputs); }};
}

}  // namespace medattn::cli
