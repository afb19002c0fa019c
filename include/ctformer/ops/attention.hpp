// Causal self-attention over the paged KV cache: PagedAttention writes a step's new keys and values
// into the cache, then attends each new query to every cached position up to its own. One op, so
// that a backend may do both in one pass (the CUDA kernel does).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/cache/paged_kv_cache.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/core/parallel.hpp"

namespace ctformer::ops {

inline std::int64_t cache_row(const SequenceSlice& s, std::int64_t position,
                              std::int64_t block_size) {
  return std::int64_t(s.block_table[position / block_size]) * block_size + position % block_size;
}

// Asks for the n floats at p ahead of their use. A decode step reads each cached row once, and a
// row (C floats, 3 KiB for GPT-2) spans a 4 KiB page boundary, where the hardware prefetchers
// stop: without this, attention waited on the first lines of each row.
inline void prefetch(const float* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; i += 64 / sizeof(float)) __builtin_prefetch(p + i);
}

// a . b in 16 independent lanes: the compiler vectorises it without reassociating one sum (an
// Eigen dot on a dynamic-size map was 12% of a decode step for 0.4% of its FLOPs).
inline float dot(const float* a, const float* b, std::int64_t n) {
  float lanes[16] = {};
  std::int64_t d = 0;
  for (; d + 16 <= n; d += 16)
    for (int j = 0; j < 16; ++j) lanes[j] += a[d + j] * b[d + j];
  float sum = 0;
  for (; d < n; ++d) sum += a[d] * b[d];
  for (const float lane : lanes) sum += lane;
  return sum;
}

// Throws InputError unless qkv is (N, 3C) and out (N, C) for a cache of width C = n_head * D.
inline void check_attention_shapes(std::int64_t qkv_rows, std::int64_t qkv_cols, std::int64_t C,
                                   std::int64_t n_head, std::int64_t out_rows,
                                   std::int64_t out_cols) {
  if (n_head <= 0 || C % n_head != 0)
    throw InputError("PagedAttention: the cache's width " + std::to_string(C) +
                     " is not a multiple of n_head " + std::to_string(n_head));
  if (qkv_cols != 3 * C || out_cols != C || out_rows != qkv_rows)
    throw InputError("PagedAttention: qkv is " + std::to_string(qkv_rows) + " x " +
                     std::to_string(qkv_cols) + " and out " + std::to_string(out_rows) + " x " +
                     std::to_string(out_cols) + "; with a cache of width " + std::to_string(C) +
                     " they must be N x " + std::to_string(3 * C) + " and N x " +
                     std::to_string(C));
}

template <class Backend>
struct PagedAttention;

template <>
struct PagedAttention<cpu> {
  static void run(MatrixView<const float> qkv,  // (N, 3C): q | k | v, as GPT-2's c_attn emits them
                  const StepSlices& step, KvLayerView<float> cache, std::int64_t n_head,
                  float scale,
                  MatrixView<float> out) {  // (N, C)
    const std::int64_t C = cache.keys.cols;
    check_attention_shapes(qkv.rows, qkv.cols, C, n_head, out.rows, out.cols);
    append(qkv, step, cache);
    // Two instantiations, each its own OpenMP function: with the tiles' code beside it, a decode
    // step's loop compiled 16% slower, although its source was the same.
    const bool multi_row = std::ranges::any_of(
        step.slices, [](const SequenceSlice& slice) { return slice.num_rows > 1; });
    if (multi_row)
      attend<true>(qkv, step, cache, n_head, scale, out);
    else
      attend<false>(qkv, step, cache, n_head, scale, out);
  }

 private:
  // Queries scored together in a prefill task, and keys a tile takes at once.
  static constexpr std::int64_t kQueries = 16, kKeys = 8;
  using Lanes = float __attribute__((vector_size(kQueries * sizeof(float))));

  template <bool kMultiRow>
  static void attend(MatrixView<const float> qkv, const StepSlices& step, KvLayerView<float> cache,
                     std::int64_t n_head, float scale, MatrixView<float> out) {
    const std::int64_t C = cache.keys.cols, D = C / n_head;
    // A task is up to kQueries new rows of one sequence, all heads together: each cached key
    // and value row (C floats, the rows of a block adjacent) is then read front to back, which the
    // hardware prefetcher follows (per-head tasks read 256-byte pieces 3 KiB apart and stalled on
    // memory). A decode step is one task per sequence; a long prompt is split over the threads.
    // Tasks differ in length, so threads take them as they finish.
    struct Task {
      std::size_t slice;
      std::int64_t begin, end;  // rows of the slice
    };
    thread_local std::vector<Task> tasks;
    tasks.clear();
    for (std::size_t i = 0; i < step.slices.size(); ++i)
      for (std::int64_t r = 0; r < step.slices[i].num_rows; r += kQueries)
        tasks.push_back({i, r, std::min(r + kQueries, step.slices[i].num_rows)});
    const auto task_count = static_cast<std::int64_t>(tasks.size());
    const Task* task_list = tasks.data();
    CTFORMER_PARALLEL_FOR_DYNAMIC
    for (std::int64_t task = 0; task < task_count; ++task) {
      const Task& work = task_list[task];
      const SequenceSlice& s = step.slices[work.slice];
      const std::int64_t rows = work.end - work.begin;
      const std::int64_t length = s.past_length + work.end;  // the keys its last row sees
      thread_local std::vector<float> task_scores;           // (rows, n_head, length)
      task_scores.resize(static_cast<std::size_t>(rows * n_head * length));
      if constexpr (kMultiRow)
        score_tiles(qkv, s.first_row + work.begin, rows, s, cache, n_head, scale, length,
                    task_scores.data());
      else
        score_one(qkv.row(s.first_row + work.begin), s, cache, n_head, scale, length,
                  task_scores.data());
      for (std::int64_t i = work.begin; i < work.end; ++i) {
        const std::int64_t visible = s.past_length + i + 1;  // causal: positions 0 .. own
        float* scores = task_scores.data() + (i - work.begin) * n_head * length;
        for (std::int64_t h = 0; h < n_head; ++h) {  // softmax, left unnormalised
          float* p = scores + h * length;
          const float max_score = *std::max_element(p, p + visible);
          for (std::int64_t t = 0; t < visible; ++t) p[t] = std::exp(p[t] - max_score);
        }
        float* y = out.row(s.first_row + i);
        std::fill_n(y, C, 0.0f);
        for (std::int64_t t = 0; t < visible; ++t) {
          const float* v = cache.values.row(cache_row(s, t, cache.block_size));
          if (t + 1 < visible) prefetch(cache.values.row(cache_row(s, t + 1, cache.block_size)), C);
          for (std::int64_t h = 0; h < n_head; ++h) {
            const float p = scores[h * length + t];
            for (std::int64_t d = h * D; d < (h + 1) * D; ++d) y[d] += p * v[d];
          }
        }
        for (std::int64_t h = 0; h < n_head; ++h) {
          const float* p = scores + h * length;
          const float inverse = 1.0f / std::accumulate(p, p + visible, 0.0f);
          for (std::int64_t d = h * D; d < (h + 1) * D; ++d) y[d] *= inverse;
        }
      }
    }
  }

  // scores[(h, t)] (n_head, length) = scale q . k_t over head h, for the positions t < length of
  // sequence s.
  static void score_one(const float* q, const SequenceSlice& s, KvLayerView<float> cache,
                        std::int64_t n_head, float scale, std::int64_t length, float* scores) {
    const std::int64_t D = cache.keys.cols / n_head;
    for (std::int64_t t = 0; t < length; ++t) {
      const float* k = cache.keys.row(cache_row(s, t, cache.block_size));
      if (t + 1 < length)
        prefetch(cache.keys.row(cache_row(s, t + 1, cache.block_size)), cache.keys.cols);
      for (std::int64_t h = 0; h < n_head; ++h)
        scores[h * length + t] = dot(q + h * D, k + h * D, D) * scale;
    }
  }

  // The same for the rows [first_row, first_row + rows) of qkv (rows <= kQueries) into
  // scores[(i, h, t)] (rows, n_head, length); positions after a row's own are left for the caller
  // to ignore. Tiles of kQueries queries by kKeys keys: the queries transposed, so that one key
  // element, broadcast, multiplies all of them in a vector, with the kKeys sums in separate
  // registers. One dot product per query, key and head ends in a horizontal sum of its lanes, the
  // same size as its multiplies at D = 64 (docs/performance.md, "Long prompts": 32 prompts of 884
  // tokens took 30.5 s that way, 25.1 s in tiles).
  static void score_tiles(MatrixView<const float> qkv, std::int64_t first_row, std::int64_t rows,
                          const SequenceSlice& s, KvLayerView<float> cache, std::int64_t n_head,
                          float scale, std::int64_t length, float* scores) {
    if (rows == 1)  // a decoding sequence in a step with prompts: a tile would waste 15 lanes
      return score_one(qkv.row(first_row), s, cache, n_head, scale, length, scores);
    const std::int64_t C = cache.keys.cols, D = C / n_head;
    thread_local std::vector<float> transposed;  // (C, kQueries): element d of every query
    transposed.assign(static_cast<std::size_t>(C * kQueries), 0.0f);
    for (std::int64_t i = 0; i < rows; ++i) {
      const float* q = qkv.row(first_row + i);
      for (std::int64_t d = 0; d < C; ++d) transposed[d * kQueries + i] = q[d];
    }
    for (std::int64_t t0 = 0; t0 < length; t0 += kKeys) {
      const float* k[kKeys];  // past the end, the last key again: its sums are not stored
      for (std::int64_t j = 0; j < kKeys; ++j)
        k[j] = cache.keys.row(cache_row(s, std::min(t0 + j, length - 1), cache.block_size));
      for (std::int64_t h = 0; h < n_head; ++h) {
        Lanes sums[kKeys] = {};
        for (std::int64_t d = h * D; d < (h + 1) * D; ++d) {
          Lanes q;
          std::memcpy(&q, transposed.data() + d * kQueries, sizeof q);
          for (std::int64_t j = 0; j < kKeys; ++j) sums[j] += q * k[j][d];
        }
        for (std::int64_t i = 0; i < rows; ++i)
          for (std::int64_t j = 0; j < kKeys && t0 + j < length; ++j)
            scores[(i * n_head + h) * length + t0 + j] = sums[j][i] * scale;
      }
    }
  }

  static void append(MatrixView<const float> qkv, const StepSlices& step,
                     KvLayerView<float> cache) {
    const std::int64_t C = cache.keys.cols;
    for (const SequenceSlice& s : step.slices)
      for (std::int64_t i = 0; i < s.num_rows; ++i) {
        const float* row = qkv.row(s.first_row + i);
        const std::int64_t r = cache_row(s, s.past_length + i, cache.block_size);
        std::copy_n(row + C, C, cache.keys.row(r));
        std::copy_n(row + 2 * C, C, cache.values.row(r));
      }
  }
};

}  // namespace ctformer::ops
