// The packed projection kernels for CPUs with AVX-512 (ops/packed_matmul.hpp chooses them): a tile
// of MR rows of x times one panel is MR x 32 floats, 2 * MR AVX-512 accumulators (MR = 12 uses 24
// of the 32 registers, enough independent FMA chains to hide the FMA latency on both pipes), with
// the bias, GELU and residual add fused into the store.
//
// bf16 panels hold pairs of inputs (ops/packed_matrix.hpp): with AVX512_BF16, each VDPBF16PS adds
// two inputs' products to a float lane, twice an FMA's multiply-adds per instruction; with
// AVX-512F alone the pairs are split into floats and multiplied by FMAs.
#pragma once

#include "ctformer/ops/packed_matrix.hpp"

#if CTFORMER_PACKED_X86
#include <immintrin.h>

#include <algorithm>

#define CTFORMER_AVX512_TARGET [[gnu::target("avx512f")]]  // every instruction used is AVX512F
#define CTFORMER_AVX512_BF16_TARGET [[gnu::target("avx512f,avx512bf16")]]

namespace ctformer::ops::packed::avx512 {

// GCC 12's avx512fintrin.h passes _mm512_undefined_ps() through some intrinsics, and inlining them
// draws a false -Wuninitialized (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// 16 weights of one panel row as floats (float and half: one input per lane).
template <class T>
CTFORMER_AVX512_TARGET inline __m512 load16(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return _mm512_load_ps(p);
  } else {
    static_assert(std::is_same_v<T, Eigen::half>, "bf16 panels hold pairs: see tile()");
    return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
  }
}

// exp(x) for the GELU (exp_poly). Out-of-range inputs saturate to 0 and +inf as expf does.
CTFORMER_AVX512_TARGET inline __m512 exp16(__m512 x) {
  using namespace exp_poly;
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-103.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kC[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC[i]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

CTFORMER_AVX512_TARGET inline __m512 gelu16(__m512 x) {
  const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  const __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f),
                                 _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
  const __m512 e = exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), u));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// The mask of a 16-lane vector's first n lanes (none for n <= 0, all for n >= 16): with n and n -
// 16, the two halves of 32 columns or inputs of which n are inside the matrix.
inline __mmask16 first_lanes(std::int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// C[0:MR, 0:cols] (epilogue)= acc + bias. `bias` is 32 floats (zeros past the matrix), `cols` <= 32
// the columns of this panel inside the matrix.
template <int MR>
CTFORMER_AVX512_TARGET [[gnu::always_inline]] inline void store(__m512 (&acc)[MR][2],
                                                                const float* bias,
                                                                Epilogue epilogue, float* c,
                                                                std::int64_t ldc, int cols) {
  const __mmask16 m0 = first_lanes(cols), m1 = first_lanes(cols - 16);
  const __m512 bias0 = _mm512_loadu_ps(bias), bias1 = _mm512_loadu_ps(bias + 16);
  for (int r = 0; r < MR; ++r) {
    float* row = c + r * ldc;
    __m512 y0 = acc[r][0], y1 = acc[r][1];
    if (epilogue != Epilogue::none) {
      y0 = _mm512_add_ps(y0, bias0);
      y1 = _mm512_add_ps(y1, bias1);
    }
    if (epilogue == Epilogue::bias_gelu) {
      y0 = gelu16(y0);
      y1 = gelu16(y1);
    } else if (epilogue == Epilogue::bias_residual) {
      y0 = _mm512_add_ps(y0, _mm512_maskz_loadu_ps(m0, row));
      y1 = _mm512_add_ps(y1, _mm512_maskz_loadu_ps(m1, row + 16));
    }
    _mm512_mask_storeu_ps(row, m0, y0);
    _mm512_mask_storeu_ps(row + 16, m1, y1);
  }
}

// C[0:MR, 0:cols] (epilogue)= a (MR x depth floats, interleaved) times one panel (depth x 32).
template <int MR, class T>
CTFORMER_AVX512_TARGET void tile(std::int64_t depth, const float* a, const T* b, const float* bias,
                                 Epilogue epilogue, float* c, std::int64_t ldc, int cols) {
  // MR is a compile-time constant, so the compilers unroll the row loops completely and keep acc in
  // registers (checked: a `#pragma GCC unroll` made no difference, and nvcc's front end rejects
  // it).
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  if constexpr (kInputsPerLane<T> == 1) {
    for (std::int64_t k = 0; k < depth; ++k, a += MR, b += kPanel) {
      const __m512 b0 = load16(b), b1 = load16(b + 16);
      for (int r = 0; r < MR; ++r) {
        const __m512 ar = _mm512_set1_ps(a[r]);
        acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
      }
    }
  } else {
    // bf16 pairs without VDPBF16PS: a bf16 is the top half of a float, so the even input's weights
    // are the lanes shifted up by 16 bits and the odd input's the lanes with the low half cleared.
    const __m512i high = _mm512_set1_epi32(int(0xffff0000u));
    for (std::int64_t k = 0; k < depth; k += 2, a += 2 * MR, b += 2 * kPanel) {
      const __m512i p0 = _mm512_load_si512(b), p1 = _mm512_load_si512(b + 32);
      const __m512 even0 = _mm512_castsi512_ps(_mm512_slli_epi32(p0, 16));
      const __m512 even1 = _mm512_castsi512_ps(_mm512_slli_epi32(p1, 16));
      const __m512 odd0 = _mm512_castsi512_ps(_mm512_and_si512(p0, high));
      const __m512 odd1 = _mm512_castsi512_ps(_mm512_and_si512(p1, high));
      for (int r = 0; r < MR; ++r) {
        const __m512 ar = _mm512_set1_ps(a[r]);
        acc[r][0] = _mm512_fmadd_ps(ar, even0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(ar, even1, acc[r][1]);
      }
      for (int r = 0; r < MR; ++r) {
        const __m512 ar = _mm512_set1_ps(a[MR + r]);
        acc[r][0] = _mm512_fmadd_ps(ar, odd0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(ar, odd1, acc[r][1]);
      }
    }
  }
  store<MR>(acc, bias, epilogue, c, ldc, cols);
}

// Rows [row, row + rows) of x for tile_pairs: lane (r, i) holds x[r][2i] (low half) and
// x[r][2i + 1] (high half) rounded to bf16, at a[i * rows + r]. VCVTNE2PS2BF16 rounds to nearest
// even, as Eigen::bfloat16 does for pack_rows (denormals, which it flushes, VDPBF16PS flushes too).
CTFORMER_AVX512_BF16_TARGET inline void pack_row_pairs(MatrixView<const float> x, std::int64_t row,
                                                       int rows, std::int64_t depth,
                                                       std::uint32_t* a) {
  for (int r = 0; r < rows; ++r) {
    const float* src = x.row(row + r);
    for (std::int64_t k = 0; k < depth; k += 32) {  // 32 inputs, 16 lanes
      const std::int64_t n = std::min<std::int64_t>(32, x.cols - k);
      const __mmask16 low = first_lanes(n), high = first_lanes(n - 16);
      alignas(64) std::uint32_t lanes[16];
      _mm512_store_si512(lanes,
                         (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(high, src + k + 16),
                                                      _mm512_maskz_loadu_ps(low, src + k)));
      for (std::int64_t i = 0; i < 16 && k + 2 * i < depth; ++i)
        a[(k / 2 + i) * rows + r] = lanes[i];
    }
  }
}

// The same for bf16 on CPUs with AVX512_BF16: a holds pairs of x (pack_row_pairs), and each
// VDPBF16PS adds two inputs' products.
template <int MR>
CTFORMER_AVX512_BF16_TARGET void tile_pairs(std::int64_t depth, const std::uint32_t* a,
                                            const Eigen::bfloat16* b, const float* bias,
                                            Epilogue epilogue, float* c, std::int64_t ldc,
                                            int cols) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (std::int64_t k = 0; k < depth; k += 2, a += MR, b += 2 * kPanel) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 32);
    for (int r = 0; r < MR; ++r) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(int(a[r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
    }
  }
  store<MR>(acc, bias, epilogue, c, ldc, cols);
}

#pragma GCC diagnostic pop

}  // namespace ctformer::ops::packed::avx512

#endif  // CTFORMER_PACKED_X86
