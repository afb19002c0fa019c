// CUDA log-probabilities, the same contract as Logprobs<cpu>. A query that lists no alternatives
// (top 0: scoring a text, or a generated token's own log-probability) is one block of
// logprob_kernel: the row's max, then its sum of exponentials (each term in fp32, the sums in
// double, as the CPU sums), and one float comes back. A query that lists the most likely tokens
// has its row copied to the host (consecutive rows in one copy) and scored there by the CPU op: a
// row is the vocabulary (100 KB for GPT-2 in fp16).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include <cub/block/block_reduce.cuh>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/log_probs.hpp"

namespace ctformer::ops {
namespace cuda_kernels {

inline constexpr int kLogprobThreads = 256;

struct LogprobTarget {
  std::int64_t row;
  std::int32_t token;
};

struct LargerFloat {
  __host__ __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct DoubleSum {
  __host__ __device__ double operator()(double a, double b) const { return a + b; }
};

// One block per target: log_softmax(logits[row])[token].
template <class T>
__global__ void __launch_bounds__(kLogprobThreads)
    logprob_kernel(const T* __restrict__ logits,  // (M, V)
                   std::int64_t V, const LogprobTarget* __restrict__ targets,
                   float* __restrict__ out) {
  using cuda_detail::to_float;
  const LogprobTarget target = targets[blockIdx.x];
  const T* row = logits + target.row * V;
  using MaxReduce = cub::BlockReduce<float, kLogprobThreads>;
  using SumReduce = cub::BlockReduce<double, kLogprobThreads>;
  __shared__ union {
    typename MaxReduce::TempStorage max;
    typename SumReduce::TempStorage sum;
  } storage;
  __shared__ float row_max;

  float max = -INFINITY;
  for (std::int64_t v = threadIdx.x; v < V; v += kLogprobThreads)
    max = fmaxf(max, to_float(row[v]));
  max = MaxReduce(storage.max).Reduce(max, LargerFloat{});
  if (threadIdx.x == 0) row_max = max;
  __syncthreads();
  max = row_max;
  double sum = 0;
  for (std::int64_t v = threadIdx.x; v < V; v += kLogprobThreads)
    sum += double(expf(to_float(row[v]) - max));
  sum = SumReduce(storage.sum).Reduce(sum, DoubleSum{});
  if (threadIdx.x == 0)
    out[blockIdx.x] = float(double(to_float(row[target.token])) - (double(max) + log(sum)));
}

}  // namespace cuda_kernels

template <>
struct Logprobs<cuda> {
  // Blocks until the results are on the host.
  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const T> logits,             // (M, V), device memory
                  std::span<const LogprobQuery> queries,  // host memory
                  std::span<TokenLogprobs> out) {         // one per query, host memory
    const std::int64_t V = logits.cols;
    check_logprob_queries(logits.rows, V, queries, out.size());
    on_the_gpu(logits, queries, out);
    on_the_host(logits, queries, out);
  }

 private:
  // The queries with top 0.
  template <class T>
  static void on_the_gpu(MatrixView<const T> logits, std::span<const LogprobQuery> queries,
                         std::span<TokenLogprobs> out) {
    thread_local std::vector<cuda_kernels::LogprobTarget> targets;
    thread_local std::vector<float> values;
    targets.clear();
    for (const LogprobQuery& q : queries)
      if (q.top == 0) targets.push_back({q.row, q.token});
    if (targets.empty()) return;
    cuda_detail::Context& context = cuda_detail::context();
    const std::size_t target_bytes = (targets.size() * sizeof(targets[0]) + 255) / 256 * 256;
    auto* base = static_cast<std::byte*>(context.scratch(target_bytes + targets.size() * 4));
    auto* device_targets = reinterpret_cast<cuda_kernels::LogprobTarget*>(base);
    auto* device_values = reinterpret_cast<float*>(base + target_bytes);
    cuda::write(std::span<const cuda_kernels::LogprobTarget>(targets), device_targets);
    cuda_detail::launch(cuda_kernels::logprob_kernel<T>, unsigned(targets.size()),
                        cuda_kernels::kLogprobThreads, logits.data, logits.cols, device_targets,
                        device_values);
    CTFORMER_CUDA_CHECK_LAUNCH("logprob_kernel");
    values.resize(targets.size());
    CTFORMER_CUDA_CHECK(cudaMemcpyAsync(values.data(), device_values, values.size() * 4,
                                        cudaMemcpyDeviceToHost, context.stream()));
    CTFORMER_CUDA_CHECK(cudaStreamSynchronize(context.stream()));
    for (std::size_t i = 0, k = 0; i < queries.size(); ++i)
      if (queries[i].top == 0) out[i] = {queries[i].token, values[k++], {}};
  }

  // The queries with top > 0: their rows, copied to the host, scored by the CPU op.
  template <class T>
  static void on_the_host(MatrixView<const T> logits, std::span<const LogprobQuery> queries,
                          std::span<TokenLogprobs> out) {
    const std::int64_t V = logits.cols;
    thread_local std::vector<std::int64_t> rows;  // the distinct rows asked for, in order
    rows.clear();
    for (const LogprobQuery& q : queries)
      if (q.top > 0) rows.push_back(q.row);
    if (rows.empty()) return;
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());

    thread_local std::vector<T> staging;
    staging.resize(rows.size() * std::size_t(V));
    for (std::size_t first = 0; first < rows.size();) {
      std::size_t end = first + 1;
      while (end < rows.size() && rows[end] == rows[end - 1] + 1) ++end;
      CTFORMER_CUDA_CHECK(cudaMemcpyAsync(staging.data() + first * std::size_t(V),
                                          logits.row(rows[first]),
                                          (end - first) * std::size_t(V) * sizeof(T),
                                          cudaMemcpyDeviceToHost, cuda_detail::stream()));
      first = end;
    }
    CTFORMER_CUDA_CHECK(cudaStreamSynchronize(cuda_detail::stream()));

    thread_local std::vector<float> host;
    host.resize(staging.size());
    std::transform(staging.begin(), staging.end(), host.begin(),
                   [](const T& x) { return static_cast<float>(x); });
    thread_local std::vector<LogprobQuery> local;  // the queries, by row of `host`
    thread_local std::vector<TokenLogprobs> results;
    local.clear();
    for (const LogprobQuery& q : queries)
      if (q.top > 0)
        local.push_back(
            {std::lower_bound(rows.begin(), rows.end(), q.row) - rows.begin(), q.token, q.top});
    results.resize(local.size());
    Logprobs<cpu>::run(MatrixView<const float>{host.data(), std::int64_t(rows.size()), V}, local,
                       results);
    for (std::size_t i = 0, k = 0; i < queries.size(); ++i)
      if (queries[i].top > 0) out[i] = std::move(results[k++]);
  }
};

}  // namespace ctformer::ops
