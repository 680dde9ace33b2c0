#include "pipeline/version.h"

#include <dcmtk/config/osconfig.h>
#include <torch/version.h>

#include <opencv2/core/version.hpp>

namespace medattn::pipeline {

std::string version_text() {
  return std::string("medattn ") + MEDATTN_VERSION + "\nLibTorch " + TORCH_VERSION + "\nOpenCV " + CV_VERSION +
         "\nDCMTK " + PACKAGE_VERSION + "\n";
}

}  // namespace medattn::pipeline
