// The CPU's matrix product for projections: weights packed once at load into column panels, and an
// AVX-512 register-tiled kernel that streams them with the epilogue fused into the store.
//
// Why not Eigen's GEMM: it re-packs the weight matrix on every call (15% of a decode step on 2
// cores) and cannot fuse the bias, GELU and residual add. Packing once at load is what oneDNN does
// for torch. The kernel is chosen at run time (`__builtin_cpu_supports`), so a build without
// -march=native still gets it; other CPUs run Eigen's product panel by panel over the same packing.
//
// Packing: W, logically (K, N) = (in, out), is stored as ceil(N / 32) panels of K rows of 32
// columns, the last panel zero-padded. A tile of MR rows of x times one panel is MR x 32 floats:
// 2 * MR AVX-512 accumulators (MR = 12 uses 24 of the 32 registers, enough independent FMA chains
// to hide the FMA latency on both pipes). A panel is K * 128 bytes in fp32 (384 KiB for GPT-2's
// widest K, 3072), so it stays in L2 while every row tile of x runs over it.
//
// bf16 weights are stored in pairs of consecutive inputs: a 32-bit lane holds W[k][n] and
// W[k+1][n], the operand layout of AVX512_BF16's VDPBF16PS, which multiplies such pairs by pairs of
// x and adds both products to a float lane: twice an FMA's multiply-adds per instruction. So a bf16
// projection takes its input x rounded to bf16 (as PyTorch's bf16 matmul does), on every CPU: the
// AVX-512F kernel and the portable one round x the same way, and give the same results up to the
// order of the sums.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "ctformer/core/matrix_view.hpp"
#include "ctformer/core/parallel.hpp"
#include "ctformer/ops/epilogue.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CTFORMER_PACKED_AVX512 1
#define CTFORMER_AVX512_TARGET [[gnu::target("avx512f")]]  // every instruction used is AVX512F
#define CTFORMER_AVX512_BF16_TARGET [[gnu::target("avx512f,avx512bf16")]]
#else
#define CTFORMER_PACKED_AVX512 0
#endif

namespace ctformer::ops {

namespace packed {

inline constexpr std::int64_t kPanel = 32;  // columns per panel: two AVX-512 vectors of float
inline constexpr int kMaxRows = 12;         // rows of x per register tile

// How many consecutive inputs of one output share a 32-bit lane of the packing: 2 for bf16 (the
// pairs VDPBF16PS takes), else 1.
template <class T>
inline constexpr int kInputsPerLane = std::is_same_v<T, Eigen::bfloat16> ? 2 : 1;

// W (in, out) in panels, in its storage type T (float, Eigen::half or Eigen::bfloat16).
template <class T>
class PackedMatrix {
 public:
  PackedMatrix() = default;

  // `w` is (in, out) when `layout` is in_out, (out, in) when it is out_in.
  PackedMatrix(MatrixView<const T> w, WeightLayout layout)
      : in_(layout == WeightLayout::in_out ? w.rows : w.cols),
        out_(layout == WeightLayout::in_out ? w.cols : w.rows),
        depth_((in_ + kLane - 1) / kLane * kLane),
        panels_((out_ + kPanel - 1) / kPanel),
        data_(static_cast<T*>(::operator new (bytes(), std::align_val_t{64}))) {
    const std::int64_t K = in_, N = out_;
    CTFORMER_PARALLEL_FOR
    for (std::int64_t p = 0; p < panels_; ++p) {
      T* panel = data_.get() + p * depth_ * kPanel;
      for (std::int64_t j = 0; j < kPanel; ++j) {  // out_in reads rows of w, in_out strides
        const std::int64_t n = p * kPanel + j;
        for (std::int64_t k = 0; k < depth_; ++k)
          panel[offset(k, j)] = n >= N || k >= K                 ? T(0.0f)
                                : layout == WeightLayout::in_out ? w.data[k * N + n]
                                                                 : w.data[n * K + k];
      }
    }
  }

  std::int64_t in() const { return in_; }
  std::int64_t out() const { return out_; }
  // Inputs as packed: in() rounded up to a whole lane, the padding zero.
  std::int64_t depth() const { return depth_; }
  std::int64_t panels() const { return panels_; }
  const T* panel(std::int64_t p) const { return data_.get() + p * depth_ * kPanel; }
  // W[k][n]: the weight from input k to output n (for the tied embedding: token n's k-th value).
  T operator()(std::int64_t k, std::int64_t n) const {
    return panel(n / kPanel)[offset(k, n % kPanel)];
  }

 private:
  struct AlignedDelete {
    void operator()(T* p) const { ::operator delete (p, std::align_val_t{64}); }
  };
  static constexpr int kLane = kInputsPerLane<T>;
  // Where W[k][p * kPanel + j] sits in panel p.
  static std::int64_t offset(std::int64_t k, std::int64_t j) {
    return (k / kLane * kPanel + j) * kLane + k % kLane;
  }
  std::size_t bytes() const { return std::size_t(panels_ * depth_ * kPanel) * sizeof(T); }

  std::int64_t in_ = 0, out_ = 0, depth_ = 0, panels_ = 0;
  std::unique_ptr<T, AlignedDelete> data_;
};

inline float round_to_bf16(float v) {
  return static_cast<float>(Eigen::bfloat16(v));
}

// Rows [row, row + rows) of x, interleaved: element (r, k) at a[k * rows + r], so that the kernel
// broadcasts consecutive floats; zero for k in [x.cols, depth). Rounded to bf16 for bf16 weights.
template <class T>
void pack_rows(MatrixView<const float> x, std::int64_t row, int rows, std::int64_t depth,
               float* a) {
  for (int r = 0; r < rows; ++r) {
    const float* src = x.row(row + r);
    for (std::int64_t k = 0; k < depth; ++k) {
      const float v = k < x.cols ? src[k] : 0.0f;
      a[k * rows + r] = kInputsPerLane<T> == 2 ? round_to_bf16(v) : v;
    }
  }
}

// GPT-2's "gelu_new" (the tanh approximation), written as x * sigmoid(2u), u = sqrt(2/pi)(x +
// 0.044715 x^3), which is the same function: 0.5 (1 + tanh u) = 1 / (1 + exp(-2u)).
inline float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
  return x / (1.0f + std::exp(-2.0f * u));
}

#if CTFORMER_PACKED_AVX512
// GCC 12's avx512fintrin.h passes _mm512_undefined_ps() through some intrinsics, and inlining them
// draws a false -Wuninitialized (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

inline bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

inline bool cpu_has_avx512_bf16() {
  static const bool has = cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
  return has;
}

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

// exp(x) for the GELU: 2^n * p(r) with x = n ln2 + r, |r| <= ln2/2, p of degree 6 (Cephes' expf
// coefficients, error about 1 ulp). Out-of-range inputs saturate to 0 and +inf as expf does.
CTFORMER_AVX512_TARGET inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-103.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
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

// tile<rows> or tile_pairs<rows> for a run-time `rows` in [1, kMaxRows].
template <class T, bool kPairs, class A, int... MR>
CTFORMER_AVX512_TARGET void tile_of(int rows, std::int64_t depth, const A* a, const T* b,
                                    const float* bias, Epilogue e, float* c, std::int64_t ldc,
                                    int cols, std::integer_sequence<int, MR...>) {
  if constexpr (kPairs)
    ((rows == MR + 1 ? tile_pairs<MR + 1>(depth, a, b, bias, e, c, ldc, cols) : void()), ...);
  else
    ((rows == MR + 1 ? tile<MR + 1, T>(depth, a, b, bias, e, c, ldc, cols) : void()), ...);
}

#pragma GCC diagnostic pop
#endif  // CTFORMER_PACKED_AVX512

// The bias of panel p as 32 floats, zero past the end (and all zero for Epilogue::none).
template <class T>
void panel_bias(std::span<const T> bias, std::int64_t p, std::int64_t N, float* out) {
  for (std::int64_t j = 0; j < kPanel; ++j) {
    const std::int64_t n = p * kPanel + j;
    out[j] = n < N && !bias.empty() ? static_cast<float>(bias[std::size_t(n)]) : 0.0f;
  }
}

// Which kernel runs: the fastest this CPU supports; AVX-512F alone, as CPUs without AVX512_BF16 run
// bf16 (the portable kernel on CPUs without AVX-512F); or the portable one. The last two are for
// tests.
enum class Kernel { best, avx512f, portable };

// The kernel `best` means on this CPU, for messages and benchmarks.
inline const char* best_kernel_name() {
#if CTFORMER_PACKED_AVX512
  if (cpu_has_avx512_bf16()) return "avx512 (+bf16) 12x32 packed";
  if (cpu_has_avx512()) return "avx512 12x32 packed";
#endif
  return "portable (Eigen per panel)";
}

// out (M, N) (epilogue)= x (M, K) W (K, N) + bias, x rounded to bf16 when W is bf16. Parallel over
// panels of W (OpenMP when the translation unit is built with it).
template <class T>
void matmul(MatrixView<const float> x, const PackedMatrix<T>& w, std::span<const T> bias,
            Epilogue epilogue, MatrixView<float> out, Kernel kernel = Kernel::best) {
  const std::int64_t M = x.rows, K = w.in(), N = w.out(), panels = w.panels();
  const std::int64_t depth = w.depth();
#if CTFORMER_PACKED_AVX512
  if (kernel != Kernel::portable && cpu_has_avx512()) {
    // x once, in row tiles of near-equal height, interleaved, shared by every thread. Equal tiles
    // (64 rows: 6 tiles of 10 or 11, not 5 of 12 and one of 4) keep every tile's FMA chains full.
    // The threads pack x's tiles, then share the panels: packing before the team started left the
    // other threads waiting (3.5% of a bf16 seed-workload run on 2 cores).
    const std::int64_t tiles = (M + kMaxRows - 1) / kMaxRows;
    auto tile_start = [M, tiles](std::int64_t t) { return t * M / tiles; };
    auto run = [&]<bool kPairs, class A>(A* a, auto pack) {
      const std::int64_t lanes = depth / (kPairs ? 2 : 1);  // elements of a per row of x
      CTFORMER_PARALLEL {
        CTFORMER_FOR
        for (std::int64_t t = 0; t < tiles; ++t)
          pack(tile_start(t), int(tile_start(t + 1) - tile_start(t)), a + tile_start(t) * lanes);
        CTFORMER_FOR
        for (std::int64_t p = 0; p < panels; ++p) {
          alignas(64) float b[kPanel];
          panel_bias(bias, p, N, b);
          const int cols = int(std::min<std::int64_t>(kPanel, N - p * kPanel));
          for (std::int64_t t = 0; t < tiles; ++t) {
            const std::int64_t row = tile_start(t);
            const int rows = int(tile_start(t + 1) - row);
            tile_of<T, kPairs>(rows, depth, a + row * lanes, w.panel(p), b, epilogue,
                               out.row(row) + p * kPanel, out.cols, cols,
                               std::make_integer_sequence<int, kMaxRows>{});
          }
        }
      }
    };
    if constexpr (kInputsPerLane<T> == 2) {
      if (kernel == Kernel::best && cpu_has_avx512_bf16()) {
        thread_local std::vector<std::uint32_t> pairs;
        pairs.resize(std::size_t(M * depth / 2));
        return run.template operator()<true>(pairs.data(),
                                             [&](std::int64_t row, int rows, std::uint32_t* a) {
                                               pack_row_pairs(x, row, rows, depth, a);
                                             });
      }
    }
    thread_local std::vector<float> packed_x;
    packed_x.resize(std::size_t(M * depth));
    return run.template operator()<false>(
        packed_x.data(),
        [&](std::int64_t row, int rows, float* a) { pack_rows<T>(x, row, rows, depth, a); });
  }
#else
  (void)kernel;
#endif
  // Portable path: Eigen's product of x with each panel, written straight into out's columns. bf16
  // panels are unpacked from their pairs first, and x rounded as the AVX-512 kernels round it.
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  constexpr bool kBf16 = kInputsPerLane<T> == 2;
  RowMajor rounded;
  if constexpr (kBf16)
    rounded = Eigen::Map<const RowMajor>(x.data, M, K).unaryExpr([](float v) {
      return round_to_bf16(v);
    });
  const Eigen::Map<const RowMajor> X(kBf16 ? rounded.data() : x.data, M, K);
  CTFORMER_PARALLEL_FOR
  for (std::int64_t p = 0; p < panels; ++p) {
    const std::int64_t cols = std::min<std::int64_t>(kPanel, N - p * kPanel);
    Eigen::Map<RowMajor, 0, Stride> Y(out.data + p * kPanel, M, cols, Stride(out.cols));
    auto product = [&] {
      using Panel = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      if constexpr (std::is_same_v<T, float>) {
        return X * Eigen::Map<const Panel, 0, Stride>(w.panel(p), K, cols, Stride(kPanel));
      } else if constexpr (!kBf16) {
        return X * Eigen::Map<const Panel, 0, Stride>(w.panel(p), K, cols, Stride(kPanel))
                       .template cast<float>();
      } else {
        RowMajor W(K, cols);
        for (std::int64_t k = 0; k < K; ++k)
          for (std::int64_t j = 0; j < cols; ++j)
            W(k, j) = static_cast<float>(w(k, p * kPanel + j));
        return RowMajor(X * W);
      }
    };
    if (epilogue == Epilogue::bias_residual)
      Y.noalias() += product();
    else
      Y.noalias() = product();
    if (epilogue == Epilogue::none) continue;
    float b[kPanel];
    panel_bias(bias, p, N, b);
    for (std::int64_t r = 0; r < M; ++r)
      for (std::int64_t j = 0; j < cols; ++j) {
        const float y = Y(r, j) + b[j];
        Y(r, j) = epilogue == Epilogue::bias_gelu ? gelu_tanh(y) : y;
      }
  }
}

}  // namespace packed
}  // namespace ctformer::ops
