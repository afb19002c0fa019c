// Causal self-attention over the paged KV cache. AppendKv writes a step's new keys and values into
// the cache; PagedAttention then attends each new query to every cached position up to its own.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/cache/paged_kv_cache.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/core/parallel.hpp"

namespace ctformer::ops {

inline std::int64_t cache_row(const SequenceSlice& s, std::int64_t position,
                              std::int64_t block_size) {
  return std::int64_t(s.block_table[position / block_size]) * block_size + position % block_size;
}

template <class Backend>
struct AppendKv;

template <>
struct AppendKv<cpu> {
  static void run(MatrixView<const float> qkv,  // (N, 3C): q | k | v, as GPT-2's c_attn emits them
                  const StepSlices& step, KvLayerView<float> cache) {
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

template <class Backend>
struct PagedAttention;

template <>
struct PagedAttention<cpu> {
  static void run(MatrixView<const float> qkv,  // (N, 3C); only the q part is read
                  const StepSlices& step, KvLayerView<const float> cache, std::int64_t n_head,
                  float scale,
                  MatrixView<float> out) {  // (N, C)
    const std::int64_t C = cache.keys.cols;
    const std::int64_t D = C / n_head;
    const auto S = static_cast<std::int64_t>(step.slices.size());
    // One task per (sequence, head): sequences differ in length, so threads take tasks as they
    // finish.
    CTFORMER_PARALLEL_FOR_DYNAMIC
    for (std::int64_t task = 0; task < S * n_head; ++task) {
      const SequenceSlice& s = step.slices[std::size_t(task / n_head)];
      const std::int64_t h = task % n_head;
      thread_local std::vector<float> scores;
      scores.resize(static_cast<std::size_t>(s.past_length + s.num_rows));
      for (std::int64_t i = 0; i < s.num_rows; ++i) {
        const std::int64_t visible = s.past_length + i + 1;  // causal: positions 0 .. own
        const Eigen::Map<const Eigen::VectorXf> q(qkv.row(s.first_row + i) + h * D, D);
        float max_score = -INFINITY;
        for (std::int64_t t = 0; t < visible; ++t) {
          const Eigen::Map<const Eigen::VectorXf> k(
              cache.keys.row(cache_row(s, t, cache.block_size)) + h * D, D);
          scores[t] = q.dot(k) * scale;
          max_score = std::max(max_score, scores[t]);
        }
        float denominator = 0;
        for (std::int64_t t = 0; t < visible; ++t) {
          scores[t] = std::exp(scores[t] - max_score);
          denominator += scores[t];
        }
        Eigen::Map<Eigen::VectorXf> y(out.row(s.first_row + i) + h * D, D);
        y.setZero();
        for (std::int64_t t = 0; t < visible; ++t)
          y += (scores[t] / denominator) *
               Eigen::Map<const Eigen::VectorXf>(
                   cache.values.row(cache_row(s, t, cache.block_size)) + h * D, D);
      }
    }
  }
};

}  // namespace ctformer::ops
