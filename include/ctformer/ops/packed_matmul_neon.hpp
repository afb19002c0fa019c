// The packed projection kernels for 64-bit ARM (AArch64: Graviton, Ampere, Apple silicon under
// Linux, Raspberry Pi 4 and 5): ops/packed_matmul.hpp chooses them.
//
// Advanced SIMD is part of every AArch64 CPU: 32 vector registers of 4 floats. A 32-column panel is
// 8 of them, so up to 2 rows take the whole panel at once (16 accumulators) and more rows go in
// blocks of 6 rows x 16 columns (24 accumulators); the row tiles, x's packing and the parallel loop
// are the x86 kernels'. fp16 weights are widened by FCVTL (every AArch64 CPU has it).
//
// bf16 weights hold pairs of inputs (ops/packed_matrix.hpp); CPUs with the BF16 extension (Armv8.6:
// Graviton 3 and 4, Neoverse V1/V2/N2, Apple M2 and later) multiply them with BFDOT, which, as
// x86's VDPBF16PS, adds two inputs' products to a float lane. Other CPUs split the pairs into
// floats.
#pragma once

#include "ctformer/ops/packed_matrix.hpp"

#if CTFORMER_PACKED_NEON
#include <arm_neon.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

// BFDOT's code is compiled for Armv8.6's BF16 extension by a function target attribute and run
// only where the CPU reports it (packed_matmul.hpp), so a build for any AArch64 CPU still has it.
// The attribute adds +bf16 to the build's own target: "arch=armv8.2-a+bf16" would replace it, and a
// build for a CPU with more (-mcpu=neoverse-n1, -march=armv8.4-a) then could not inline this file's
// helpers into BFDOT's functions. Clang 14's arm_neon.h declares the bf16 types only in builds for
// BF16 CPUs: only those have it there.
#if defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
#define CTFORMER_NEON_BF16 1
#define CTFORMER_NEON_BF16_TARGET
#elif defined(__GNUC__) && !defined(__clang__)
#define CTFORMER_NEON_BF16 1
#define CTFORMER_NEON_BF16_TARGET [[gnu::target("+bf16")]]
#else
#define CTFORMER_NEON_BF16 0
#endif

namespace ctformer::ops::packed::neon {

// 4 weights of one panel row as floats (float and half: one input per lane).
template <class T>
[[gnu::always_inline]] inline float32x4_t load4(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return vld1q_f32(p);
  } else {
    static_assert(std::is_same_v<T, Eigen::half>, "bf16 panels hold pairs: see block()");
    return vcvt_f32_f16(vld1_f16(reinterpret_cast<const float16_t*>(p)));
  }
}

// exp(x) for the GELU (exp_poly). The clamp keeps n + 127 a normal float's biased exponent, so 2^n
// is built from its bits; past it the GELU, x / (1 + exp(-2u)), changes by less than |x| 5e-39.
inline float32x4_t exp4(float32x4_t x) {
  using namespace exp_poly;
  x = vmaxq_f32(vminq_f32(x, vdupq_n_f32(88.3f)), vdupq_n_f32(-87.3f));
  const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(kLog2e)));
  float32x4_t r = vfmsq_n_f32(x, n, kLn2Hi);
  r = vfmsq_n_f32(r, n, kLn2Lo);
  float32x4_t p = vdupq_n_f32(kC[0]);
  for (int i = 1; i < 6; ++i) p = vfmaq_f32(vdupq_n_f32(kC[i]), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
  const int32x4_t biased = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
  return vmulq_f32(p, vreinterpretq_f32_s32(vshlq_n_s32(biased, 23)));
}

inline float32x4_t gelu4(float32x4_t x) {
  const float32x4_t x3 = vmulq_f32(vmulq_f32(x, x), x);
  const float32x4_t u = vmulq_n_f32(vfmaq_n_f32(x, x3, 0.044715f), 0.7978845608028654f);
  const float32x4_t e = exp4(vmulq_n_f32(u, -2.0f));
  return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), e));
}

// C[0:R, 0:cols] (epilogue)= acc + bias for V * 4 columns, of which `cols` (>= 1) are inside the
// matrix. NEON has no masked loads or stores: the matrix's last panel goes through a copy.
template <int R, int V>
[[gnu::always_inline]] inline void store(const float32x4_t (&acc)[R][V], const float* bias,
                                         Epilogue epilogue, float* c, std::int64_t ldc, int cols) {
  // acc leaves its registers here, copied at constant indices: the epilogue's loops are too big
  // for GCC to unroll, and their indexing acc kept acc in memory throughout the FMA loop (every
  // accumulator stored on every step).
  float32x4_t sums[R][V];
  [&]<int... i>(std::integer_sequence<int, i...>) {
    ((sums[i / V][i % V] = acc[i / V][i % V]), ...);
  }
  (std::make_integer_sequence<int, R * V>{});
  for (int v = 0; v < V; ++v) {
    const int n = std::clamp(cols - 4 * v, 0, 4);
    const float32x4_t b = vld1q_f32(bias + 4 * v);
    for (int r = 0; r < R && n > 0; ++r) {
      float* out = c + r * ldc + 4 * v;
      alignas(16) float part[4] = {};
      if (n < 4 && epilogue == Epilogue::bias_residual)
        std::memcpy(part, out, std::size_t(n) * sizeof(float));
      float32x4_t y = sums[r][v];
      if (epilogue != Epilogue::none) y = vaddq_f32(y, b);
      if (epilogue == Epilogue::bias_gelu)
        y = gelu4(y);
      else if (epilogue == Epilogue::bias_residual)
        y = vaddq_f32(y, vld1q_f32(n == 4 ? out : part));
      if (n == 4) {
        vst1q_f32(out, y);
      } else {
        vst1q_f32(part, y);
        std::memcpy(out, part, std::size_t(n) * sizeof(float));
      }
    }
  }
}

// R consecutive 32-bit values (x's rows at one input, or their bf16 pairs) in vectors of 4, read
// without going past the R-th: the FMAs take each row's value as a lane of these (FMLA by
// element), so that x costs (R + 3) / 4 registers, not R (6 x 16 blocks: 24 accumulators, 4
// weight vectors, 2 of x).
template <int R, class A>
[[gnu::always_inline]] inline void load_rows(const A* x, uint32x4_t (&rows)[(R + 3) / 4]) {
  const auto* p = reinterpret_cast<const std::uint32_t*>(x);
  for (int i = 0; i < R / 4; ++i) rows[i] = vld1q_u32(p + 4 * i);
  if constexpr (R % 4 != 0) {
    uint32x4_t last = vdupq_n_u32(0);
    last = vld1q_lane_u32(p + R / 4 * 4, last, 0);
    if constexpr (R % 4 >= 2) last = vld1q_lane_u32(p + R / 4 * 4 + 1, last, 1);
    if constexpr (R % 4 == 3) last = vld1q_lane_u32(p + R / 4 * 4 + 2, last, 2);
    rows[R / 4] = last;
  }
  // Opaque to the optimiser: GCC 12 otherwise turns the vector loads back into one scalar load a
  // row, and x takes R registers again (6 x 16 blocks then spilled 2 accumulators every step).
  for (auto& v : rows) asm("" : "+w"(v));
}

// acc + w x[lane]. The lane is a template argument because Clang's arm_neon.h spells
// vfmaq_laneq_f32 as a macro, in which a parameter pack cannot be expanded.
template <int lane>
[[gnu::always_inline]] inline float32x4_t fma_lane(float32x4_t acc, float32x4_t w, uint32x4_t x) {
  return vfmaq_laneq_f32(acc, w, vreinterpretq_f32_u32(x), lane);
}

// acc[r][v] += x[r] w for each row r, x[r] lane r % 4 of rows[r / 4]. (The rows are a pack, not
// a lambda's: a target attribute, which dot_add needs, does not reach a lambda.)
template <int R, int V, int... r>
[[gnu::always_inline]] inline void multiply_add(float32x4_t (&acc)[R][V], int v, float32x4_t w,
                                                const uint32x4_t (&rows)[(R + 3) / 4],
                                                std::integer_sequence<int, r...>) {
  ((acc[r][v] = fma_lane<r % 4>(acc[r][v], w, rows[r / 4])), ...);
}

// C[0:R, 0:cols] (epilogue)= R rows of a row tile of MR (a: MR x depth floats, interleaved) times
// V * 4 columns of a panel (b: their first weights, rows kPanel apart).
template <int R, int V, int MR, class T>
void block(std::int64_t depth, const float* a, const T* b, const float* bias, Epilogue epilogue,
           float* c, std::int64_t ldc, int cols) {
  constexpr int kLane = kInputsPerLane<T>;
  constexpr auto kRows = std::make_integer_sequence<int, R>{};
  float32x4_t acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (std::int64_t k = 0; k < depth; k += kLane, a += kLane * MR, b += kLane * kPanel) {
    uint32x4_t x[(R + 3) / 4];
    load_rows<R>(a, x);
    if constexpr (kLane == 1) {
      for (int v = 0; v < V; ++v) multiply_add(acc, v, load4(b + 4 * v), x, kRows);
    } else {
      // A bf16 is the top half of a float: the even input's weights are the lanes shifted up by
      // 16 bits, the odd input's the lanes with the low half cleared.
      uint32x4_t x_odd[(R + 3) / 4];
      load_rows<R>(a + MR, x_odd);
      for (int v = 0; v < V; ++v) {
        const uint32x4_t pairs = vld1q_u32(reinterpret_cast<const std::uint32_t*>(b + 8 * v));
        multiply_add(acc, v, vreinterpretq_f32_u32(vshlq_n_u32(pairs, 16)), x, kRows);
        multiply_add(acc, v, vreinterpretq_f32_u32(vandq_u32(pairs, vdupq_n_u32(0xffff0000u))),
                     x_odd, kRows);
      }
    }
  }
  store<R, V>(acc, bias, epilogue, c, ldc, cols);
}

#if CTFORMER_NEON_BF16
// Rows [row, row + rows) of x for block_pairs: lane (r, i) holds x[r][2i] (low half) and
// x[r][2i + 1] (high half) rounded to bf16 as pack_rows rounds them, at a[i * rows + r].
inline void pack_row_pairs(MatrixView<const float> x, std::int64_t row, int rows,
                           std::int64_t depth, std::uint32_t* a) {
  for (int r = 0; r < rows; ++r) {
    const float* src = x.row(row + r);
    auto bits = [&](std::int64_t k) -> std::uint32_t {
      return k < x.cols ? Eigen::numext::bit_cast<std::uint16_t>(Eigen::bfloat16(src[k])) : 0u;
    };
    for (std::int64_t k = 0; k < depth; k += 2) a[k / 2 * rows + r] = bits(k) | bits(k + 1) << 16;
  }
}

// acc + the dot products of w's pairs with x's pair `lane` (BFDOT by element).
template <int lane>
CTFORMER_NEON_BF16_TARGET [[gnu::always_inline]] inline float32x4_t dot_lane(float32x4_t acc,
                                                                             uint32x4_t w,
                                                                             uint32x4_t x) {
#if defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
  return vbfdotq_laneq_f32(acc, vreinterpretq_bf16_u32(w), vreinterpretq_bf16_u32(x), lane);
#else
  // GCC's arm_neon.h compiles its bf16 intrinsics for "arch=armv8.2-a+bf16", which a function of
  // an armv8-a build with +bf16 added cannot inline; the builtin they wrap needs only +bf16.
  return __builtin_aarch64_bfdot_laneqv4sf(acc, (bfloat16x8_t)w, (bfloat16x8_t)x, lane);
#endif
}

// acc[r][v] += the dot products of x[r]'s pair with w's pairs.
template <int R, int V, int... r>
CTFORMER_NEON_BF16_TARGET [[gnu::always_inline]] inline void dot_add(
    float32x4_t (&acc)[R][V], int v, uint32x4_t w, const uint32x4_t (&rows)[(R + 3) / 4],
    std::integer_sequence<int, r...>) {
  ((acc[r][v] = dot_lane<r % 4>(acc[r][v], w, rows[r / 4])), ...);
}

// block() for bf16 on CPUs with the BF16 extension: a holds pairs of x (pack_row_pairs), and each
// BFDOT adds two inputs' products to a float lane.
template <int R, int V, int MR>
CTFORMER_NEON_BF16_TARGET void block_pairs(std::int64_t depth, const std::uint32_t* a,
                                           const Eigen::bfloat16* b, const float* bias,
                                           Epilogue epilogue, float* c, std::int64_t ldc,
                                           int cols) {
  float32x4_t acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = vdupq_n_f32(0.0f);
  for (std::int64_t k = 0; k < depth; k += 2, a += MR, b += 2 * kPanel) {
    uint32x4_t x[(R + 3) / 4];
    load_rows<R>(a, x);
    for (int v = 0; v < V; ++v) {
      const uint32x4_t w = vld1q_u32(reinterpret_cast<const std::uint32_t*>(b + 8 * v));
      dot_add(acc, v, w, x, std::make_integer_sequence<int, R>{});
    }
  }
  store<R, V>(acc, bias, epilogue, c, ldc, cols);
}
#endif

// C[0:MR, 0:cols] (epilogue)= a (a row tile of MR: floats, interleaved, or bf16 pairs of x for
// BFDOT when A is std::uint32_t) times one panel (depth x 32).
// Up to 2 rows take the whole panel at once (16 accumulators: each weight is loaded once); more
// rows, and split bf16 pairs, go in blocks of 16 columns by up to 6 rows (4 for split pairs).
template <int MR, class T, class A>
void tile(std::int64_t depth, const A* a, const T* b, const float* bias, Epilogue epilogue,
          float* c, std::int64_t ldc, int cols) {
  constexpr bool kDot = std::is_same_v<A, std::uint32_t>;
  static_assert(!kDot || CTFORMER_NEON_BF16,
                "BFDOT tiles exist only where CTFORMER_NEON_BF16 is 1");
  // bf16 pairs split into floats need 2 more vectors of x and 3 of weights: 6 x 16 and 2 x 32
  // blocks spilled accumulators.
  constexpr bool kSplit = kInputsPerLane<T> == 2 && !kDot;
  // R rows from `row` by V * 4 columns from `col`.
  auto run = [&]<int R, int V>(int row, int col) {
    const T* panel_cols = b + col * kInputsPerLane<T>;
    if constexpr (kDot) {
#if CTFORMER_NEON_BF16
      block_pairs<R, V, MR>(depth, a + row, panel_cols, bias + col, epilogue, c + row * ldc + col,
                            ldc, cols - col);
#endif
    } else {
      block<R, V, MR>(depth, a + row, panel_cols, bias + col, epilogue, c + row * ldc + col, ldc,
                      cols - col);
    }
  };
  if constexpr (MR <= 2 && !kSplit) {
    run.template operator()<MR, 8>(0, 0);
  } else {
    constexpr int kMaxBlockRows = kSplit ? 4 : 6;
    constexpr int kBlocks = (MR + kMaxBlockRows - 1) / kMaxBlockRows;
    for (int col = 0; col < kPanel && col < cols; col += 16) {
      // Blocks of near-equal height: rows [i MR / kBlocks, (i + 1) MR / kBlocks).
      [&]<int... I>(std::integer_sequence<int, I...>) {
        (run.template operator()<(I + 1) * MR / kBlocks - I * MR / kBlocks, 4>(I * MR / kBlocks,
                                                                               col),
         ...);
      }
      (std::make_integer_sequence<int, kBlocks>{});
    }
  }
}

}  // namespace ctformer::ops::packed::neon

#endif  // CTFORMER_PACKED_NEON
