// Log-probabilities from logits: log_softmax of a row at a token, and the row's most likely tokens.
// They are the model's own distribution, before any repetition penalty, temperature, top-k or top-p
// (what scores a text, and what OpenAI's and vLLM's `logprobs` report by default).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/core/parallel.hpp"

namespace ctformer {

struct LikelyToken {
  std::int32_t token = 0;
  float logprob = 0;
};

// One token's log-probability given what came before it, and the `top` most likely tokens there
// (most likely first; of equal ones, the lower id first).
struct TokenLogprobs {
  std::int32_t token = 0;
  float logprob = 0;
  std::vector<LikelyToken> top;
};

namespace ops {

// What to read from one row of logits.
struct LogprobQuery {
  std::int64_t row = 0;
  std::int32_t token = 0;  // whose log-probability
  std::int32_t top = 0;    // how many of the most likely tokens to list
};

// Throws InputError unless each query's row, token and count fit the (M, V) logits and there is one
// output per query.
inline void check_logprob_queries(std::int64_t M, std::int64_t V,
                                  std::span<const LogprobQuery> queries, std::size_t outputs) {
  if (outputs != queries.size())
    throw InputError("Logprobs: " + std::to_string(outputs) + " outputs for " +
                     std::to_string(queries.size()) + " queries (expected one per query)");
  for (std::size_t i = 0; i < queries.size(); ++i) {
    const LogprobQuery& q = queries[i];
    if (q.row < 0 || q.row >= M || q.token < 0 || q.token >= V || q.top < 0 || q.top > V)
      throw InputError("Logprobs: query " + std::to_string(i) + " (row " + std::to_string(q.row) +
                       ", token " + std::to_string(q.token) + ", top " + std::to_string(q.top) +
                       ") does not fit logits of " + std::to_string(M) + " rows and " +
                       std::to_string(V) + " tokens");
  }
}

// log_softmax(row)[token] and the `top` largest entries of one row of n logits.
inline TokenLogprobs row_logprobs(const float* row, std::int64_t n, std::int32_t token,
                                  std::int32_t top) {
  const float max = *std::max_element(row, row + n);
  double sum = 0;  // each term in float, their sum in double: n is 50,257 for GPT-2
  for (std::int64_t v = 0; v < n; ++v) sum += std::exp(row[v] - max);
  const double log_total = double(max) + std::log(sum);
  TokenLogprobs out{token, float(double(row[token]) - log_total), {}};
  if (top == 0) return out;
  // A min-heap of the best `top` seen: most entries are rejected by one compare with its root.
  auto better = [row](std::int32_t a, std::int32_t b) {
    return row[a] > row[b] || (row[a] == row[b] && a < b);
  };
  std::vector<std::int32_t> best;
  best.reserve(std::size_t(top));
  for (std::int32_t v = 0; v < std::int32_t(n); ++v) {
    if (std::int32_t(best.size()) < top) {
      best.push_back(v);
      std::push_heap(best.begin(), best.end(), better);
    } else if (better(v, best.front())) {
      std::pop_heap(best.begin(), best.end(), better);
      best.back() = v;
      std::push_heap(best.begin(), best.end(), better);
    }
  }
  std::sort_heap(best.begin(), best.end(), better);
  for (const std::int32_t v : best) out.top.push_back({v, float(double(row[v]) - log_total)});
  return out;
}

template <class Backend>
struct Logprobs;

template <>
struct Logprobs<cpu> {
  static void run(MatrixView<const float> logits,         // (M, V)
                  std::span<const LogprobQuery> queries,  // host memory
                  std::span<TokenLogprobs> out) {         // one per query, host memory
    check_logprob_queries(logits.rows, logits.cols, queries, out.size());
    CTFORMER_PARALLEL_FOR_DYNAMIC
    for (std::int64_t i = 0; i < std::int64_t(queries.size()); ++i) {
      const LogprobQuery& q = queries[std::size_t(i)];
      out[std::size_t(i)] = row_logprobs(logits.row(q.row), logits.cols, q.token, q.top);
    }
  }
};

}  // namespace ops
}  // namespace ctformer
