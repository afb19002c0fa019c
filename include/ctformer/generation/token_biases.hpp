// The score changes a request's parameters ask for at one step, as the list of ops::TokenBias that
// the sampling op applies: its logit bias, end-of-text banned before the minimum length, the
// tokens that would repeat an n-gram (transformers' no_repeat_ngram_size), and OpenAI's presence
// and frequency penalties on the tokens generated so far. They depend on the sequence, so they are
// made on the host each step, for the few tokens they touch, whatever the backend.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ctformer/generation/generation_params.hpp"
#include "ctformer/ops/sampling.hpp"

namespace ctformer {

// The tokens that would complete an n-gram already in `tokens`: each token that followed an
// earlier occurrence of the last n - 1 tokens (for n = 1, every token seen). transformers'
// NoRepeatNGramLogitsProcessor over prompt and generated tokens alike.
inline void repeated_ngram_tokens(std::span<const std::int32_t> tokens, std::int32_t n,
                                  std::vector<std::int32_t>& out) {
  const std::size_t L = tokens.size(), size = std::size_t(n);
  if (n <= 0 || L + 1 < size) return;
  const std::span<const std::int32_t> suffix = tokens.last(size - 1);
  for (std::size_t i = 0; i + size <= L; ++i)
    if (std::equal(suffix.begin(), suffix.end(), tokens.begin() + std::ptrdiff_t(i)))
      out.push_back(tokens[i + size - 1]);
}

// `out` = the biases of a sequence of `tokens`, the first `prompt_length` its prompt, sorted by
// token, each token once; empty when the parameters ask for none.
inline void token_biases(const GenerationParams& p, std::span<const std::int32_t> tokens,
                         std::size_t prompt_length, std::int32_t eos,
                         std::vector<ops::TokenBias>& out) {
  out.clear();
  for (const auto& [token, bias] : p.logit_bias) out.push_back({token, bias, 0.0f});
  const std::span<const std::int32_t> generated = tokens.subspan(prompt_length);
  if (p.eos_banned(std::int64_t(prompt_length), std::int64_t(generated.size())))
    out.push_back({eos, -INFINITY, 0.0f});
  if (p.no_repeat_ngram_size > 0) {
    thread_local std::vector<std::int32_t> repeated;
    repeated.clear();
    repeated_ngram_tokens(tokens, p.no_repeat_ngram_size, repeated);
    for (const std::int32_t t : repeated) out.push_back({t, -INFINITY, 0.0f});
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    thread_local std::vector<std::int32_t> sorted;
    sorted.assign(generated.begin(), generated.end());
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size();) {
      std::size_t j = i;
      while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
      out.push_back({sorted[i], 0.0f, p.presence_penalty + p.frequency_penalty * float(j - i)});
      i = j;
    }
  }
  // One entry per token (the sampling op writes each once): biases add up, as do penalties.
  std::sort(out.begin(), out.end(),
            [](const ops::TokenBias& a, const ops::TokenBias& b) { return a.token < b.token; });
  std::size_t kept = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (kept > 0 && out[kept - 1].token == out[i].token) {
      out[kept - 1].bias += out[i].bias;
      out[kept - 1].penalty += out[i].penalty;
    } else {
      out[kept++] = out[i];
    }
  }
  out.resize(kept);
}

}  // namespace ctformer
