// Greedy generation from token ids: the first end-to-end path. Prompts run together as one ragged
// batch (static batching, `max_batch` at a time); each stops at end-of-text, after max_new_tokens,
// or when it fills the model's context.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ctformer/core/error.hpp"
#include "ctformer/models/gpt2.hpp"

namespace ctformer {

struct GreedyOptions {
  std::int64_t max_new_tokens = 32;
  std::optional<std::int32_t> eos_token_id;  // generation stops after emitting it (it is kept)
  std::int64_t max_batch = 64;               // prompts decoded together
  std::int64_t kv_block_size = 16;
};

// Returns the generated ids of each prompt (prompt not included).
template <class Model>
std::vector<std::vector<std::int32_t>> generate_greedy(
    Model& model, std::span<const std::vector<std::int32_t>> prompts, const GreedyOptions& options) {
  const Gpt2Config& config = model.config();
  if (options.max_new_tokens < 0 || options.max_batch <= 0)
    throw InputError("generate_greedy: max_new_tokens must be >= 0 and max_batch > 0");
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    if (prompts[p].empty())
      throw InputError("generate_greedy: prompt " + std::to_string(p) +
                       " is empty; GPT-2 needs at least one token to condition on");
    if (std::int64_t(prompts[p].size()) > config.n_positions)
      throw InputError("generate_greedy: prompt " + std::to_string(p) + " has " +
                       std::to_string(prompts[p].size()) +
                       " tokens, more than the model's context (n_positions " +
                       std::to_string(config.n_positions) + ")");
  }

  std::vector<std::vector<std::int32_t>> outputs(prompts.size());
  for (std::size_t begin = 0; begin < prompts.size(); begin += std::size_t(options.max_batch)) {
    const std::size_t end = std::min(prompts.size(), begin + std::size_t(options.max_batch));

    // Room for every sequence of the batch at its longest.
    std::int64_t capacity = 0;
    for (std::size_t p = begin; p < end; ++p) {
      const std::int64_t longest =
          std::min(config.n_positions, std::int64_t(prompts[p].size()) + options.max_new_tokens);
      capacity += (longest + options.kv_block_size - 1) / options.kv_block_size * options.kv_block_size;
    }
    auto cache = model.make_cache(capacity, options.kv_block_size);

    std::vector<SequenceStep> steps;  // the live sequences, in prompt order
    std::vector<std::size_t> prompt_of;
    for (std::size_t p = begin; p < end; ++p) {
      if (options.max_new_tokens == 0) continue;
      steps.push_back({cache.add_sequence(), prompts[p]});
      prompt_of.push_back(p);
    }
    std::vector<std::int32_t> next(steps.size());
    while (!steps.empty()) {
      const auto logits = model.forward(steps, cache);
      ops::Argmax<typename Model::backend>::run(logits, next);

      std::size_t kept = 0;
      for (std::size_t s = 0; s < steps.size(); ++s) {
        std::vector<std::int32_t>& out = outputs[prompt_of[s]];
        out.push_back(next[s]);
        const bool done = std::int64_t(out.size()) >= options.max_new_tokens ||
                          (options.eos_token_id && next[s] == *options.eos_token_id) ||
                          cache.length(steps[s].sequence) >= config.n_positions;
        if (done) {
          cache.release(steps[s].sequence);
          continue;
        }
        steps[kept] = {steps[s].sequence, std::span<const std::int32_t>(&out.back(), 1)};
        prompt_of[kept] = prompt_of[s];
        ++kept;
      }
      steps.resize(kept);
      prompt_of.resize(kept);
      next.resize(kept);
    }
  }
  return outputs;
}

}  // namespace ctformer
