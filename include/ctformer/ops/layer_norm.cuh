// CUDA LayerNorm: one warp per row, statistics in fp32 (two passes over the row, which stays in
// L1). The same kernel, without the mean and the shift, is RMSNorm's (ops/rms_norm.cuh).
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/layer_norm.hpp"

namespace ctformer::ops {
namespace cuda_kernels {

inline constexpr int kRowNormWarps = 4;  // rows per block

// kCentered: LayerNorm, (x - mean) * rstd * gamma + beta. Otherwise RMSNorm, x * rstd * gamma, with
// rstd from the mean square (beta is not read). out may alias x: each element is read, then
// written, by the same lane.
template <class T, bool kCentered>
__global__ void __launch_bounds__(kRowNormWarps * 32)
    row_norm_kernel(const T* x,                   // (N, C)
                    const T* __restrict__ gamma,  // (C)
                    const T* __restrict__ beta,   // (C), LayerNorm only
                    float eps, std::int64_t N, std::int64_t C,
                    T* out) {  // (N, C)
  using cuda_detail::to_float;
  const std::int64_t row = std::int64_t(blockIdx.x) * kRowNormWarps + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= N) return;  // warp-uniform
  const T* xi = x + row * C;
  float mean = 0;
  if constexpr (kCentered) {
    float sum = 0;
    for (std::int64_t c = lane; c < C; c += 32) sum += to_float(xi[c]);
    mean = cuda_detail::warp_sum(sum) / float(C);
  }
  float squares = 0;
  for (std::int64_t c = lane; c < C; c += 32) {
    const float d = to_float(xi[c]) - mean;
    squares += d * d;
  }
  const float rstd = rsqrtf(cuda_detail::warp_sum(squares) / float(C) + eps);
  T* yi = out + row * C;
  for (std::int64_t c = lane; c < C; c += 32) {
    float y = (to_float(xi[c]) - mean) * rstd * to_float(gamma[c]);
    if constexpr (kCentered) y += to_float(beta[c]);
    yi[c] = cuda_detail::from_float<T>(y);
  }
}

template <class T, bool kCentered>
void launch_row_norm(MatrixView<const T> x, const T* gamma, const T* beta, float eps,
                     MatrixView<T> out) {
  if (x.rows == 0) return;
  const auto blocks = unsigned(cuda_detail::ceil_div(x.rows, kRowNormWarps));
  row_norm_kernel<T, kCentered><<<blocks, kRowNormWarps * 32, 0, cuda_detail::stream()>>>(
      x.data, gamma, beta, eps, x.rows, x.cols, out.data);
  CTFORMER_CUDA_CHECK_LAUNCH("row_norm_kernel");
}

}  // namespace cuda_kernels

template <>
struct LayerNorm<cuda> {
  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const std::type_identity_t<T>> x,     // (N, C)
                  std::span<const std::type_identity_t<T>> gamma,  // (C)
                  std::span<const std::type_identity_t<T>> beta,   // (C)
                  float eps,
                  MatrixView<T> out) {  // (N, C); may alias x
    cuda_kernels::launch_row_norm<T, true>(x, gamma.data(), beta.data(), eps, out);
  }
};

}  // namespace ctformer::ops
