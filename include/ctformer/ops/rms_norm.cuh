// CUDA RMSNorm: LayerNorm's kernel (ops/layer_norm.cuh) without the mean and the shift.
#pragma once

#include <span>
#include <type_traits>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/layer_norm.cuh"
#include "ctformer/ops/rms_norm.hpp"

namespace ctformer::ops {

template <>
struct RmsNorm<cuda> {
  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const std::type_identity_t<T>> x,     // (N, C)
                  std::span<const std::type_identity_t<T>> gamma,  // (C)
                  float eps,
                  MatrixView<T> out) {  // (N, C); may alias x
    cuda_kernels::launch_row_norm<T, false>(x, gamma.data(), nullptr, eps, out);
  }
};

}  // namespace ctformer::ops
