// A decoder-only transformer composed from the layers: embedding, n_layer blocks, a final norm, and
// the LM head tied to the token embedding. GPT-2 is `DecoderModel<B, T>` with the default block and
// norm, spelled `GPT2<B, T>`; `GPT2<cpu, float>` is the fp32 reference. Other blocks and norms make
// variants (docs/composing-variants.md, examples/custom_variant.cpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

// Which rows of logits a forward step returns for one sequence.
enum class LogitsFor {
  last_token,  // one row: what generation needs
  every_token  // one row per token it adds: what scoring a text needs
};

// Tokens to append to one sequence of the KV cache in a forward step.
struct SequenceStep {
  std::int32_t sequence = 0;  // a PagedKvCache::SequenceId
  std::span<const std::int32_t> tokens;
  LogitsFor logits = LogitsFor::last_token;
};

// GPT-2's block: x += attn(ln_1(x)); x += mlp(ln_2(x)).
template <Backend B, class T>
using Gpt2Block = PreNormBlock<LayerNorm<B, T>, CausalSelfAttention<B, T>, Mlp<B, T>>;

// Block and FinalNorm are any DecoderBlock and NormLayer on the same backend and weight type. The
// weights are read by GPT-2's names: wte, wpe, h.<i> (the block's own names inside), ln_f.
template <Backend B, class T, DecoderBlock Block = Gpt2Block<B, T>,
          NormLayer FinalNorm = LayerNorm<B, T>>
requires ComputesGpt2<B, T> && SameBackendAndType<Embedding<B, T>, Block, FinalNorm>
class DecoderModel {
 public:
  using backend = B;
  using weight_type = T;
  using A = activation_t<B, T>;
  using block_type = Block;
  using final_norm_type = FinalNorm;
  using Cache = PagedKvCache<B, A>;

  // Loads config.json and model.safetensors from a Hugging Face model directory.
  static DecoderModel from_directory(const std::filesystem::path& dir) {
    if (!std::filesystem::is_directory(dir))
      throw FileError("model directory '" + dir.string() +
                      "' does not exist (expected a Hugging Face GPT-2 folder with config.json and "
                      "model.safetensors)");
    const Gpt2Config config = Gpt2Config::from_file(dir / "config.json");
    return DecoderModel(config, SafetensorsFile(dir / "model.safetensors"));
  }

  DecoderModel(const Gpt2Config& config, const SafetensorsFile& file)
      : DecoderModel(config, WeightLoader<B, T>(file)) {}

  const Gpt2Config& config() const { return config_; }

  // A cache for `capacity_tokens` tokens in all, across every sequence it will hold at once.
  Cache make_cache(std::int64_t capacity_tokens, std::int64_t block_size = 16) const {
    return Cache(config_.n_layer, config_.n_embd, block_size,
                 (capacity_tokens + block_size - 1) / block_size);
  }

  // Appends each step's tokens to its sequence in `cache` and runs them through the model.
  // Returns logits of type A, valid until the next call: for each step in order, one row (its last
  // token's) or one per token it added, as its `logits` says. They are in backend memory: host
  // memory on the CPU; device memory on CUDA, where callers pick tokens with ops::Argmax<B> /
  // ops::Sample<B> (which write host ids), score them with ops::Logprobs<B>, or copy them with
  // B::download(logits).
  MatrixView<const A> forward(std::span<const SequenceStep> steps, Cache& cache) {
    lay_out(steps, cache);
    // Rows and sequences the ops run over: a decode step may be padded (see DecodeGraphs).
    const std::int64_t N = step_.n, S = step_.sequences(), M = step_.logit_rows_count();
    const std::int64_t C = config_.n_embd, V = config_.vocab_size;
    Workspace& w = workspace_;
    MatrixView<A> x = w.view(w.x, N, C);  // (N, C): the residual stream
    const BlockScratch<A> scratch{w.view(w.normed, N, C), w.view(w.qkv, N, 3 * C),
                                  w.view(w.mixed, N, C), w.view(w.hidden, N, config_.n_inner)};
    // The rows whose logits are wanted, (M, C), and their logits, (M, V). When every row is wanted
    // (a decode step, or scoring whole texts), they are x itself.
    const bool every_row = M == N;
    MatrixView<A> wanted = every_row ? x : w.view(w.wanted, M, C);
    MatrixView<A> logits = w.view(w.logits, M, V);

    auto launch = [&] {
      embedding_.forward(step_.tokens(), step_.positions(), x);
      for (std::size_t l = 0; l < blocks_.size(); ++l)
        blocks_[l].forward(x, {step_.slices_view(), cache.layer(static_cast<std::int64_t>(l))},
                           scratch);
      if (!every_row) ops::GatherRows<B>::run(x, step_.logit_rows(), wanted);
      // ln_f, applied by the LM head's projection (fused into it where the backend can).
      ops::Linear<B>::run(normalized(ln_f_, wanted, wanted), embedding_.lm_head(),
                          std::span<const T>{}, ops::Epilogue::none, logits);
    };
    if (step_.decode) {
      // What a replayed step would read and write: the buffers, and the cache's place and shape.
      const KvLayerView<A> kv = cache.layer(0);
      const void* const addresses[] = {w.arena.data(),
                                       step_.memory.data(),
                                       kv.keys.data,
                                       kv.values.data,
                                       reinterpret_cast<const void*>(cache.num_blocks()),
                                       reinterpret_cast<const void*>(cache.block_size())};
      graphs_.run(S, addresses, launch);
    } else {
      launch();
    }
    return {logits.data, step_.unpadded_logit_rows, V};
  }

  // How decode steps are run: on CUDA, padded and replayed from graphs, which this can switch off.
  typename B::DecodeGraphs& decode_graphs() { return graphs_; }

 private:
  DecoderModel(const Gpt2Config& c, const WeightLoader<B, T>& w)
      : config_(c), embedding_(Embedding<B, T>::load(w, c)), ln_f_(FinalNorm::load(w, "ln_f", c)) {
    blocks_.reserve(static_cast<std::size_t>(c.n_layer));
    for (std::int64_t l = 0; l < c.n_layer; ++l)
      blocks_.push_back(Block::load(w, "h." + std::to_string(l), c));
  }

  // Validates the steps, reserves their cache space, fills step_ (padding a decode step to the
  // batch graphs_ asks for) and sizes the workspace. Throws before changing anything if a step is
  // bad.
  void lay_out(std::span<const SequenceStep> steps, Cache& cache) {
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

    // Host copies first (block tables are written after the sizes are known), then one write to
    // backend memory.
    step_.host.clear();
    step_.slices_host.clear();
    step_.logit_rows_host.clear();
    std::int64_t table_entries = 0, max_new_rows = 0, logit_rows = 0;
    for (const SequenceStep& step : steps) {
      const auto n = std::int64_t(step.tokens.size());
      table_entries += cache.blocks_for(cache.length(step.sequence) + n);
      max_new_rows = std::max(max_new_rows, n);
      logit_rows += step.logits == LogitsFor::every_token ? n : 1;
    }
    // A decode step (one new token per sequence) may run over more rows than it has: the padding
    // rows decode token 0 at position 0 into the cache's padding block.
    const bool decode = max_new_rows == 1;
    const auto S = std::int64_t(steps.size());
    const std::int64_t padded = decode ? graphs_.padded_batch(S) : S;
    const std::int64_t rows = N + (padded - S);
    // Allocations (which may fail for lack of memory) before the cache changes, host ones included.
    step_.reserve(rows, padded, logit_rows + (padded - S), table_entries + 1);
    workspace_.reserve(rows, logit_rows + (padded - S), config_);
    std::vector<std::int32_t>& ids = step_.host;  // tokens | positions | block tables
    ids.assign(std::size_t(2 * rows), 0);
    std::int64_t row = 0;
    for (const SequenceStep& step : steps) {
      const std::int64_t past = cache.length(step.sequence);
      const auto n = std::int64_t(step.tokens.size());
      cache.grow(step.sequence, n);
      const auto table = cache.block_table(step.sequence);
      step_.slices_host.push_back({row, n, past, step_.ids() + ids.size()});
      ids.insert(ids.end(), table.begin(), table.end());
      for (std::int64_t i = 0; i < n; ++i) {
        ids[std::size_t(row + i)] = step.tokens[std::size_t(i)];
        ids[std::size_t(rows + row + i)] = std::int32_t(past + i);
        if (step.logits == LogitsFor::every_token || i == n - 1)
          step_.logit_rows_host.push_back(row + i);
      }
      row += n;
    }
    step_.unpadded_logit_rows = logit_rows;
    if (row < rows) {
      const std::int32_t* padding_table = step_.ids() + ids.size();
      ids.push_back(cache.padding_block());
      for (; row < rows; ++row) {
        step_.slices_host.push_back({row, 1, 0, padding_table});
        step_.logit_rows_host.push_back(row);
      }
    }
    step_.n = rows;
    step_.decode = decode;
    step_.max_new_rows = max_new_rows;
    step_.upload();
  }

  Gpt2Config config_;
  Embedding<B, T> embedding_;  // wte (V, C), wpe (P, C); wte is also the LM head
  std::vector<Block> blocks_;  // n_layer
  FinalNorm ln_f_;
  typename B::DecodeGraphs graphs_;

  template <class E>
  using buffer = typename B::template buffer<E>;

  // The current step as the ops read it: built on the host, then written to backend memory in one
  // copy (each copy costs a CUDA decode step a few microseconds of host time).
  struct StepLayout {
    std::int64_t n = 0, max_new_rows = 0;       // n: rows, padding included
    bool decode = false;                        // one new token per sequence
    std::int64_t unpadded_logit_rows = 0;       // the rows of logits forward() returns
    std::vector<std::int32_t> host;             // tokens (N) | positions (N) | block tables
    std::vector<SequenceSlice> slices_host;     // (S); block_table points into ids()
    std::vector<std::int64_t> logit_rows_host;  // (M): the rows whose logits are wanted

    // The backend copy, one buffer: slices (S) | logit rows (M) | ids, packed for this step's S
    // and M, so that one copy writes exactly what the step uses. The regions' addresses depend on
    // the buffer, S and M alone, and a CUDA decode graph's bucket fixes S = M.
    buffer<std::byte> memory;
    std::int64_t slice_count = 0;      // S: sequences in this step, padding included
    std::int64_t logit_row_count = 0;  // M: padding included
    std::vector<std::byte> staging;    // what the copy writes

    // Sets the step's S and M and makes room for a step of `rows` rows, S slices, M logit rows and
    // `table_entries` block-table entries, host copies included. The backend buffer doubles when
    // it grows: block tables lengthen as sequences decode, and memory that moved makes the CUDA
    // backend record its decode graphs again.
    void reserve(std::int64_t rows, std::int64_t sequences, std::int64_t logit_rows,
                 std::int64_t table_entries) {
      slice_count = sequences;
      logit_row_count = logit_rows;
      const std::int64_t id_count = 2 * rows + table_entries;
      const std::int64_t bytes = ids_offset() + id_count * std::int64_t(sizeof(std::int32_t));
      if (bytes > std::int64_t(memory.size()))
        grow(memory, std::max(bytes, 2 * std::int64_t(memory.size())));
      host.reserve(std::size_t(id_count));
      slices_host.reserve(std::size_t(sequences));
      logit_rows_host.reserve(std::size_t(logit_rows));
      staging.reserve(std::size_t(bytes));
    }
    void upload() {
      auto place = [this](const auto& v, std::int64_t offset) {
        std::memcpy(staging.data() + offset, v.data(), v.size() * sizeof(v[0]));
      };
      staging.resize(std::size_t(ids_offset()) + host.size() * sizeof(std::int32_t));
      place(slices_host, 0);
      place(logit_rows_host, logit_rows_offset());
      place(host, ids_offset());
      B::write(std::span<const std::byte>(staging), memory.data());
    }
    std::int64_t logit_rows_offset() const {
      return slice_count * std::int64_t(sizeof(SequenceSlice));
    }
    std::int64_t ids_offset() const {
      return logit_rows_offset() + logit_row_count * std::int64_t(sizeof(std::int64_t));
    }
    const std::int32_t* ids() const {
      return reinterpret_cast<const std::int32_t*>(memory.data() + ids_offset());
    }
    std::span<const std::int32_t> tokens() const { return {ids(), std::size_t(n)}; }
    std::span<const std::int32_t> positions() const { return {ids() + n, std::size_t(n)}; }
    std::int64_t sequences() const { return std::int64_t(slices_host.size()); }
    std::int64_t logit_rows_count() const { return std::int64_t(logit_rows_host.size()); }
    std::span<const std::int64_t> logit_rows() const {
      return {reinterpret_cast<const std::int64_t*>(memory.data() + logit_rows_offset()),
              logit_rows_host.size()};
    }
    StepSlices slices_view() const {
      return {{reinterpret_cast<const SequenceSlice*>(memory.data()), slices_host.size()},
              max_new_rows};
    }
  } step_;

  // Every activation of a step in one allocation (the "arena"), carved into the regions below. It
  // grows to the largest step seen (normally the first prefill), then is reused: decode steps no
  // longer allocate.
  struct Workspace {
    struct Region {
      std::int64_t offset = 0;
    };
    Region x, normed, qkv, mixed, hidden, wanted, logits;
    buffer<A> arena;

    // N rows, M of them with logits.
    void reserve(std::int64_t N, std::int64_t M, const Gpt2Config& c) {
      const std::int64_t C = c.n_embd;
      std::int64_t size = 0;
      auto place = [&size](Region& r, std::int64_t elements) {
        r.offset = size;
        size += (elements + 63) / 64 * 64;  // each region 256-byte aligned for fp32
      };
      place(x, N * C);
      place(normed, N * C);
      place(qkv, N * 3 * C);
      place(mixed, N * C);
      place(hidden, N * c.n_inner);
      place(wanted, M * C);
      place(logits, M * c.vocab_size);
      grow(arena, size);
    }
    MatrixView<A> view(Region r, std::int64_t rows, std::int64_t cols) {
      return {arena.data() + r.offset, rows, cols};
    }
  } workspace_;

  template <class E>
  static void grow(buffer<E>& b, std::int64_t n) {
    if (std::int64_t(b.size()) < n) {
      b = {};  // free the old one first: on a GPU both may not fit
      b = buffer<E>(std::size_t(n));
    }
  }
};

template <Backend B, class T>
using GPT2 = DecoderModel<B, T>;

}  // namespace ctformer
