// CUDA attention over the paged KV cache: PagedAttention, which launches the kernels of
// ops/attention_kernels.cuh (the algorithm is described there).
//
// The head size is a template argument: with_head_size() below is the one place where a model's
// runtime head size becomes one, from kCudaHeadSizes (ops/attention_kernels.cuh).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/cache/paged_kv_cache.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/attention.hpp"
#include "ctformer/ops/attention_kernels.cuh"

namespace ctformer {

namespace cuda_detail {

inline std::string supported_head_sizes() {
  std::string s;
  for (const int d : kCudaHeadSizes) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return s;
}

// Throws ConfigError, listing the supported sizes, if `head_size` is not one of them.
inline void check_head_size(std::int64_t head_size) {
  if (std::find(std::begin(kCudaHeadSizes), std::end(kCudaHeadSizes), head_size) ==
      std::end(kCudaHeadSizes))
    throw ConfigError("the CUDA backend does not support head size " + std::to_string(head_size) +
                      " (n_embd / n_head): supported head sizes are " + supported_head_sizes() +
                      "; use --device cpu for this model");
}

// Calls f.template operator()<D>() with the compile-time D equal to `head_size`.
template <class F>
void with_head_size(std::int64_t head_size, F&& f) {
  check_head_size(head_size);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((head_size == kCudaHeadSizes[I] ? (f.template operator()<kCudaHeadSizes[I]>(), 0) : 0), ...);
  }
  (std::make_index_sequence<std::size(kCudaHeadSizes)>{});
}

}  // namespace cuda_detail

namespace ops {

template <>
struct PagedAttention<cuda> {
  // Splitting the keys of one decode query across blocks: at most this many splits.
  static constexpr std::int64_t kMaxSplits = 32;

  // Appends the step's keys and values to the cache, then attends. Positions (past_length +
  // num_rows of a slice) must be below 2^31: the model keeps them below n_positions.
  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const std::type_identity_t<T>> qkv,  // (N, 3C)
                  const StepSlices& step,                         // slices in device memory
                  KvLayerView<T> cache, std::int64_t n_head, float scale,
                  MatrixView<T> out) {  // (N, C)
    const std::int64_t C = cache.keys.cols;
    check_attention_shapes(qkv.rows, qkv.cols, C, n_head, out.rows, out.cols);
    if (qkv.rows == 0) return;
    // The kernel moves four elements at a time: qkv and the cache must be aligned to four
    // elements, as activations and every layer of a PagedKvCache are.
    auto aligned = [](const T* p) {
      return reinterpret_cast<std::uintptr_t>(p) % (4 * sizeof(T)) == 0;
    };
    if (!aligned(qkv.data) || !aligned(cache.keys.data) || !aligned(cache.values.data))
      throw InputError("PagedAttention: qkv and the cache's keys and values must start on a " +
                       std::to_string(4 * sizeof(T)) + "-byte boundary");
    cuda_detail::with_head_size(C / n_head, [&]<int D>() {
      if (step.max_new_rows == 1)
        launch<T, D, 1, 1>(qkv, step, cache, n_head, scale, out);
      else
        launch<T, D, 4, 4>(qkv, step, cache, n_head, scale, out);
    });
  }

 private:
  template <class T, int D, int kWarps, int kRowsPerWarp>
  static void launch(MatrixView<const T> qkv, const StepSlices& step, KvLayerView<T> cache,
                     std::int64_t n_head, float scale, MatrixView<T> out) {
    using Shape = cuda_kernels::AttentionShape<D, kWarps, kRowsPerWarp>;
    using cuda_detail::ceil_div;
    cuda_detail::Context& context = cuda_detail::context();
    const auto S = std::int64_t(step.slices.size());
    const std::int64_t N = qkv.rows, C = cache.keys.cols;

    // Decode: enough splits that the blocks fill the GPU twice over. Not from the lengths: see the
    // top of ops/attention_kernels.cuh.
    const std::int64_t splits =
        step.max_new_rows == 1
            ? std::clamp<std::int64_t>(ceil_div(2 * context.device().multiprocessors, S * n_head),
                                       1, kMaxSplits)
            : 1;

    const std::int64_t query_blocks = ceil_div(step.max_new_rows, Shape::kRows);
    float* partial = nullptr;
    unsigned* arrivals = nullptr;
    if (splits > 1) {
      partial = static_cast<float*>(
          context.scratch(std::size_t(N * n_head * splits * (D + 2)) * sizeof(float)));
      arrivals = context.arrival_counters(std::size_t(S * query_blocks * n_head));
    }
    const cuda_kernels::AttentionParams<T> params{
        qkv.data,         step.slices.data(),
        cache.keys.data,  cache.values.data,
        out.data,         partial,
        arrivals,         C,
        cache.block_size, int(n_head),
        int(splits),      scale * 1.4426950408889634f};  // log2(e)
    if (query_blocks > 65535 || n_head * splits > 65535)
      throw InputError("PagedAttention: " + std::to_string(step.max_new_rows) +
                       " new tokens of one sequence and " + std::to_string(n_head) +
                       " heads are more than the kernel's grid allows (" +
                       std::to_string(65535 * Shape::kRows) +
                       " tokens, 65535 heads); run the prompt in shorter chunks");
    const dim3 grid(unsigned(S), unsigned(query_blocks), unsigned(n_head * splits));
    cuda_detail::launch(cuda_kernels::attention_kernel<T, D, Shape>, grid, Shape::kThreads, params);
    CTFORMER_CUDA_CHECK_LAUNCH("attention_kernel");
  }
};

}  // namespace ops
}  // namespace ctformer
