// The per-item products call BLAS directly with the arguments LibTorch would give it: their bits
// must be at::mm's for every layout the network passes (contiguous, transposed and expanded
// operands, degenerate sizes) and for layouts LibTorch copies first (the fallback).
#include <ATen/ATen.h>

#include <catch2/catch.hpp>
#include <cmath>

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

TEST_CASE("products written in place with a bias or a scale are bit for bit the separate operations", "[model][gemm]") {
  // gemm_items_into reads heads where the projection wrote them ([B,T,3,H,Dh]), writes into
  // [B,T,H,Dh], and folds a bias (BLAS's beta 1) or a scale into each product. The network's
  // no-gradient forward relies on each giving exactly the bits of bmm_items followed by the
  // separate addition or multiplication.
  at::manual_seed(9);
  for (const int threads : {1, 2}) {
    set_threads(threads);
    INFO("threads " << threads);
    const int64_t B = 3, T = 65, H = 4, Dh = 24, D = H * Dh;
    const auto qkv = at::randn({B, T, 3 * D}).view({B, T, 3, H, Dh});
    const auto q = qkv.select(2, 0).permute({0, 2, 1, 3}), k = qkv.select(2, 1).permute({0, 2, 3, 1});
    const auto v = qkv.select(2, 2).permute({0, 2, 1, 3});
    const double scale = 1.0 / std::sqrt(static_cast<double>(Dh));
    auto scores = at::empty({B, H, T, T});
    REQUIRE(model::gemm_items_into(q, k, scores, {nullptr, static_cast<float>(scale)}));
    const auto expected = model::bmm_items(q.contiguous().reshape({B * H, T, Dh}), k.contiguous().reshape({B * H, Dh, T})) * scale;
    CHECK(at::equal(scores, expected.view({B, H, T, T})));
    auto out = at::empty({B, T, D});
    auto heads = out.view({B, T, H, Dh}).permute({0, 2, 1, 3});
    REQUIRE(model::gemm_items_into(scores, v, heads));
    const auto pv = model::bmm_items(scores.reshape({B * H, T, T}), v.contiguous().reshape({B * H, T, Dh}));
    CHECK(at::equal(out, pv.view({B, H, T, Dh}).transpose(1, 2).reshape({B, T, D})));
    // Biases at the network's widths: [T,in] x [in,out] plus [out], the weight shared by all.
    for (const auto& [in, width] : std::vector<std::pair<int64_t, int64_t>>{{96, 288}, {96, 96}, {96, 192}, {192, 96}, {256, 40}, {7, 300}}) {
      INFO(in << " -> " << width);
      const auto x = at::randn({B, T, in});
      const auto w = at::randn({width, in});
      const auto bias = at::randn({width}) * 3;
      auto y = at::empty({B, T, width});
      auto y4 = y.unsqueeze(1);
      REQUIRE(model::gemm_items_into(x.unsqueeze(1), w.t().expand({B, 1, in, width}), y4, {bias.data_ptr<float>()}));
      CHECK(at::equal(y, model::bmm_items(x, w.t().expand({B, in, width})) + bias));
    }
  }
  set_threads(1);
  SECTION("it declines what it cannot do exactly, and writes nothing") {
    const auto a = at::randn({2, 1, 5, 300}), b = at::randn({2, 1, 300, 4}), bias = at::randn({4});
    auto out = at::full({2, 1, 5, 4}, 7.0f);
    CHECK_FALSE(model::gemm_items_into(a, b, out, {bias.data_ptr<float>()}));  // a bias over 256 products
    const auto strided = at::randn({2, 1, 5, 8}).slice(3, 0, 8, 2);                // every other column
    CHECK_FALSE(model::gemm_items_into(strided, at::randn({2, 1, 4, 4}), out));
    CHECK(at::equal(out, at::full({2, 1, 5, 4}, 7.0f)));
    CHECK(model::gemm_items_into(a, b, out));  // without the bias it can
    CHECK(at::equal(out.squeeze(1), model::bmm_items(a.squeeze(1), b.squeeze(1))));
    CHECK_THROWS(model::gemm_items_into(a, at::randn({2, 1, 299, 4}), out));
  }
}
