// The process's compute threads: LibTorch's intra-op pool and OpenCV's.
#pragma once

namespace medattn {

// Sets the threads used by LibTorch and OpenCV; n <= 0 means all cores. Returns the count.
// Call it on the thread that computes: LibTorch's setting belongs to the calling thread's pool
// (a thread started later takes it with at::init_num_threads()).
int set_threads(int n);

// The count set_threads(n) would set: n, or all cores for n <= 0.
int resolve_threads(int n);

// Makes glibc keep freed memory for reuse: blocks under 32 MB come from the heap, and the heap
// is given back to the system only when more than 32 MB lie free at its top (or when
// malloc_trim is called). The defaults, which adapt the threshold to what was last freed,
// leave the forward pass's tensors mapped and unmapped on every batch: a fifth of its time
// went to page faults (docs/performance.md). Call it once, first thing in main().
void tune_allocator();

}  // namespace medattn
