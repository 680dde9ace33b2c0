#include "core/threads.h"

#include <ATen/Parallel.h>
#include <opencv2/core.hpp>

#include <algorithm>
#include <thread>

namespace medattn {

int set_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  cv::setNumThreads(n);
  return n;
}

}  // namespace medattn
