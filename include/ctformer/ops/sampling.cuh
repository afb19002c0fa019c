// CUDA sampling, the same contract as Sample<cpu>: token biases, the repetition penalty and the
// presence/frequency penalties, then temperature, top-k, top-p and min-p; greedy (argmax of the
// adjusted scores) when the temperature is 0. Rows that sample are sorted by score with CUB's
// segmented radix sort (stable, so ties keep the lower id first, as on the CPU); the softmax, the
// top-p and min-p cuts and the draw then walk each sorted row with block-wide scans. The uniform
// draw of each row is computed on the host with the same counter-based generator as the CPU, so
// both backends draw the same number; the chosen token can differ only where that number falls
// within rounding of a boundary between two tokens' cumulative probabilities, or the running share
// of the top-p cut within rounding of top_p (the GPU sums in another order).
#pragma once

#include <cfloat>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/core/random.hpp"
#include "ctformer/ops/rows.cuh"
#include "ctformer/ops/sampling.hpp"

namespace ctformer::ops {
namespace cuda_kernels {

inline constexpr int kSampleThreads = 256;

struct SampleParams {
  float temperature;  // <= 0: greedy
  std::int32_t top_k;
  float top_p;
  float min_p;
  float repetition_penalty;
  float uniform;                            // the row's draw in [0, 1)
  std::int32_t history_begin, history_end;  // the row's distinct history tokens
  std::int32_t biases_begin, biases_end;
};

struct SmallerIndex {
  __device__ int operator()(int a, int b) const { return a < b ? a : b; }
};

// scores = biased and penalised logits, divided by the temperature for rows that sample;
// indices = 0..V-1. Each pass writes distinct tokens, so a barrier between passes is enough.
template <class T>
__global__ void __launch_bounds__(kSampleThreads)
    sample_scores_kernel(const T* __restrict__ logits,  // (M, V)
                         const SampleParams* __restrict__ params,
                         const std::int32_t* __restrict__ history,
                         const TokenBias* __restrict__ biases, std::int64_t V,
                         float* __restrict__ scores,            // (M, V)
                         std::int32_t* __restrict__ indices) {  // (M, V)
  using cuda_detail::to_float;
  const SampleParams p = params[blockIdx.x];
  const T* in = logits + std::int64_t(blockIdx.x) * V;
  float* out = scores + std::int64_t(blockIdx.x) * V;
  for (std::int64_t v = threadIdx.x; v < V; v += kSampleThreads) {
    out[v] = to_float(in[v]);
    indices[std::int64_t(blockIdx.x) * V + v] = std::int32_t(v);
  }
  __syncthreads();
  const bool biased = p.biases_end > p.biases_begin;
  if (biased) {
    for (std::int32_t b = p.biases_begin + int(threadIdx.x); b < p.biases_end; b += kSampleThreads)
      out[biases[b].token] += biases[b].bias;
    __syncthreads();
  }
  if (p.repetition_penalty != 1.0f) {
    for (std::int32_t h = p.history_begin + int(threadIdx.x); h < p.history_end;
         h += kSampleThreads) {
      const float s = out[history[h]];
      out[history[h]] = s > 0 ? s / p.repetition_penalty : s * p.repetition_penalty;
    }
    __syncthreads();
  }
  if (biased) {
    for (std::int32_t b = p.biases_begin + int(threadIdx.x); b < p.biases_end; b += kSampleThreads)
      out[biases[b].token] -= biases[b].penalty;
    __syncthreads();
  }
  // Overflow and NaN become the largest float, as on the CPU (ops/sampling.hpp says why).
  if (p.temperature > 0.0f)
    for (std::int64_t v = threadIdx.x; v < V; v += kSampleThreads)
      out[v] = fminf(out[v] / p.temperature, FLT_MAX);
}

// One block per row: greedy rows take the argmax of `scores`; the others draw from the sorted row.
// Two resident blocks per SM asked of ptxas: without a minimum, ptxas (nvcc 13.0, sm_80) chose 40
// registers and spilled (tools/kernel_resources.py).
__global__ void __launch_bounds__(kSampleThreads, 2)
    sample_draw_kernel(const SampleParams* __restrict__ params, std::int64_t V,
                       const float* __restrict__ scores,                 // (M, V)
                       const float* __restrict__ sorted_scores,          // (M, V), descending
                       const std::int32_t* __restrict__ sorted_indices,  // (M, V)
                       std::int32_t* __restrict__ ids) {                 // (M)
  using Reduce = cub::BlockReduce<double, kSampleThreads>;
  using Scan = cub::BlockScan<double, kSampleThreads>;
  using ArgmaxReduce = cub::BlockReduce<ArgmaxCandidate, kSampleThreads>;
  using IndexReduce = cub::BlockReduce<int, kSampleThreads>;
  __shared__ union {
    typename Reduce::TempStorage reduce;
    typename Scan::TempStorage scan;
    typename ArgmaxReduce::TempStorage argmax;
    typename IndexReduce::TempStorage index;
  } storage;
  __shared__ double shared_value;
  __shared__ int shared_index;

  const SampleParams p = params[blockIdx.x];
  const std::int64_t offset = std::int64_t(blockIdx.x) * V;
  if (p.temperature <= 0.0f) {
    ArgmaxCandidate best{-INFINITY, std::int32_t(V)};
    for (std::int64_t v = threadIdx.x; v < V; v += kSampleThreads)
      best = BetterCandidate{}(best, {scores[offset + v], std::int32_t(v)});
    const ArgmaxCandidate winner = ArgmaxReduce(storage.argmax).Reduce(best, BetterCandidate{});
    if (threadIdx.x == 0) ids[blockIdx.x] = winner.index < V ? winner.index : 0;
    return;
  }

  const float* s = sorted_scores + offset;
  const std::int64_t k = (p.top_k > 0 && p.top_k < V) ? p.top_k : V;
  const double max_score = s[0];
  if (max_score == -INFINITY) {  // every token banned: the lowest id, first of the stable sort
    if (threadIdx.x == 0) ids[blockIdx.x] = sorted_indices[offset];
    return;
  }
  auto probability = [&](std::int64_t j) { return j < k ? exp(double(s[j]) - max_score) : 0.0; };

  // The first j < limit whose inclusive prefix sum of probabilities, each divided by `divisor`,
  // exceeds (or, with `or_equal`, reaches) `threshold`; `limit` if none. Also leaves the sum over
  // [0, limit) in shared_value.
  auto first_prefix_over = [&](std::int64_t limit, double threshold, bool or_equal,
                               double divisor = 1.0) {
    double running = 0.0;
    int found = INT_MAX;
    for (std::int64_t base = 0; base < limit; base += kSampleThreads) {
      const std::int64_t j = base + threadIdx.x;
      const double pj = j < limit ? probability(j) / divisor : 0.0;
      double inclusive, aggregate;
      Scan(storage.scan).InclusiveSum(pj, inclusive, aggregate);
      __syncthreads();
      const double cumulative = running + inclusive;
      const bool over = or_equal ? cumulative >= threshold : cumulative > threshold;
      const int candidate = (j < limit && over) ? int(j) : INT_MAX;
      const int first = IndexReduce(storage.index).Reduce(candidate, SmallerIndex{});
      if (threadIdx.x == 0) shared_index = first;
      __syncthreads();
      running += aggregate;
      if (found == INT_MAX) found = shared_index;
    }
    if (threadIdx.x == 0) shared_value = running;
    __syncthreads();
    return found == INT_MAX ? limit : std::int64_t(found);
  };

  // Total over the top-k, then the top-p cut: the smallest prefix whose share reaches top_p (the
  // shares summed as the CPU sums them, p_j / total, so that the two cut at the same token unless
  // the sums' different order rounds across top_p).
  first_prefix_over(k, DBL_MAX, false);
  const double total = shared_value;
  std::int64_t kept = k;
  if (p.top_p < 1.0f) kept = std::min(k, first_prefix_over(k, double(p.top_p), true, total) + 1);
  if (p.min_p > 0.0f) {
    // The first token less than min_p times as likely as the first (probabilities fall along the
    // sorted row, so the tokens kept are a prefix).
    int first = INT_MAX;
    for (std::int64_t base = 1; base < kept; base += kSampleThreads) {
      const std::int64_t j = base + threadIdx.x;
      const int candidate = (j < kept && probability(j) < double(p.min_p)) ? int(j) : INT_MAX;
      const int block_first = IndexReduce(storage.index).Reduce(candidate, SmallerIndex{});
      if (threadIdx.x == 0) shared_index = block_first;
      __syncthreads();
      first = std::min(first, shared_index);
      __syncthreads();
    }
    kept = std::min<std::int64_t>(kept, first);
  }
  first_prefix_over(kept, DBL_MAX, false);
  const double kept_total = shared_value;
  const std::int64_t chosen = first_prefix_over(kept, double(p.uniform) * kept_total, false);
  if (threadIdx.x == 0) ids[blockIdx.x] = sorted_indices[offset + std::min(chosen, kept - 1)];
}

// Each row's parameters, its draw, and where its distinct history tokens (only for rows with a
// repetition penalty) and its biases start and end in `history` and `biases`.
inline std::vector<SampleParams> sample_params(std::span<const SamplingRow> rows,
                                               std::vector<std::int32_t>& history,
                                               std::vector<TokenBias>& biases) {
  std::vector<SampleParams> params;
  params.reserve(rows.size());
  std::vector<std::int32_t> distinct;
  for (const SamplingRow& r : rows) {
    SampleParams q{};
    q.temperature = r.temperature;
    q.top_k = r.top_k;
    q.top_p = r.top_p;
    q.min_p = r.min_p;
    q.repetition_penalty = r.repetition_penalty;
    q.uniform = uniform_float(r.seed, r.draw);
    q.history_begin = std::int32_t(history.size());
    if (r.repetition_penalty != 1.0f) {
      distinct_tokens(r.history, distinct);
      history.insert(history.end(), distinct.begin(), distinct.end());
    }
    q.history_end = std::int32_t(history.size());
    q.biases_begin = std::int32_t(biases.size());
    biases.insert(biases.end(), r.biases.begin(), r.biases.end());
    q.biases_end = std::int32_t(biases.size());
    params.push_back(q);
  }
  return params;
}

}  // namespace cuda_kernels

template <>
struct Sample<cuda> {
  // Blocks until the ids are on the host.
  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const T> logits,         // (M, V), device memory
                  std::span<const SamplingRow> rows,  // (M), host memory
                  std::span<std::int32_t> ids) {      // (M), host memory
    const std::int64_t M = logits.rows, V = logits.cols;
    check_sampling_inputs(M, V, rows, ids.size());
    if (M == 0) return;
    cuda_detail::Context& context = cuda_detail::context();

    std::vector<std::int32_t> history;
    std::vector<TokenBias> biases;
    const std::vector<cuda_kernels::SampleParams> params =
        cuda_kernels::sample_params(rows, history, biases);
    bool any_sampling = false;
    for (const SamplingRow& r : rows) any_sampling = any_sampling || r.temperature > 0.0f;

    // One scratch area: scores, indices, their sorted copies, segment offsets, parameters,
    // history, biases, ids and CUB's temporary storage.
    const std::size_t n = std::size_t(M * V);
    std::size_t sort_bytes = 0;
    if (any_sampling)
      CTFORMER_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
          nullptr, sort_bytes, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
          static_cast<const std::int32_t*>(nullptr), static_cast<std::int32_t*>(nullptr),
          std::int64_t(n), std::int64_t(M), static_cast<const std::int64_t*>(nullptr),
          static_cast<const std::int64_t*>(nullptr), 0, int(sizeof(float) * 8), context.stream()));
    auto aligned = [](std::size_t bytes) { return (bytes + 255) / 256 * 256; };
    constexpr std::size_t kRegions = 10;
    const std::size_t sizes[kRegions] = {n * 4,
                                         n * 4,
                                         n * 4,
                                         n * 4,
                                         std::size_t(M + 1) * 8,
                                         params.size() * sizeof(cuda_kernels::SampleParams),
                                         history.size() * 4 + 4,
                                         biases.size() * sizeof(TokenBias) + 4,
                                         std::size_t(M) * 4,
                                         sort_bytes};
    std::size_t total = 0;
    for (const std::size_t s : sizes) total += aligned(s);
    auto* base = static_cast<std::byte*>(context.scratch(total));
    std::byte* regions[kRegions];
    for (std::size_t r = 0, at = 0; r < kRegions; at += aligned(sizes[r]), ++r)
      regions[r] = base + at;
    auto* scores = reinterpret_cast<float*>(regions[0]);
    auto* sorted_scores = reinterpret_cast<float*>(regions[1]);
    auto* indices = reinterpret_cast<std::int32_t*>(regions[2]);
    auto* sorted_indices = reinterpret_cast<std::int32_t*>(regions[3]);
    auto* offsets = reinterpret_cast<std::int64_t*>(regions[4]);
    auto* device_params = reinterpret_cast<cuda_kernels::SampleParams*>(regions[5]);
    auto* device_history = reinterpret_cast<std::int32_t*>(regions[6]);
    auto* device_biases = reinterpret_cast<TokenBias*>(regions[7]);
    auto* device_ids = reinterpret_cast<std::int32_t*>(regions[8]);

    std::vector<std::int64_t> segment_offsets(std::size_t(M + 1));
    for (std::int64_t i = 0; i <= M; ++i) segment_offsets[std::size_t(i)] = i * V;
    cuda::write(std::span<const std::int64_t>(segment_offsets), offsets);
    cuda::write(std::span<const cuda_kernels::SampleParams>(params), device_params);
    cuda::write(std::span<const std::int32_t>(history), device_history);
    cuda::write(std::span<const TokenBias>(biases), device_biases);

    cuda_detail::launch(cuda_kernels::sample_scores_kernel<T>, unsigned(M),
                        cuda_kernels::kSampleThreads, logits.data, device_params, device_history,
                        device_biases, V, scores, indices);
    CTFORMER_CUDA_CHECK_LAUNCH("sample_scores_kernel");
    if (any_sampling)
      CTFORMER_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
          regions[9], sort_bytes, scores, sorted_scores, indices, sorted_indices, std::int64_t(n),
          std::int64_t(M), offsets, offsets + 1, 0, int(sizeof(float) * 8), context.stream()));
    cuda_detail::launch(cuda_kernels::sample_draw_kernel, unsigned(M), cuda_kernels::kSampleThreads,
                        device_params, V, scores, sorted_scores, sorted_indices, device_ids);
    CTFORMER_CUDA_CHECK_LAUNCH("sample_draw_kernel");
    CTFORMER_CUDA_CHECK(cudaMemcpyAsync(ids.data(), device_ids, ids.size_bytes(),
                                        cudaMemcpyDeviceToHost, context.stream()));
    CTFORMER_CUDA_CHECK(cudaStreamSynchronize(context.stream()));
  }
};

}  // namespace ctformer::ops
