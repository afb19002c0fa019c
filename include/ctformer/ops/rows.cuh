// CUDA row gather (the last token of each sequence) and argmax over logits.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include <cub/block/block_reduce.cuh>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/rows.hpp"

namespace ctformer::ops {
namespace cuda_kernels {

inline constexpr int kRowThreads = 256;

template <class T>
__global__ void __launch_bounds__(kRowThreads)
    gather_rows_kernel(const T* __restrict__ x,                // (N, C)
                       const std::int64_t* __restrict__ rows,  // (M)
                       std::int64_t C,
                       T* __restrict__ out) {  // (M, C)
  const T* src = x + rows[blockIdx.x] * C;
  T* dst = out + std::int64_t(blockIdx.x) * C;
  for (std::int64_t c = threadIdx.x; c < C; c += kRowThreads) dst[c] = src[c];
}

// A candidate of the argmax, ordered as argmax_row (ops/rows.hpp) orders them: NaN above every
// number, then the larger value, then the lower index. A total order, so the block reduction gives
// the same winner whatever order it combines the candidates in (tests/cuda/host_side_test.cu).
struct ArgmaxCandidate {
  float value;
  std::int32_t index;
};
struct BetterCandidate {
  __host__ __device__ ArgmaxCandidate operator()(const ArgmaxCandidate& a,
                                                 const ArgmaxCandidate& b) const {
    const bool a_nan = a.value != a.value, b_nan = b.value != b.value;
    if (a_nan != b_nan) return a_nan ? a : b;
    if (a_nan || a.value == b.value) return a.index < b.index ? a : b;
    return a.value > b.value ? a : b;
  }
};

// One block per row of logits.
template <class T>
__global__ void __launch_bounds__(kRowThreads)
    argmax_kernel(const T* __restrict__ logits,  // (M, V)
                  std::int64_t V,
                  std::int32_t* __restrict__ ids) {  // (M)
  const T* row = logits + std::int64_t(blockIdx.x) * V;
  ArgmaxCandidate best{-INFINITY, std::int32_t(V)};
  for (std::int64_t v = threadIdx.x; v < V; v += kRowThreads)
    best = BetterCandidate{}(best, {cuda_detail::to_float(row[v]), std::int32_t(v)});
  using Reduce = cub::BlockReduce<ArgmaxCandidate, kRowThreads>;
  __shared__ typename Reduce::TempStorage storage;
  const ArgmaxCandidate winner = Reduce(storage).Reduce(best, BetterCandidate{});
  if (threadIdx.x == 0) ids[blockIdx.x] = winner.index < V ? winner.index : 0;
}

}  // namespace cuda_kernels

template <>
struct GatherRows<cuda> {
  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const std::type_identity_t<T>> x,  // (N, C)
                  std::span<const std::int64_t> rows,           // (M), device memory
                  MatrixView<T> out) {                          // (M, C)
    if (rows.empty()) return;
    cuda_detail::launch(cuda_kernels::gather_rows_kernel<T>, unsigned(rows.size()),
                        cuda_kernels::kRowThreads, x.data, rows.data(), x.cols, out.data);
    CTFORMER_CUDA_CHECK_LAUNCH("gather_rows_kernel");
  }
};

template <>
struct Argmax<cuda> {
  // Blocks until the ids are on the host.
  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const T> logits,     // (M, V), device memory
                  std::span<std::int32_t> ids) {  // (M), host memory
    check_one_id_per_row("Argmax", logits.rows, ids.size());
    if (logits.rows == 0) return;
    cuda_detail::Context& context = cuda_detail::context();
    auto* device_ids = static_cast<std::int32_t*>(context.scratch(ids.size_bytes()));
    cuda_detail::launch(cuda_kernels::argmax_kernel<T>, unsigned(logits.rows),
                        cuda_kernels::kRowThreads, logits.data, logits.cols, device_ids);
    CTFORMER_CUDA_CHECK_LAUNCH("argmax_kernel");
    CTFORMER_CUDA_CHECK(cudaMemcpyAsync(ids.data(), device_ids, ids.size_bytes(),
                                        cudaMemcpyDeviceToHost, context.stream()));
    CTFORMER_CUDA_CHECK(cudaStreamSynchronize(context.stream()));
  }
};

}  // namespace ctformer::ops
