// The CPU projections' weight layout: W packed once at load into column panels that the register-
// tiled kernels (packed_matmul_avx512.hpp, packed_matmul_avx2.hpp, packed_matmul_neon.hpp) stream,
// and x packed per call into the row tiles they broadcast from. ops/packed_matmul.hpp chooses the
// kernel.
//
// Packing: W, logically (K, N) = (in, out), is stored as ceil(N / 32) panels of K rows of 32
// columns, the last panel zero-padded. A panel is K * 128 bytes in fp32 (384 KiB for GPT-2's widest
// K, 3072), so it stays in L2 while every row tile of x runs over it.
//
// bf16 weights are stored in pairs of consecutive inputs: a 32-bit lane holds W[k][n] and
// W[k+1][n], the operand layout of AVX512_BF16's VDPBF16PS and Arm's BFDOT, which multiply such
// pairs by pairs of x and add both products to a float lane. So a bf16 projection takes its input x
// rounded to bf16 (as PyTorch's bf16 matmul does), on every CPU: every kernel rounds x the same
// way, and they give the same results up to the order of the sums.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>

#include <Eigen/Core>

#include "ctformer/core/matrix_view.hpp"
#include "ctformer/core/parallel.hpp"
#include "ctformer/ops/epilogue.hpp"

// The x86 kernels are compiled with function target attributes and chosen at run time, so a build
// without -march=native still gets them. Every AArch64 CPU has the NEON kernel's instructions.
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define CTFORMER_PACKED_X86 1
#else
#define CTFORMER_PACKED_X86 0
#endif
#if defined(__aarch64__) && defined(__ARM_NEON) && (defined(__GNUC__) || defined(__clang__))
#define CTFORMER_PACKED_NEON 1
#else
#define CTFORMER_PACKED_NEON 0
#endif

namespace ctformer::ops {

namespace packed {

inline constexpr std::int64_t kPanel = 32;  // columns per panel: two AVX-512 vectors of float
inline constexpr int kMaxRows = 12;         // rows of x per row tile

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
// 0.044715 x^3), which is the same function: 0.5 (1 + tanh u) = 1 / (1 + exp(-2u)). The vector
// kernels spell the same steps with exp(x) = 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, p of degree 6
// (Cephes' expf coefficients, error about 1 ulp).
inline float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
  return x / (1.0f + std::exp(-2.0f * u));
}

namespace exp_poly {
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // ln 2 = hi + lo
// p(r) = 1 + r + r^2 (c[5] + r (c[4] + ... + r c[0])), Horner's order.
inline constexpr float kC[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
}  // namespace exp_poly

}  // namespace packed
}  // namespace ctformer::ops
