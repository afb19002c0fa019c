// CUDA LayerNorm: launches ops/layer_norm_kernels.cuh's row_norm_kernel, which RMSNorm
// (ops/rms_norm.cuh) shares.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/layer_norm.hpp"
#include "ctformer/ops/layer_norm_kernels.cuh"

namespace ctformer::ops {
namespace cuda_kernels {

template <class T, bool kCentered>
void launch_row_norm(MatrixView<const T> x, const T* gamma, const T* beta, float eps,
                     MatrixView<T> out) {
  if (x.rows == 0) return;
  const auto blocks = unsigned(cuda_detail::ceil_div(x.rows, kRowNormWarps));
  cuda_detail::launch(row_norm_kernel<T, kCentered>, blocks, kRowNormWarps * 32, x.data, gamma,
                      beta, eps, x.rows, x.cols, out.data);
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
