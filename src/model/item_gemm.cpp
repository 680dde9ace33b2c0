// model/item_gemm.h. A product of the attention (65x24 by 24x65 at 64 px) costs OpenBLAS a few
// microseconds; at::mm_out with its three per-item views cost LibTorch as much again, and
// a training step makes about 3,000 of them. So each item's BLAS call is made here, with the
// arguments LibTorch 1.13's addmm_impl_cpu_ and cpublas::gemm would give it (which operand
// is transposed, leading dimensions, the normalisation of degenerate ones), so that the bits
// are at::mm's. Any layout LibTorch would first copy goes through at::mm_out instead.
#include "model/item_gemm.h"

#include <dlfcn.h>
#include <omp.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <climits>
#include <optional>

namespace medattn::model {
namespace {

// The Fortran BLAS entry LibTorch itself calls (its own symbol lookup finds the same one).
using Sgemm = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                       const int*, const float*, const int*, const float*, float*, const int*);

Sgemm blas_sgemm() {
  static const Sgemm f = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return f;
}

// One item's call: C (column-major view) = op(first) * op(second); `swapped` when LibTorch
// computes the transposed product, with b as BLAS's first operand.
struct Call {
  char transa = 'n', transb = 'n';
  int m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  bool swapped = false;
};

// How addmm passes an operand whose strides are u (along its first BLAS dimension) and v: as
// it is (false) when u is 1 and v a valid leading dimension, transposed (true) in the mirror
// case, and otherwise not at all (it copies the operand first).
std::optional<bool> layout(int64_t u, int64_t v, int64_t plain_rows, int64_t transposed_rows) {
  if (u == 1 && v >= std::max<int64_t>(1, plain_rows)) return false;
  if (v == 1 && u >= std::max<int64_t>(1, transposed_rows)) return true;
  return std::nullopt;
}

// rows x inner times inner x cols, the operands' strides as given, the result's (rs0, rs1).
std::optional<Call> plan(int64_t rows, int64_t inner, int64_t cols, int64_t sa0, int64_t sa1, int64_t sb0,
                         int64_t sb1, int64_t rs0, int64_t rs1) {
  bool tc;  // the result is used as a transposed (row-major) matrix
  if (rs0 == 1 && (cols == 1 || rs1 >= std::max<int64_t>(1, rows))) {
    tc = false;
  } else if (rs1 == 1 && (rows == 1 || rs0 >= std::max<int64_t>(1, cols))) {
    tc = true;
  } else {
    return std::nullopt;
  }
  // First and second operand as BLAS sees them, with their strides along (size0, size1).
  const int64_t f0 = tc ? sb0 : sa0, f1 = tc ? sb1 : sa1;
  const int64_t s0 = tc ? sa0 : sb0, s1 = tc ? sa1 : sb1;
  const int64_t m = tc ? cols : rows, n = tc ? rows : cols, k = inner;
  const auto ta = layout(tc ? f1 : f0, tc ? f0 : f1, m, k);
  const auto tb = layout(tc ? s1 : s0, tc ? s0 : s1, k, n);
  if (!ta || !tb) return std::nullopt;
  int64_t lda = (*ta == tc) ? f1 : f0;
  int64_t ldb = (*tb == tc) ? s1 : s0;
  int64_t ldc = tc ? rs0 : rs1;
  // cpublas' normalisation of the leading dimensions of degenerate matrices.
  if (n == 1) ldc = m;
  if (*ta) {
    if (m == 1) lda = k;
  } else if (k == 1) {
    lda = m;
  }
  if (*tb) {
    if (k == 1) ldb = n;
  } else if (n == 1) {
    ldb = k;
  }
  // cpublas calls BLAS only when these hold (otherwise its own kernel).
  const bool fits = m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX &&
                    lda >= std::max<int64_t>(1, *ta ? k : m) && ldb >= std::max<int64_t>(1, *tb ? n : k) &&
                    ldc >= std::max<int64_t>(1, m);
  if (!fits) return std::nullopt;
  Call c;
  c.transa = *ta ? 't' : 'n';
  c.transb = *tb ? 't' : 'n';
  c.m = static_cast<int>(m);
  c.n = static_cast<int>(n);
  c.k = static_cast<int>(k);
  c.lda = static_cast<int>(lda);
  c.ldb = static_cast<int>(ldb);
  c.ldc = static_cast<int>(ldc);
  c.swapped = tc;
  return c;
}

// Runs items(begin, end) over the intra-op threads, one product per thread; or on this thread
// with BLAS told to use one (a single item, one thread, or already inside a parallel region).
template <typename F>
void over_items(int64_t count, const F& items) {
  if (count > 1 && at::get_num_threads() > 1 && !at::in_parallel_region()) {
    at::parallel_for(0, count, 1, items);
    return;
  }
  struct OneThread {
    int threads = omp_get_max_threads();
    OneThread() { omp_set_num_threads(1); }
    ~OneThread() { omp_set_num_threads(threads); }
  } one_thread;
  items(0, count);
}

}  // namespace

at::Tensor bmm_items_reference(const at::Tensor& a, const at::Tensor& b) {
  auto out = at::empty({a.size(0), a.size(1), b.size(2)}, a.options());
  over_items(a.size(0), [&](int64_t begin, int64_t end) {
    at::NoGradGuard no_grad;  // a parallel region's threads record autograd by default
    for (auto i = begin; i < end; ++i) {
      auto item = out.select(0, i);
      at::mm_out(item, a.select(0, i), b.select(0, i));
    }
  });
  return out;
}

at::Tensor bmm_items(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0) && a.size(2) == b.size(1),
              "bmm_items: [N,m,k] and [N,k,n] expected");
  auto out = at::empty({a.size(0), a.size(1), b.size(2)}, a.options());
  return gemm_items_into(a.unsqueeze(1), b.unsqueeze(1), out.unsqueeze(1)) ? out : bmm_items_reference(a, b);
}

bool gemm_items_into(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out, const ItemEpilogue& epilogue) {
  TORCH_CHECK(a.dim() == 4 && b.dim() == 4 && out.dim() == 4 && a.size(3) == b.size(2) &&
                  a.sizes().slice(0, 2) == b.sizes().slice(0, 2) && out.sizes().slice(0, 2) == a.sizes().slice(0, 2) &&
                  out.size(2) == a.size(2) && out.size(3) == b.size(3),
              "gemm_items_into: [B,H,m,k], [B,H,k,n] and [B,H,m,n] expected");
  const Sgemm sgemm = blas_sgemm();
  const int64_t B = a.size(0), H = a.size(1), rows = a.size(2), inner = a.size(3), cols = b.size(3);
  if (sgemm == nullptr || a.scalar_type() != at::kFloat || b.scalar_type() != at::kFloat ||
      out.scalar_type() != at::kFloat || a.is_conj() || b.is_conj() || B * H == 0 || rows * cols == 0 || inner == 0 ||
      (epilogue.bias != nullptr && inner > kFusedBiasMaxInner)) {
    return false;
  }
  const auto call = plan(rows, inner, cols, a.stride(2), a.stride(3), b.stride(2), b.stride(3), out.stride(2), out.stride(3));
  if (!call) return false;
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  float* pc = out.data_ptr<float>();
  const int64_t a0 = a.stride(0), a1 = a.stride(1), b0 = b.stride(0), b1 = b.stride(1), c0 = out.stride(0), c1 = out.stride(1);
  const int64_t r0 = out.stride(2), r1 = out.stride(3);
  const float one = 1.0f, zero = 0.0f;
  const Call c = *call;
  over_items(B * H, [&](int64_t begin, int64_t end) {
    for (auto i = begin; i < end; ++i) {
      const int64_t x = i / H, y = i % H;
      const float* ia = pa + x * a0 + y * a1;
      const float* ib = pb + x * b0 + y * b1;
      float* ic = pc + x * c0 + y * c1;
      if (epilogue.bias != nullptr) {
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < cols; ++j) ic[r * r0 + j * r1] = epilogue.bias[j];
        }
      }
      sgemm(&c.transa, &c.transb, &c.m, &c.n, &c.k, &one, c.swapped ? ib : ia, &c.lda, c.swapped ? ia : ib, &c.ldb,
            epilogue.bias != nullptr ? &one : &zero, ic, &c.ldc);
      if (epilogue.scale != 1.0f) {
        const float s = epilogue.scale;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < cols; ++j) ic[r * r0 + j * r1] *= s;
        }
      }
    }
  });
  return true;
}

}  // namespace medattn::model
