#include "core/threads.h"

#include <ATen/Parallel.h>
#include <opencv2/core.hpp>

#include <malloc.h>

#include <algorithm>
#include <thread>

namespace medattn {

int resolve_threads(int n) {
  return n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int set_threads(int n) {
  n = resolve_threads(n);
  at::set_num_threads(n);
  cv::setNumThreads(n);
  return n;
}

void tune_allocator() {
  constexpr int kThreshold = 32 << 20;
  mallopt(M_MMAP_THRESHOLD, kThreshold);
  mallopt(M_TRIM_THRESHOLD, kThreshold);
}

}  // namespace medattn
