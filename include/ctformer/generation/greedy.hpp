// Greedy generation from token ids: the first end-to-end path. Prompts run together as one ragged
// batch (static batching, `max_batch` at a time); each stops at end-of-text, after max_new_tokens,
// at max_length, or when it fills the model's context.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ctformer/core/error.hpp"
#include "ctformer/models/gpt2.hpp"

namespace ctformer {

struct GreedyOptions {
  std::int64_t max_new_tokens = 32;
  // Hugging Face's max_length: prompt and generated tokens together (the seed workload's 50).
  std::optional<std::int64_t> max_length;
  std::optional<std::int32_t> eos_token_id;  // generation stops after emitting it (it is kept)
  std::int64_t max_batch = 64;               // prompts decoded together
  std::int64_t kv_block_size = 16;
  // Called with (prompt index, token) as each token is chosen, for streaming.
  std::function<void(std::size_t, std::int32_t)> on_token;
};

// Why a sequence stopped.
enum class FinishReason { stop, length };

// How many tokens prompt p may generate: max_new_tokens, max_length and the context all bound it.
inline std::int64_t generation_budget(const GreedyOptions& options, std::int64_t prompt_length,
                                      std::int64_t n_positions) {
  std::int64_t budget = std::min(options.max_new_tokens, n_positions - prompt_length);
  if (options.max_length) budget = std::min(budget, *options.max_length - prompt_length);
  return std::max<std::int64_t>(budget, 0);
}

// Returns the generated ids of each prompt (prompt not included). finish_reason() tells why each
// stopped.
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
    std::vector<std::int64_t> budget(end - begin);
    std::int64_t capacity = 0;
    for (std::size_t p = begin; p < end; ++p) {
      const auto length = std::int64_t(prompts[p].size());
      budget[p - begin] = generation_budget(options, length, config.n_positions);
      capacity += (length + budget[p - begin] + options.kv_block_size - 1) /
                  options.kv_block_size * options.kv_block_size;
    }
    auto cache = model.make_cache(std::max<std::int64_t>(capacity, 1), options.kv_block_size);

    std::vector<SequenceStep> steps;  // the live sequences, in prompt order
    std::vector<std::size_t> prompt_of;
    for (std::size_t p = begin; p < end; ++p) {
      if (budget[p - begin] == 0) continue;
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
        if (options.on_token) options.on_token(prompt_of[s], next[s]);
        const bool done = std::int64_t(out.size()) >= budget[prompt_of[s] - begin] ||
                          (options.eos_token_id && next[s] == *options.eos_token_id);
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

inline FinishReason finish_reason(std::span<const std::int32_t> generated,
                                  const GreedyOptions& options) {
  return options.eos_token_id && !generated.empty() && generated.back() == *options.eos_token_id
             ? FinishReason::stop
             : FinishReason::length;
}

}  // namespace ctformer
