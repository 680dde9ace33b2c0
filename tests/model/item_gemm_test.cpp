// The per-item products call BLAS directly with the arguments LibTorch would give it: their bits
// must be at::mm's for every layout the network passes (contiguous, transposed and expanded
// operands, degenerate sizes) and for layouts LibTorch copies first (the fallback).
#include <ATen/ATen.h>

#include <catch2/catch.hpp>

#include "core/threads.h"
#include "model/item_gemm.h"

using namespace medattn;

namespace {

// [N,r,c] with the given layout: "rowmajor", "colmajor" (a transposed view), "expanded"
// (one matrix shared by every item, stride 0), "strided" (every other column: LibTorch copies).
at::Tensor operand(int64_t N, int64_t r, int64_t c, const std::string& layout) {
  if (layout == "colmajor") return at::randn({N, c, r}).transpose(1, 2);
  if (layout == "expanded") return at::randn({1, r, c}).expand({N, r, c});
  if (layout == "strided") return at::randn({N, r, 2 * c}).slice(2, 0, 2 * c, 2);
  return at::randn({N, r, c});
}

}  // namespace

TEST_CASE("per-item products are bit for bit LibTorch's matrix products, any layout", "[model][gemm]") {
  struct Shape {
    int64_t N, m, k, n;
  };
  const std::vector<Shape> shapes = {{256, 65, 24, 65}, {7, 65, 65, 24}, {3, 1, 5, 7}, {3, 5, 1, 7}, {3, 5, 7, 1},
                                     {2, 1, 1, 1},      {1, 9, 96, 288}, {5, 33, 17, 2}, {8, 145, 24, 145}, {8, 145, 145, 24}, {4, 145, 96, 288}, {4, 145, 192, 96}, {4, 145, 96, 192}};
  const std::vector<std::string> layouts = {"rowmajor", "colmajor", "expanded", "strided"};
  at::manual_seed(5);
  for (const int threads : {1, 2}) {
    set_threads(threads);
    for (const auto& s : shapes) {
      for (const auto& la : layouts) {
        for (const auto& lb : layouts) {
          INFO("threads " << threads << ", " << s.N << "x[" << s.m << "x" << s.k << " " << la << "] x [" << s.k << "x" << s.n
                          << " " << lb << "]");
          const auto a = operand(s.N, s.m, s.k, la), b = operand(s.N, s.k, s.n, lb);
          const auto got = model::bmm_items(a, b);
          REQUIRE(got.sizes() == at::IntArrayRef({s.N, s.m, s.n}));
          CHECK(got.is_contiguous());
          CHECK(at::equal(got, model::bmm_items_reference(a, b)));
          // And each item is the plain product LibTorch gives on one thread.
          set_threads(1);
          CHECK(at::equal(got[s.N - 1], at::mm(a[s.N - 1], b[s.N - 1])));
          set_threads(threads);
          CHECK(at::allclose(got, at::bmm(a, b), 1e-4, 1e-5));
        }
      }
    }
  }
  set_threads(1);
}

TEST_CASE("per-item products refuse operands that do not fit", "[model][gemm]") {
  CHECK_THROWS(model::bmm_items(at::randn({2, 3, 4}), at::randn({2, 5, 6})));
  CHECK_THROWS(model::bmm_items(at::randn({3, 4}), at::randn({4, 6})));
  // Empty items give an empty (or zero, for an empty inner dimension) result, as at::bmm does.
  CHECK(model::bmm_items(at::randn({0, 3, 4}), at::randn({0, 4, 6})).numel() == 0);
  CHECK(at::equal(model::bmm_items(at::randn({2, 3, 0}), at::randn({2, 0, 6})), at::zeros({2, 3, 6})));
}
