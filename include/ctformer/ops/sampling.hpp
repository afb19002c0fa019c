// Choosing the next token of each sequence from its logits: token biases, the repetition penalty
// and the presence/frequency penalties, then temperature, top-k, top-p and min-p, in the order
// Hugging Face transformers and vLLM apply them; greedy (argmax of the adjusted scores) when the
// temperature is 0. A row whose every token is banned gets token 0, as torch's argmax gives it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
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

// Additive changes to one token's score: `bias` before the repetition penalty (a request's logit
// bias; -infinity bans the token), `penalty` subtracted after it (the presence and frequency
// penalties), the order vLLM applies them in.
struct TokenBias {
  std::int32_t token = 0;
  float bias = 0.0f;
  float penalty = 0.0f;
};

// How one row of logits is turned into a token.
struct SamplingRow {
  float temperature = 0.0f;               // 0: greedy
  std::int32_t top_k = 0;                 // keep the k most likely tokens; 0: all
  float top_p = 1.0f;                     // keep the smallest set whose probability reaches top_p
  float repetition_penalty = 1.0f;        // > 1 discourages tokens already in `history`
  std::uint64_t seed = 0;                 // the request's random stream ...
  std::uint64_t draw = 0;                 // ... and which draw of it this is (its token index)
  std::span<const std::int32_t> history;  // prompt and generated tokens, for the penalty
  float min_p = 0.0f;  // keep tokens at least min_p times as likely as the most likely one
  std::span<const TokenBias> biases;  // each token at most once

  bool adjusts_scores() const { return repetition_penalty != 1.0f || !biases.empty(); }
};

// Throws InputError unless there is one SamplingRow and one id per row of logits, and every
// history token that a penalty reads and every biased token is in the vocabulary.
inline void check_sampling_inputs(std::int64_t M, std::int64_t V, std::span<const SamplingRow> rows,
                                  std::size_t ids) {
  if (rows.size() != std::size_t(M) || ids != std::size_t(M))
    throw InputError("Sample: " + std::to_string(rows.size()) + " sampling rows and " +
                     std::to_string(ids) + " ids for " + std::to_string(M) +
                     " rows of logits (expected one of each per row)");
  auto check = [&](const char* what, std::int32_t t, std::size_t i) {
    if (t < 0 || t >= V)
      throw InputError(std::string("Sample: ") + what + " " + std::to_string(t) + " of row " +
                       std::to_string(i) + " is outside the vocabulary (expected 0 <= id < " +
                       std::to_string(V) + ")");
  };
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].repetition_penalty != 1.0f)
      for (const std::int32_t t : rows[i].history) check("history token", t, i);
    for (const TokenBias& b : rows[i].biases) check("biased token", b.token, i);
  }
}

// The tokens of `history`, each once, sorted: the repetition penalty applies once per token however
// often it occurred (transformers gathers, then scatters).
inline void distinct_tokens(std::span<const std::int32_t> history, std::vector<std::int32_t>& out) {
  out.assign(history.begin(), history.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
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
      if (r.temperature <= 0.0f && !r.adjusts_scores()) {  // plain greedy: no copy
        ids[std::size_t(i)] = std::int32_t(argmax_row(row, logits.cols));
        continue;
      }
      thread_local std::vector<float> scores;
      thread_local std::vector<std::int32_t> order, repeated;
      scores.assign(row, row + logits.cols);
      for (const TokenBias& b : r.biases) scores[std::size_t(b.token)] += b.bias;
      if (r.repetition_penalty != 1.0f) {
        distinct_tokens(r.history, repeated);
        for (const std::int32_t t : repeated) {
          float& s = scores[std::size_t(t)];
          s = s > 0 ? s / r.repetition_penalty : s * r.repetition_penalty;
        }
      }
      for (const TokenBias& b : r.biases) scores[std::size_t(b.token)] -= b.penalty;
      ids[std::size_t(i)] = r.temperature <= 0.0f
                                ? std::int32_t(argmax_row(scores.data(), logits.cols))
                                : draw(scores, r, order);
    }
  }

 private:
  static std::int32_t draw(std::vector<float>& scores, const SamplingRow& r,
                           std::vector<std::int32_t>& order) {
    const auto V = std::int32_t(scores.size());
    // A score that overflows (a huge bias over a small temperature) or is NaN (a model that
    // overflowed) becomes the largest float: such tokens tie as the most likely, instead of an
    // infinity's NaN probabilities choosing the least likely token. fmin drops the NaN.
    for (float& s : scores) s = std::fmin(s / r.temperature, std::numeric_limits<float>::max());
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
    if (max_score == -INFINITY) return order[0];  // every token banned
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
    // min-p: of those, the tokens at least min_p times as likely as the first (p[0] = 1).
    while (kept > 1 && p[kept - 1] < double(r.min_p)) --kept;
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
