// The packed projection kernel for x86 CPUs with AVX2 and FMA but not AVX-512 (AMD's Zen 1 to 3,
// Intel's client chips since Alder Lake): ops/packed_matmul.hpp chooses it.
//
// AVX2 has 16 vector registers of 8 floats, so a 32-column panel is taken 16 columns at a time, and
// a row tile of up to 12 rows in blocks of up to 6: 6 x 16 floats are 12 accumulators, which leaves
// registers for two weight vectors and the broadcast of x (BLIS's Haswell kernel is 6 x 16 for the
// same reason). Each block reads the interleaved row tile with the tile's own stride, so the row
// tiles, x's packing and the parallel loop are the AVX-512 kernel's.
//
// fp16 weights are widened by F16C; bf16 pairs are split into floats as the AVX-512F kernel does.
#pragma once

#include "ctformer/ops/packed_matrix.hpp"

#if CTFORMER_PACKED_X86
#include <immintrin.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#define CTFORMER_AVX2_TARGET [[gnu::target("avx2,fma,f16c")]]

namespace ctformer::ops::packed::avx2 {

// 8 weights of one panel row as floats (float and half: one input per lane).
template <class T>
CTFORMER_AVX2_TARGET inline __m256 load8(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return _mm256_load_ps(p);
  } else {
    static_assert(std::is_same_v<T, Eigen::half>, "bf16 panels hold pairs: see block()");
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
  }
}

// exp(x) for the GELU (exp_poly). The clamp keeps n + 127 a normal float's biased exponent, so 2^n
// is built from its bits; past it the GELU, x / (1 + exp(-2u)), changes by less than |x| 5e-39.
CTFORMER_AVX2_TARGET inline __m256 exp8(__m256 x) {
  using namespace exp_poly;
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3f)), _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kC[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC[i]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23)));
}

CTFORMER_AVX2_TARGET inline __m256 gelu8(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                                 _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
  const __m256 e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), u));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// The mask of an 8-lane vector's first n lanes (none for n <= 0, all for n >= 8).
CTFORMER_AVX2_TARGET inline __m256i first_lanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// C[0:R, 0:cols] (epilogue)= acc + bias for V * 8 columns, of which `cols` (>= 1) are inside the
// matrix. Masked loads and stores only for the matrix's last panel (slow on AMD's CPUs).
template <int R, int V>
CTFORMER_AVX2_TARGET [[gnu::always_inline]] inline void store(const __m256 (&acc)[R][V],
                                                              const float* bias, Epilogue epilogue,
                                                              float* c, std::int64_t ldc,
                                                              int cols) {
  const bool whole = cols >= 8 * V;
  for (int v = 0; v < V; ++v) {
    const __m256i mask = first_lanes(cols - 8 * v);
    const __m256 b = _mm256_loadu_ps(bias + 8 * v);
    for (int r = 0; r < R; ++r) {
      float* out = c + r * ldc + 8 * v;
      __m256 y = acc[r][v];
      if (epilogue != Epilogue::none) y = _mm256_add_ps(y, b);
      if (epilogue == Epilogue::bias_gelu)
        y = gelu8(y);
      else if (epilogue == Epilogue::bias_residual)
        y = _mm256_add_ps(y, whole ? _mm256_loadu_ps(out) : _mm256_maskload_ps(out, mask));
      if (whole)
        _mm256_storeu_ps(out, y);
      else
        _mm256_maskstore_ps(out, mask, y);
    }
  }
}

// acc[r][v] += x[r] w[v]. set1 of x[r], not _mm256_broadcast_ss(x + r): GCC takes that builtin's
// pointer as possibly aliasing acc, and stored every accumulator on every step (half the speed).
template <int R, int V>
CTFORMER_AVX2_TARGET [[gnu::always_inline]] inline void multiply_add(__m256 (&acc)[R][V],
                                                                     const float* x,
                                                                     const __m256 (&w)[V]) {
  for (int r = 0; r < R; ++r) {
    const __m256 xr = _mm256_set1_ps(x[r]);
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(xr, w[v], acc[r][v]);
  }
}

// C[0:R, 0:cols] (epilogue)= R rows of a row tile of MR (a: MR x depth floats, interleaved) times
// V * 8 columns of a panel (b: their first weights, rows kPanel apart).
template <int R, int V, int MR, class T>
CTFORMER_AVX2_TARGET void block(std::int64_t depth, const float* a, const T* b, const float* bias,
                                Epilogue epilogue, float* c, std::int64_t ldc, int cols) {
  constexpr int kLane = kInputsPerLane<T>;
  __m256 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  for (std::int64_t k = 0; k < depth; k += kLane, a += kLane * MR, b += kLane * kPanel) {
    __m256 w[V];
    if constexpr (kLane == 1) {
      for (int v = 0; v < V; ++v) w[v] = load8(b + 8 * v);
      multiply_add<R, V>(acc, a, w);
    } else {
      // A bf16 is the top half of a float: the even input's weights are the lanes shifted up by
      // 16 bits, the odd input's the lanes with the low half cleared.
      __m256i pairs[V];
      for (int v = 0; v < V; ++v) {
        pairs[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 16 * v));
        w[v] = _mm256_castsi256_ps(_mm256_slli_epi32(pairs[v], 16));
      }
      multiply_add<R, V>(acc, a, w);
      for (int v = 0; v < V; ++v)
        w[v] = _mm256_castsi256_ps(_mm256_and_si256(pairs[v], _mm256_set1_epi32(int(0xffff0000u))));
      multiply_add<R, V>(acc, a + MR, w);
    }
  }
  store<R, V>(acc, bias, epilogue, c, ldc, cols);
}

// C[0:MR, 0:cols] (epilogue)= a (MR x depth floats, interleaved) times one panel (depth x 32).
// Up to 2 rows take the whole panel at once (4 or 8 accumulators: each weight is loaded once, and
// a single row's FMAs run in 4 chains, not 2). More rows go in blocks of 16 columns by up to 6 rows
// (4 for bf16, whose split pairs take 4 more registers: with 6 rows GCC spilled 4 accumulators).
template <int MR, class T>
CTFORMER_AVX2_TARGET void tile(std::int64_t depth, const float* a, const T* b, const float* bias,
                               Epilogue epilogue, float* c, std::int64_t ldc, int cols) {
  if constexpr (MR <= 2) {
    block<MR, 4, MR>(depth, a, b, bias, epilogue, c, ldc, cols);
  } else {
    constexpr int kMaxBlockRows = kInputsPerLane<T> == 2 ? 4 : 6;
    constexpr int kBlocks = (MR + kMaxBlockRows - 1) / kMaxBlockRows;
    for (int half = 0; half < 2 && 16 * half < cols; ++half) {
      const T* panel_half = b + 16 * half * kInputsPerLane<T>;
      // Blocks of near-equal height: rows [i MR / kBlocks, (i + 1) MR / kBlocks).
      [&]<int... I>(std::integer_sequence<int, I...>) {
        (block<(I + 1) * MR / kBlocks - I * MR / kBlocks, 2, MR>(
             depth, a + I * MR / kBlocks, panel_half, bias + 16 * half, epilogue,
             c + I * MR / kBlocks * ldc + 16 * half, ldc, cols - 16 * half),
         ...);
      }
      (std::make_integer_sequence<int, kBlocks>{});
    }
  }
}

}  // namespace ctformer::ops::packed::avx2

#endif  // CTFORMER_PACKED_X86
