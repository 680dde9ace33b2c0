// The heatmap methods: one table, from which everything else is derived. `--method`'s allowed
// values and help text, the error for an unknown method, the method flags of diagnose and
// evaluate, the bash completion and the man page all read it; explain() dispatches through it.
//
// Adding a method: write src/explain/methods/<name>.cpp defining its function (see
// OneViewFn), add one line to the table in registry.cpp, and a test. A method with options of
// its own also adds its fields to ExplainOptions (options.h) and its flags to kOptions there.
//
// Torch-free (the function types are declared with forward declarations), so that the CLI and
// the option structs of other modules can include it cheaply.
#pragma once

#include <string>
#include <vector>

#include "explain/options.h"

namespace at {
class Tensor;
}
namespace medattn::model {
class AttnNet;
}

namespace medattn::explain {

struct Explanation;  // explain/methods.h

// One network and one orientation of x ([B,C,S,S] normalised input; clinical [B,F] or
// undefined): the logits ([B,K]), the classes explained (`targets` resolved: -1 or missing =
// the predicted class) and the maps ([B,S,S], scaled as options.absolute says). The net is
// already in eval mode. explain() averages these over views and networks.
using OneViewFn = Explanation(model::AttnNet& net, const at::Tensor& x, const ExplainOptions& options,
                              const std::vector<int>& targets, const at::Tensor& clinical);

// A method that combines networks and views itself (contrast: signed maps), in place of a
// OneViewFn: the whole explanation, as explain() promises it.
using WholeFn = Explanation(const std::vector<model::AttnNet>& nets, const at::Tensor& x, const ExplainOptions& options,
                            const std::vector<int>& targets, const at::Tensor& clinical, const std::vector<int>& views);

struct MethodInfo {
  const char* name;         // what --method takes
  const char* description;  // one phrase for --method's help
  // Runs a backward pass. A lone image is then explained beside a copy of itself, so that its
  // map does not depend on the batch it came in (see explain()).
  bool gradient = false;
  // Does not depend on the model (random, centre): computed once for an ensemble, never
  // averaged over views, always scaled to [0,1].
  bool baseline = false;
  std::vector<std::string> options;  // the flags of kOptions (registry.cpp) it reads
  OneViewFn* one_view = nullptr;     // exactly one of one_view and whole is set
  WholeFn* whole = nullptr;
};

// diagnose's method when none is given, and evaluate's for --masks without --method (chosen by
// measurement: docs/heatmaps.md and README).
inline constexpr const char* kDefaultMethod = "saliency";

// Every method, in the order of --help and of the error text.
const std::vector<MethodInfo>& methods();
std::vector<std::string> method_names();

// The method called `name`. Throws medattn::Error(kInvalidArgument) "unknown heatmap method
// '<name>' (expected rollout, gradcam, ..., random or centre)" otherwise.
const MethodInfo& find_method(const std::string& name);

// ExplainOptions with their defaults and `method` (not checked).
ExplainOptions options_for(const std::string& method);

// `--method`'s help: "Heatmap method: rollout (...), gradcam (...), ... or centre (...)".
std::string method_help();

// A flag of a method, bound to a field of ExplainOptions. A number (whole or not) in [lo, hi],
// or one of `choices`.
struct MethodOption {
  const char* flag;  // "--occlusion-patch"
  const char* help;
  std::vector<std::string> choices;  // empty: a number
  bool whole = false;                // a number: an integer
  double lo = 0, hi = 0;             // a number: its range (inclusive)
  bool show_default = true;          // --help shows the default (get() of the defaults)
  // Stores a value already checked against the range or the choices.
  void (*set)(ExplainOptions& options, const std::string& value) = nullptr;
  // The field's value as text, for --help's default.
  std::string (*get)(const ExplainOptions& options) = nullptr;
};

// Every method's flags, each once (saliency and contrast share --saliency-sigma), in the order
// of --help.
const std::vector<MethodOption>& method_options();

// Checks the method name and the option values a caller can get wrong, before anything runs.
// Throws medattn::Error(kInvalidArgument): an unknown method (see find_method), "--discard-ratio
// must be in [0, 1)", and with input_size > 0 for occlusion "--occlusion-patch and
// --occlusion-stride must be in [1, <input_size>]".
void check_options(const ExplainOptions& options, int input_size = 0);

}  // namespace medattn::explain
