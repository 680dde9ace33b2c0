// The table of heatmap methods (explain/registry.h). Torch-free: each method's function is
// defined in its own file, explain/methods/<name>.cpp.
#include "explain/registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace medattn::explain {

// Each method's function (explain/methods/<name>.cpp).
OneViewFn explain_rollout, explain_gradcam, explain_attn_grad, explain_saliency, explain_occlusion, explain_random,
    explain_centre;
WholeFn explain_contrast;

namespace {

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  return buf;
}

// The flags of the methods, each once. A method lists the ones it reads in its row below.
// (Function-local statics: ready whenever they are first asked for.)
const std::vector<MethodOption>& options_table() {
  static const std::vector<MethodOption> kOptions = {
    {"--occlusion-patch", "Occlusion: patch side in model-input pixels", {}, true, 1, 4096, true,
     [](ExplainOptions& o, const std::string& v) { o.occlusion_patch = std::atoi(v.c_str()); },
     [](const ExplainOptions& o) { return std::to_string(o.occlusion_patch); }},
    {"--occlusion-stride", "Occlusion: step between patches", {}, true, 1, 4096, true,
     [](ExplainOptions& o, const std::string& v) { o.occlusion_stride = std::atoi(v.c_str()); },
     [](const ExplainOptions& o) { return std::to_string(o.occlusion_stride); }},
    {"--saliency-sigma", "Saliency, contrast: blur sigma in model-input pixels (default: input size / 24; 0 = none)", {},
     false, 0, 1000, /*show_default=*/false,
     [](ExplainOptions& o, const std::string& v) { o.saliency_sigma = std::strtod(v.c_str(), nullptr); },
     [](const ExplainOptions& o) { return number_text(o.saliency_sigma); }},
    {"--head-fusion", "Rollout: fuse heads by mean, max or min", {"mean", "max", "min"}, false, 0, 0, true,
     [](ExplainOptions& o, const std::string& v) { o.rollout.head_fusion = parse_head_fusion(v); },
     [](const ExplainOptions& o) { return std::string(head_fusion_name(o.rollout.head_fusion)); }},
    {"--discard-ratio", "Rollout: share of the weakest attention dropped per row, in [0,1)", {}, false, 0, 0.999, true,
     [](ExplainOptions& o, const std::string& v) { o.rollout.discard_ratio = std::strtod(v.c_str(), nullptr); },
     [](const ExplainOptions& o) { return number_text(o.rollout.discard_ratio); }},
  };
  return kOptions;
}

// name, description, gradient, baseline, flags, function
const std::vector<MethodInfo>& methods_table() {
  static const std::vector<MethodInfo> kMethods = {
    {"rollout", "attention rollout of the CLS token", false, false, {"--head-fusion", "--discard-ratio"}, explain_rollout},
    {"gradcam", "Grad-CAM on the last CNN stage", true, false, {}, explain_gradcam},
    {"attn-grad", "gradient-weighted attention through the blocks", true, false, {}, explain_attn_grad},
    {"saliency", "smoothed input-gradient magnitude", true, false, {"--saliency-sigma"}, explain_saliency},
    {"occlusion", "drop in probability when a patch is blurred away", false, false,
     {"--occlusion-patch", "--occlusion-stride"}, explain_occlusion},
    {"contrast", "signed: evidence for the class in red, against it in blue", true, false, {"--saliency-sigma"}, nullptr,
     explain_contrast},
    {"random", "baseline: a smooth random map", false, true, {}, explain_random},
    {"centre", "baseline: a centred Gaussian", false, true, {}, explain_centre},
  };
  return kMethods;
}

// "a, b, c or d"
std::string choice_list(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  return s;
}

}  // namespace

const std::vector<MethodInfo>& methods() { return methods_table(); }

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const auto& m : methods_table()) names.emplace_back(m.name);
  return names;
}

const MethodInfo& find_method(const std::string& name) {
  for (const auto& m : methods_table()) {
    if (name == m.name) return m;
  }
  throw Error(ErrorKind::kInvalidArgument, "unknown heatmap method '" + name + "' (expected " + choice_list(method_names()) + ")");
}

ExplainOptions options_for(const std::string& method) {
  ExplainOptions o;
  o.method = method;
  return o;
}

std::string method_help() {
  std::vector<std::string> items;
  for (const auto& m : methods_table()) items.push_back(std::string(m.name) + " (" + m.description + ")");
  return "Heatmap method: " + choice_list(items);
}

const std::vector<MethodOption>& method_options() { return options_table(); }

void check_options(const ExplainOptions& options, int input_size) {
  const MethodInfo& m = find_method(options.method);
  if (options.rollout.discard_ratio < 0.0 || options.rollout.discard_ratio >= 1.0) {
    throw Error(ErrorKind::kInvalidArgument, "--discard-ratio must be in [0, 1)");
  }
  const bool occlusion = std::find(m.options.begin(), m.options.end(), "--occlusion-patch") != m.options.end();
  if (input_size > 0 && occlusion &&
      (options.occlusion_patch < 1 || options.occlusion_stride < 1 || options.occlusion_patch > input_size)) {
    throw Error(ErrorKind::kInvalidArgument, "--occlusion-patch and --occlusion-stride must be in [1, " +
                                                 std::to_string(input_size) + "]");
  }
}

}  // namespace medattn::explain
