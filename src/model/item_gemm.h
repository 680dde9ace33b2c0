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

// Work folded into each item's product, on the thread that made it, while its result is in cache.
struct ItemEpilogue {
  // [n]: every row of the result starts as this vector and the product is added to it (BLAS's
  // beta 1). For k <= kFusedBiasMaxInner that is bit for bit the product plus the bias: BLAS
  // accumulates the whole dot product before adding it to C, and a + b is b + a.
  const float* bias = nullptr;
  // Every element of the result is then multiplied by it, as at::mul by a float scalar would.
  float scale = 1.0f;
};
inline constexpr int64_t kFusedBiasMaxInner = 256;

// a: [B,H,m,k] times b: [B,H,k,n] into out: [B,H,m,n], one item per (B,H) pair, each bit for
// bit bmm_items' product of the same matrices (the two leading dimensions may have any strides,
// for instance heads read in place from a [B,T,3,H,D/H] projection, or written into [B,T,H,D/H]).
// Returns false and writes nothing where bmm_items would not call BLAS itself (a layout
// LibTorch copies first, another type), or where a bias is asked for with k over
// kFusedBiasMaxInner: the caller then takes the unfused path.
// bmm_items is this with one head and no epilogue.
bool gemm_items_into(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out, const ItemEpilogue& epilogue = {});

// The same through at::mm_out for every item: what bmm_items must equal (tests, benchmarks).
at::Tensor bmm_items_reference(const at::Tensor& a, const at::Tensor& b);

}  // namespace medattn::model
