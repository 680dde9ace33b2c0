// One matrix product per item of a batch, each on one thread: the network's per-sample
// products (model/net.cpp), and the reason its results do not depend on the batch.
#pragma once

#include <ATen/core/Tensor.h>

namespace medattn::model {

// a: [N,m,k] times b: [N,k,n] (either may be a strided view, b may be expanded) -> [N,m,n],
// contiguous. Every item's product is bit for bit at::mm's on one thread: the same BLAS call
// with the same arguments, made directly where LibTorch would make it (no dispatcher, no
// per-item views), through at::mm_out where it would not. Items go to the intra-op threads
// when there are several of both.
at::Tensor bmm_items(const at::Tensor& a, const at::Tensor& b);

// The same through at::mm_out for every item: what bmm_items must equal (tests, benchmarks).
at::Tensor bmm_items_reference(const at::Tensor& a, const at::Tensor& b);

}  // namespace medattn::model
