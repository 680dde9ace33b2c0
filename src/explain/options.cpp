#include "explain/options.h"

#include "core/error.h"
#include "explain/registry.h"

namespace medattn::explain {

HeadFusion parse_head_fusion(const std::string& name) {
  if (name == "mean") return HeadFusion::kMean;
  if (name == "max") return HeadFusion::kMax;
  if (name == "min") return HeadFusion::kMin;
  throw Error(ErrorKind::kInvalidArgument,
              "unknown head fusion '" + name + "' (expected mean, max or min)");
}

const char* head_fusion_name(HeadFusion fusion) {
  switch (fusion) {
    case HeadFusion::kMax: return "max";
    case HeadFusion::kMin: return "min";
    case HeadFusion::kMean: break;
  }
  return "mean";
}

std::string parse_method(const std::string& name) { return find_method(name).name; }

}  // namespace medattn::explain
