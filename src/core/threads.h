// The process's compute threads: LibTorch's intra-op pool and OpenCV's.
#pragma once

namespace medattn {

// Sets the threads used by LibTorch and OpenCV; n <= 0 means all cores. Returns the count.
// Call it on the thread that computes: LibTorch's setting belongs to the calling thread's pool
// (a thread started later takes it with at::init_num_threads()).
int set_threads(int n);

}  // namespace medattn
