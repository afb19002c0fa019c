// CUDA log-probabilities, the same contract as Logprobs<cpu>: the queried rows are copied to the
// host (consecutive rows in one copy) and scored there by the CPU op. A row is the vocabulary
// (100 KB per row for GPT-2 in fp16), so a step pays one copy per scored row; generation scores
// one row per request that asks for log-probabilities, and a prompt's score one per token.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/log_probs.hpp"

namespace ctformer::ops {

template <>
struct Logprobs<cuda> {
  // Blocks until the rows are on the host.
  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const T> logits,             // (M, V), device memory
                  std::span<const LogprobQuery> queries,  // host memory
                  std::span<TokenLogprobs> out) {         // one per query, host memory
    const std::int64_t V = logits.cols;
    check_logprob_queries(logits.rows, V, queries, out.size());
    if (queries.empty()) return;
    thread_local std::vector<std::int64_t> rows;  // the distinct rows asked for, in order
    rows.clear();
    for (const LogprobQuery& q : queries) rows.push_back(q.row);
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
    local.assign(queries.begin(), queries.end());
    for (LogprobQuery& q : local)
      q.row = std::lower_bound(rows.begin(), rows.end(), q.row) - rows.begin();
    Logprobs<cpu>::run(MatrixView<const float>{host.data(), std::int64_t(rows.size()), V}, local,
                       out);
  }
};

}  // namespace ctformer::ops
