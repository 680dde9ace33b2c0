// What medattn runs with, for `medattn --version`.
#pragma once

#include <string>

namespace medattn::pipeline {

// "medattn 0.1.0\nLibTorch 1.13.1\nOpenCV 4.6.0\nDCMTK 3.6.7\n" (one per line).
std::string version_text();

}  // namespace medattn::pipeline
