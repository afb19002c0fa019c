// CUDA LayerNorm: one warp per row, statistics in fp32 (two passes over the row, which stays in
// L1).
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/layer_norm.hpp"

namespace ctformer::ops {
namespace cuda_kernels {

inline constexpr int kLayerNormWarps = 4;  // rows per block

// out may alias x: each element is read, then written, by the same lane.
template <class T>
__global__ void __launch_bounds__(kLayerNormWarps * 32)
    layer_norm_kernel(const T* x,                   // (N, C)
                      const T* __restrict__ gamma,  // (C)
                      const T* __restrict__ beta,   // (C)
                      float eps, std::int64_t N, std::int64_t C,
                      T* out) {  // (N, C)
  using cuda_detail::to_float;
  const std::int64_t row = std::int64_t(blockIdx.x) * kLayerNormWarps + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (row >= N) return;  // warp-uniform
  const T* xi = x + row * C;
  float sum = 0;
  for (std::int64_t c = lane; c < C; c += 32) sum += to_float(xi[c]);
  const float mean = cuda_detail::warp_sum(sum) / float(C);
  float squares = 0;
  for (std::int64_t c = lane; c < C; c += 32) {
    const float d = to_float(xi[c]) - mean;
    squares += d * d;
  }
  const float rstd = rsqrtf(cuda_detail::warp_sum(squares) / float(C) + eps);
  T* yi = out + row * C;
  for (std::int64_t c = lane; c < C; c += 32)
    yi[c] = cuda_detail::from_float<T>((to_float(xi[c]) - mean) * rstd * to_float(gamma[c]) +
                                       to_float(beta[c]));
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
    if (x.rows == 0) return;
    const auto blocks = unsigned(cuda_detail::ceil_div(x.rows, cuda_kernels::kLayerNormWarps));
    cuda_kernels::layer_norm_kernel<T>
        <<<blocks, cuda_kernels::kLayerNormWarps * 32, 0, cuda_detail::stream()>>>(
            x.data, gamma.data(), beta.data(), eps, x.rows, x.cols, out.data);
    CTFORMER_CUDA_CHECK_LAUNCH("layer_norm_kernel");
  }
};

}  // namespace ctformer::ops
