// Perplexity of a text under a model, over a sliding window, as transformers' perplexity guide
// computes it for a text longer than the context: windows of `context` tokens start every `stride`
// tokens, and each scores the tokens that the window before it did not reach, with up to
// context - stride tokens of context before the first it scores. So every token after the first is
// scored once, except that windows that do not overlap (stride = context) leave their first token
// unscored, as transformers does: nothing in the window comes before it. The negative
// log-likelihood is summed exactly over the tokens scored (when windows overlap, the guide's loop
// weights each window after the first by one token fewer than it scores).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ctformer/core/error.hpp"
#include "ctformer/models/gpt2.hpp"
#include "ctformer/ops/log_probs.hpp"

namespace ctformer {

struct PerplexityOptions {
  std::int64_t context = 0;  // tokens in a window; 0: the model's n_positions
  std::int64_t stride = 0;   // tokens between the starts of two windows; 0: context / 2
  std::int64_t batch = 1;    // windows run together in one forward pass
};

struct Perplexity {
  std::int64_t tokens = 0;   // tokens scored: all but the first
  std::int64_t windows = 0;  // forward passes' windows
  double nll_sum = 0;        // their negative log-likelihood, in nats

  double mean_nll() const { return tokens > 0 ? nll_sum / double(tokens) : 0.0; }
  double perplexity() const { return std::exp(mean_nll()); }
};

namespace detail {

// A window: the tokens [begin, end) run, the last `scored` of them scored.
struct PerplexityWindow {
  std::int64_t begin = 0, end = 0, scored = 0;
};

inline std::vector<PerplexityWindow> perplexity_windows(std::int64_t length, std::int64_t context,
                                                        std::int64_t stride) {
  std::vector<PerplexityWindow> windows;
  for (std::int64_t begin = 0, previous_end = 0;; begin += stride) {
    const std::int64_t end = std::min(begin + context, length);
    // A window's first token has nothing before it to predict it.
    windows.push_back({begin, end, end - std::max(previous_end, begin + 1)});
    previous_end = end;
    if (end == length) return windows;
  }
}

}  // namespace detail

// `progress(windows done, windows)` is called after each forward pass. Throws InputError naming the
// value for a text of fewer than 2 tokens, an id outside the vocabulary or options out of range.
template <class Model>
Perplexity perplexity(Model& model, std::span<const std::int32_t> ids,
                      PerplexityOptions options = {},
                      const std::function<void(std::int64_t, std::int64_t)>& progress = {}) {
  const Gpt2Config& c = model.config();
  if (options.context == 0) options.context = c.n_positions;
  if (options.stride == 0) options.stride = std::max<std::int64_t>(options.context / 2, 1);
  if (options.context < 2 || options.context > c.n_positions)
    throw InputError("perplexity: context " + std::to_string(options.context) +
                     " must be from 2 to the model's n_positions " + std::to_string(c.n_positions));
  if (options.stride < 1 || options.stride > options.context)
    throw InputError("perplexity: stride " + std::to_string(options.stride) +
                     " must be from 1 to the context " + std::to_string(options.context) +
                     " (a larger one would leave tokens unscored)");
  if (options.batch < 1)
    throw InputError("perplexity: batch " + std::to_string(options.batch) + " must be positive");
  if (ids.size() < 2)
    throw InputError("perplexity: the text is " + std::to_string(ids.size()) +
                     " token(s) long; it needs at least 2 (one to condition on, one to score)");
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= c.vocab_size)
      throw InputError("perplexity: token id " + std::to_string(ids[i]) + " at index " +
                       std::to_string(i) + " is outside the vocabulary (vocab_size " +
                       std::to_string(c.vocab_size) + ")");

  const auto windows =
      detail::perplexity_windows(std::int64_t(ids.size()), options.context, options.stride);
  const std::int64_t batch = std::min<std::int64_t>(options.batch, std::int64_t(windows.size()));
  constexpr std::int64_t kBlock = 16;
  auto cache = model.make_cache(batch * ((options.context + kBlock - 1) / kBlock) * kBlock, kBlock);

  // Each window runs in two steps, so that only the scored tokens' logits are computed: its
  // context, whose last token's logits score the first scored token, then the scored tokens but
  // the last, whose logits score the rest.
  Perplexity out;
  std::vector<SequenceStep> steps;
  std::vector<std::int32_t> sequences;  // the windows' in the cache
  std::vector<ops::LogprobQuery> queries;
  std::vector<TokenLogprobs> scores;
  auto run = [&] {
    const auto logits = model.forward(steps, cache);
    scores.resize(queries.size());
    ops::Logprobs<typename Model::backend>::run(logits, queries, scores);
    for (const TokenLogprobs& s : scores) out.nll_sum -= double(s.logprob);
    out.tokens += std::int64_t(scores.size());
  };
  auto span_of = [&](std::int64_t begin, std::int64_t end) {
    return ids.subspan(std::size_t(begin), std::size_t(end - begin));
  };
  for (std::size_t first = 0; first < windows.size(); first += std::size_t(batch)) {
    const std::size_t last = std::min(windows.size(), first + std::size_t(batch));
    steps.clear();
    sequences.clear();
    queries.clear();
    for (std::size_t w = first; w < last; ++w) {
      const detail::PerplexityWindow& window = windows[w];
      const std::int64_t scored_from = window.end - window.scored;
      queries.push_back({std::int64_t(steps.size()), ids[std::size_t(scored_from)], 0});
      sequences.push_back(cache.add_sequence());
      steps.push_back({sequences.back(), span_of(window.begin, scored_from)});
    }
    run();
    steps.clear();
    queries.clear();
    std::int64_t row = 0;
    for (std::size_t w = first; w < last; ++w) {
      const detail::PerplexityWindow& window = windows[w];
      const std::int64_t scored_from = window.end - window.scored;
      if (window.scored == 1) continue;
      for (std::int64_t p = scored_from + 1; p < window.end; ++p)  // row of p - 1 predicts p
        queries.push_back({row + p - 1 - scored_from, ids[std::size_t(p)], 0});
      steps.push_back(
          {sequences[w - first], span_of(scored_from, window.end - 1), LogitsFor::every_token});
      row += window.scored - 1;
    }
    if (!steps.empty()) run();
    for (const std::int32_t sequence : sequences) cache.release(sequence);
    out.windows += std::int64_t(last - first);
    if (progress) progress(std::int64_t(last), std::int64_t(windows.size()));
  }
  return out;
}

}  // namespace ctformer
