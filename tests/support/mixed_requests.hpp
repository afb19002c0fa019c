// Generation requests for tests of the generator: greedy and sampled parameters, and a batch of
// prompts of varied lengths that alternates between them.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ctformer/generation/generator.hpp"

namespace ctformer::test {

inline GenerationParams greedy(std::int64_t max_new_tokens) {
  GenerationParams p;
  p.max_new_tokens = max_new_tokens;
  p.max_length = 1 << 20;
  return p;
}

inline GenerationParams sampled(std::uint64_t seed, std::int64_t max_new_tokens) {
  GenerationParams p = greedy(max_new_tokens);
  p.do_sample = true;
  p.temperature = 0.9f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.repetition_penalty = 1.2f;
  p.seed = seed;
  return p;
}

// n requests with prompts of 1 to 13 ids below `vocab_size`; odd ones sampled (seed 1000 + i),
// even ones greedy; request i asks for max_new_tokens(i) tokens.
inline std::vector<Request> mixed_requests(std::int64_t vocab_size, int n,
                                           const std::function<std::int64_t(int)>& max_new_tokens) {
  std::vector<Request> requests;
  for (int i = 0; i < n; ++i) {
    Request r;
    for (int t = 0; t < 1 + (i * 7) % 13; ++t)
      r.prompt.push_back(std::int32_t((i * 31 + t * 17) % vocab_size));
    r.params =
        i % 2 ? sampled(1000 + std::uint64_t(i), max_new_tokens(i)) : greedy(max_new_tokens(i));
    requests.push_back(r);
  }
  return requests;
}

}  // namespace ctformer::test
