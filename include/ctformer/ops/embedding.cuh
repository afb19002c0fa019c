// CUDA: out[i] = wte[tokens[i]] + wpe[positions[i]], in one gather.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/embedding.hpp"
#include "ctformer/ops/linear.cuh"

namespace ctformer::ops {
namespace cuda_kernels {

inline constexpr int kEmbeddingThreads = 256;

// One block per token; threads stride over the C channels (coalesced).
template <class T>
__global__ void __launch_bounds__(kEmbeddingThreads)
    embedding_kernel(const std::int32_t* __restrict__ tokens,     // (N)
                     const std::int32_t* __restrict__ positions,  // (N)
                     const T* __restrict__ wte,                   // (V, C)
                     const T* __restrict__ wpe,                   // (P, C)
                     T* __restrict__ out,                         // (N, C)
                     std::int64_t C) {
  using cuda_detail::to_float;
  const std::int64_t i = blockIdx.x;
  const T* token = wte + std::int64_t(tokens[i]) * C;
  const T* position = wpe + std::int64_t(positions[i]) * C;
  for (std::int64_t c = threadIdx.x; c < C; c += kEmbeddingThreads)
    out[i * C + c] = cuda_detail::from_float<T>(to_float(token[c]) + to_float(position[c]));
}

}  // namespace cuda_kernels

template <>
struct Embedding<cuda> {
  // The token table is the tied LM head's weight, stored (V, C) as in the checkpoint.
  template <cuda_detail::DeviceElement T>
  static void run(std::span<const std::int32_t> tokens, std::span<const std::int32_t> positions,
                  const typename Linear<cuda>::template Weight<T>& wte,
                  MatrixView<const std::type_identity_t<T>> wpe, MatrixView<T> out) {
    run<T>(tokens, positions, wte.view(), wpe, out);
  }

  template <cuda_detail::DeviceElement T>
  static void run(std::span<const std::int32_t> tokens,           // (N), device memory
                  std::span<const std::int32_t> positions,        // (N), device memory
                  MatrixView<const std::type_identity_t<T>> wte,  // (V, C)
                  MatrixView<const std::type_identity_t<T>> wpe,  // (P, C)
                  MatrixView<T> out) {                            // (N, C)
    if (out.rows == 0) return;
    cuda_detail::launch(cuda_kernels::embedding_kernel<T>, unsigned(out.rows),
                        cuda_kernels::kEmbeddingThreads, tokens.data(), positions.data(), wte.data,
                        wpe.data, out.data, out.cols);
    CTFORMER_CUDA_CHECK_LAUNCH("embedding_kernel");
  }
};

}  // namespace ctformer::ops
