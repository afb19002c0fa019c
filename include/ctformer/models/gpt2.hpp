// GPT-2, composed from the layers: embedding, n_layer pre-norm blocks, final LayerNorm, and the LM
// head tied to the token embedding. `GPT2<cpu, float>` is the fp32 reference.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ctformer/backends/concepts.hpp"
#include "ctformer/cache/paged_kv_cache.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/safetensors.hpp"
#include "ctformer/io/weight_loader.hpp"
#include "ctformer/layers/attention.hpp"
#include "ctformer/layers/block.hpp"
#include "ctformer/layers/embedding.hpp"
#include "ctformer/layers/layer_norm.hpp"
#include "ctformer/layers/mlp.hpp"

namespace ctformer {

// Tokens to append to one sequence of the KV cache in a forward step.
struct SequenceStep {
  std::int32_t sequence = 0;  // a PagedKvCache::SequenceId
  std::span<const std::int32_t> tokens;
};

// Which rows of logits a forward step returns.
enum class LogitsFor {
  last_token,  // one row per step: what generation needs
  every_token  // one row per input token, in step order: what scoring a text needs
};

template <Backend B, class T>
  requires ComputesGpt2<B, T>
class GPT2 {
 public:
  using backend = B;
  using weight_type = T;
  using A = activation_t<B, T>;
  using Block = PreNormBlock<LayerNorm<B, T>, CausalSelfAttention<B, T>, Mlp<B, T>>;
  using Cache = PagedKvCache<B, A>;

  // Loads config.json and model.safetensors from a Hugging Face model directory.
  static GPT2 from_directory(const std::filesystem::path& dir) {
    if (!std::filesystem::is_directory(dir))
      throw FileError("model directory '" + dir.string() +
                      "' does not exist (expected a Hugging Face GPT-2 folder with config.json and "
                      "model.safetensors)");
    const Gpt2Config config = Gpt2Config::from_file(dir / "config.json");
    return GPT2(config, SafetensorsFile(dir / "model.safetensors"));
  }

  GPT2(const Gpt2Config& config, const SafetensorsFile& file)
      : GPT2(config, WeightLoader<B, T>(file)) {}

  const Gpt2Config& config() const { return config_; }

  // A cache for `capacity_tokens` tokens in all, across every sequence it will hold at once.
  Cache make_cache(std::int64_t capacity_tokens, std::int64_t block_size = 16) const {
    return Cache(config_.n_layer, config_.n_embd, block_size,
                 (capacity_tokens + block_size - 1) / block_size);
  }

  // Appends each step's tokens to its sequence in `cache` and runs them through the model.
  // Returns logits, (steps, vocab) or (tokens, vocab) as `which` says, valid until the next call.
  MatrixView<const A> forward(std::span<const SequenceStep> steps, Cache& cache,
                              LogitsFor which = LogitsFor::last_token) {
    const std::int64_t N = lay_out(steps, cache);
    const std::int64_t C = config_.n_embd;
    MatrixView<A> x{workspace_.x.data(), N, C};  // (N, C): the residual stream
    const BlockScratch<A> scratch{{workspace_.normed.data(), N, C},
                                  {workspace_.qkv.data(), N, 3 * C},
                                  {workspace_.mixed.data(), N, C},
                                  {workspace_.hidden.data(), N, config_.n_inner}};

    embedding_.forward(step_.tokens, step_.positions, x);
    for (std::size_t l = 0; l < blocks_.size(); ++l)
      blocks_[l].forward(x, {step_.slices, cache.layer(static_cast<std::int64_t>(l))}, scratch);

    MatrixView<A> last = x;
    if (which == LogitsFor::last_token) {
      last = {workspace_.last.data(), static_cast<std::int64_t>(steps.size()), C};
      ops::GatherRows<B>::run(x, step_.last_rows, last);
    }
    ln_f_.forward(last, last);
    MatrixView<A> logits{workspace_.logits.data(), last.rows, config_.vocab_size};
    ops::Linear<B>::run(MatrixView<const A>(last), embedding_.token_table(), WeightLayout::out_in,
                        std::span<const T>{}, ops::Epilogue::none, logits);
    return logits;
  }

 private:
  GPT2(const Gpt2Config& c, const WeightLoader<B, T>& w)
      : config_(c), embedding_(Embedding<B, T>::load(w, c)), ln_f_(LayerNorm<B, T>::load(w, "ln_f", c)) {
    blocks_.reserve(static_cast<std::size_t>(c.n_layer));
    for (std::int64_t l = 0; l < c.n_layer; ++l)
      blocks_.push_back(Block::load(w, "h." + std::to_string(l), c));
  }

  // Validates the steps, reserves their cache space, fills step_ and sizes the workspace.
  // Returns the number of tokens in the step. Throws before changing anything if a step is bad.
  std::int64_t lay_out(std::span<const SequenceStep> steps, Cache& cache) {
    if (steps.empty()) throw InputError("forward: no sequences in the step");
    std::int64_t N = 0, blocks_needed = 0;
    for (std::size_t s = 0; s < steps.size(); ++s) {
      const SequenceStep& step = steps[s];
      const std::string which = "sequence " + std::to_string(step.sequence);
      if (step.tokens.empty()) throw InputError("forward: " + which + " has no tokens to add");
      for (std::size_t r = 0; r < s; ++r)
        if (steps[r].sequence == step.sequence)
          throw InputError("forward: " + which + " appears twice in one step");
      for (std::size_t i = 0; i < step.tokens.size(); ++i)
        if (step.tokens[i] < 0 || step.tokens[i] >= config_.vocab_size)
          throw InputError("forward: token id " + std::to_string(step.tokens[i]) + " at index " +
                           std::to_string(i) + " of " + which +
                           " is outside the vocabulary (expected 0 <= id < vocab_size " +
                           std::to_string(config_.vocab_size) + ")");
      const std::int64_t length = cache.length(step.sequence) + std::int64_t(step.tokens.size());
      if (length > config_.n_positions)
        throw InputError("forward: " + which + " would be " + std::to_string(length) +
                         " tokens long, longer than the model's context (n_positions " +
                         std::to_string(config_.n_positions) +
                         "); shorten the prompt or generate fewer tokens");
      blocks_needed += cache.blocks_needed(step.sequence, std::int64_t(step.tokens.size()));
      N += std::int64_t(step.tokens.size());
    }
    if (blocks_needed > cache.free_blocks())
      throw InputError("forward: the step needs " + std::to_string(blocks_needed) +
                       " KV cache blocks but " + std::to_string(cache.free_blocks()) +
                       " are free; make a larger cache or run fewer sequences at once");

    step_.tokens.clear();
    step_.positions.clear();
    step_.slices.clear();
    step_.last_rows.clear();
    for (const SequenceStep& step : steps) {
      const std::int64_t past = cache.length(step.sequence);
      const auto n = std::int64_t(step.tokens.size());
      cache.grow(step.sequence, n);
      step_.slices.push_back({std::int64_t(step_.tokens.size()), n, past,
                              cache.block_table(step.sequence)});
      for (std::int64_t i = 0; i < n; ++i) step_.positions.push_back(std::int32_t(past + i));
      step_.tokens.insert(step_.tokens.end(), step.tokens.begin(), step.tokens.end());
      step_.last_rows.push_back(std::int64_t(step_.tokens.size()) - 1);
    }

    const std::int64_t C = config_.n_embd;
    auto ensure = [](auto& buf, std::int64_t n) {
      if (std::int64_t(buf.size()) < n) buf = std::decay_t<decltype(buf)>(std::size_t(n));
    };
    ensure(workspace_.x, N * C);
    ensure(workspace_.normed, N * C);
    ensure(workspace_.qkv, N * 3 * C);
    ensure(workspace_.mixed, N * C);
    ensure(workspace_.hidden, N * config_.n_inner);
    ensure(workspace_.last, std::int64_t(steps.size()) * C);
    ensure(workspace_.logits, N * config_.vocab_size);
    return N;
  }

  Gpt2Config config_;
  Embedding<B, T> embedding_;  // wte (V, C), wpe (P, C); wte is also the LM head
  std::vector<Block> blocks_;  // n_layer
  LayerNorm<B, T> ln_f_;

  struct StepLayout {  // host-side description of the current step
    std::vector<std::int32_t> tokens, positions;  // (N)
    std::vector<SequenceSlice> slices;            // one per step
    std::vector<std::int64_t> last_rows;          // one per step
  } step_;
  struct Workspace {  // grows to the largest step seen, then is reused
    typename B::template buffer<A> x, normed, qkv, mixed, hidden, last, logits;
  } workspace_;
};

}  // namespace ctformer
