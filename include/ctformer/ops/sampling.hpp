// Choosing the next token of each sequence from its logits: repetition penalty, then temperature,
// top-k and top-p, in the order Hugging Face transformers applies its logits processors; greedy
// (argmax after the penalty) when the temperature is 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/core/parallel.hpp"
#include "ctformer/core/random.hpp"
#include "ctformer/ops/rows.hpp"

namespace ctformer::ops {

// How one row of logits is turned into a token.
struct SamplingRow {
  float temperature = 0.0f;               // 0: greedy
  std::int32_t top_k = 0;                 // keep the k most likely tokens; 0: all
  float top_p = 1.0f;                     // keep the smallest set whose probability reaches top_p
  float repetition_penalty = 1.0f;        // > 1 discourages tokens already in `history`
  std::uint64_t seed = 0;                 // the request's random stream ...
  std::uint64_t draw = 0;                 // ... and which draw of it this is (its token index)
  std::span<const std::int32_t> history;  // prompt and generated tokens, for the penalty
};

// Throws InputError unless there is one SamplingRow and one id per row of logits and every
// history token that a penalty reads is in the vocabulary.
inline void check_sampling_inputs(std::int64_t M, std::int64_t V, std::span<const SamplingRow> rows,
                                  std::size_t ids) {
  if (rows.size() != std::size_t(M) || ids != std::size_t(M))
    throw InputError("Sample: " + std::to_string(rows.size()) + " sampling rows and " +
                     std::to_string(ids) + " ids for " + std::to_string(M) +
                     " rows of logits (expected one of each per row)");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].repetition_penalty == 1.0f) continue;
    for (const std::int32_t t : rows[i].history)
      if (t < 0 || t >= V)
        throw InputError("Sample: history token " + std::to_string(t) + " of row " +
                         std::to_string(i) + " is outside the vocabulary (expected 0 <= id < " +
                         std::to_string(V) + ")");
  }
}

template <class Backend>
struct Sample;

template <>
struct Sample<cpu> {
  static void run(MatrixView<const float> logits,     // (M, V)
                  std::span<const SamplingRow> rows,  // (M)
                  std::span<std::int32_t> ids) {      // (M), host memory
    check_sampling_inputs(logits.rows, logits.cols, rows, ids.size());
    // Rows are independent and differ in cost (a top-k sort against an argmax): threads take them
    // as they finish.
    CTFORMER_PARALLEL_FOR_DYNAMIC
    for (std::int64_t i = 0; i < logits.rows; ++i) {
      const SamplingRow& r = rows[std::size_t(i)];
      const float* row = logits.row(i);
      if (r.temperature <= 0.0f && r.repetition_penalty == 1.0f) {  // plain greedy: no copy
        ids[std::size_t(i)] = std::int32_t(argmax_row(row, logits.cols));
        continue;
      }
      thread_local std::vector<float> scores;
      thread_local std::vector<std::int32_t> order;
      scores.assign(row, row + logits.cols);
      if (r.repetition_penalty != 1.0f)
        for (const std::int32_t t : r.history) {
          // Each token once, however often it occurred (transformers gathers, then scatters).
          float& s = scores[std::size_t(t)];
          const float original = logits.row(i)[t];
          s = original > 0 ? original / r.repetition_penalty : original * r.repetition_penalty;
        }
      ids[std::size_t(i)] = r.temperature <= 0.0f
                                ? std::int32_t(argmax_row(scores.data(), logits.cols))
                                : draw(scores, r, order);
    }
  }

 private:
  static std::int32_t draw(std::vector<float>& scores, const SamplingRow& r,
                           std::vector<std::int32_t>& order) {
    const auto V = std::int32_t(scores.size());
    for (float& s : scores) s /= r.temperature;
    // Candidates by decreasing score; ties keep the lower id first.
    order.resize(std::size_t(V));
    std::iota(order.begin(), order.end(), 0);
    const std::int32_t k = (r.top_k > 0 && r.top_k < V) ? r.top_k : V;
    auto by_score = [&](std::int32_t a, std::int32_t b) {
      return scores[std::size_t(a)] > scores[std::size_t(b)] ||
             (scores[std::size_t(a)] == scores[std::size_t(b)] && a < b);
    };
    std::partial_sort(order.begin(), order.begin() + k, order.end(), by_score);
    order.resize(std::size_t(k));

    // Softmax over the top-k candidates (in double: the tail matters for top-p's cut).
    const double max_score = scores[std::size_t(order[0])];
    std::vector<double> p(order.size());
    double total = 0;
    for (std::size_t j = 0; j < order.size(); ++j)
      total += p[j] = std::exp(double(scores[std::size_t(order[j])]) - max_score);
    // top-p: keep the smallest prefix whose probability reaches top_p (at least one token).
    std::size_t kept = order.size();
    if (r.top_p < 1.0f) {
      double cumulative = 0;
      for (std::size_t j = 0; j < order.size(); ++j) {
        cumulative += p[j] / total;
        if (cumulative >= double(r.top_p)) {
          kept = j + 1;
          break;
        }
      }
    }
    double kept_total = 0;
    for (std::size_t j = 0; j < kept; ++j) kept_total += p[j];
    const double u = double(uniform_float(r.seed, r.draw)) * kept_total;
    double cumulative = 0;
    for (std::size_t j = 0; j < kept; ++j) {
      cumulative += p[j];
      if (u < cumulative) return order[j];
    }
    return order[kept - 1];
  }
};

}  // namespace ctformer::ops
