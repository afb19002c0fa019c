// The CUDA LayerNorm and RMSNorm kernel: one warp per row, statistics in fp32 (two passes over the
// row, which stays in L1). ops/layer_norm.cuh launches it. Like ops/attention_kernels.cuh, this
// header needs nothing of the CUDA runtime, so tests/cuda/emulation.hpp runs it on the CPU.
#pragma once

#include <cmath>
#include <cstdint>

#include "ctformer/backends/cuda/numeric.cuh"

namespace ctformer::ops::cuda_kernels {

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

}  // namespace ctformer::ops::cuda_kernels
