#include "explain/options.h"

#include "core/error.h"

namespace medattn::explain {
namespace {

struct MethodName {
  Method method;
  const char* name;
};
constexpr MethodName kMethods[] = {{Method::kRollout, "rollout"},     {Method::kGradCam, "gradcam"},
                                   {Method::kAttnGrad, "attn-grad"},  {Method::kSaliency, "saliency"},
                                   {Method::kOcclusion, "occlusion"}, {Method::kContrast, "contrast"},
                                   {Method::kRandom, "random"},       {Method::kCentre, "centre"}};

}  // namespace

HeadFusion parse_head_fusion(const std::string& name) {
  if (name == "mean") return HeadFusion::kMean;
  if (name == "max") return HeadFusion::kMax;
  if (name == "min") return HeadFusion::kMin;
  throw Error(ErrorKind::kInvalidArgument,
              "unknown head fusion '" + name + "' (expected mean, max or min)");
}

Method parse_method(const std::string& name) {
  for (const auto& m : kMethods) {
    if (name == m.name) return m.method;
  }
  throw Error(ErrorKind::kInvalidArgument,
              "unknown heatmap method '" + name + "' (expected rollout, gradcam, attn-grad, saliency, occlusion, contrast, random or centre)");
}

const char* method_name(Method method) {
  for (const auto& m : kMethods) {
    if (m.method == method) return m.name;
  }
  return "unknown";
}

}  // namespace medattn::explain
