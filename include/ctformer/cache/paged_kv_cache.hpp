// The attention layers' key/value cache, in fixed-size blocks (paged, as in vLLM): a sequence owns
// a list of blocks (its block table) that need not be contiguous, so that sequences of any length
// share one allocation made once, and a finished sequence's blocks go straight back to the pool.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ctformer/core/error.hpp"
#include "ctformer/core/matrix_view.hpp"

namespace ctformer {

// Where one sequence's new tokens sit in a step: rows [first_row, first_row + num_rows) of the
// step's activations, at positions [past_length, past_length + num_rows) of the sequence. A plain
// struct, so that a step's slices can be copied to the device as they are.
struct SequenceSlice {
  std::int64_t first_row = 0;
  std::int64_t num_rows = 0;
  std::int64_t past_length = 0;
  // The sequence's block table, ceil((past_length + num_rows) / block_size) entries, in the same
  // memory as the slice (host memory for the CPU backend, device memory for CUDA).
  const std::int32_t* block_table = nullptr;
};

// One forward step's sequences, as the attention ops read them.
struct StepSlices {
  std::span<const SequenceSlice> slices;  // (S), in backend memory (device memory on CUDA)
  // Host-side summary, for ops that size their launch by it: the most new tokens of one sequence
  // (1 when every one decodes).
  std::int64_t max_new_rows = 0;
};

// One layer's cache as the attention ops see it: keys and values are ((num_blocks + 1) *
// block_size, C), token t of a sequence at row block_table[t / block_size] * block_size + t %
// block_size.
template <class A>
struct KvLayerView {
  MatrixView<A> keys;
  MatrixView<A> values;
  std::int64_t block_size = 0;

  template <class U = A>
  requires(!std::is_const_v<U>) operator KvLayerView<const U>() const {
    return {keys, values, block_size};
  }
};

template <class Backend, class A>
class PagedKvCache {
 public:
  using SequenceId = std::int32_t;

  PagedKvCache(std::int64_t n_layer, std::int64_t width, std::int64_t block_size,
               std::int64_t num_blocks)
      : n_layer_(n_layer), width_(width), block_size_(block_size), num_blocks_(num_blocks) {
    if (n_layer <= 0 || width <= 0 || block_size <= 0 || num_blocks <= 0)
      throw InputError(
          "KV cache: n_layer, width, block_size and num_blocks must be positive (got " +
          std::to_string(n_layer) + ", " + std::to_string(width) + ", " +
          std::to_string(block_size) + ", " + std::to_string(num_blocks) + ")");
    const std::int64_t per_layer = (num_blocks + 1) * block_size * width;
    keys_ = typename Backend::template buffer<A>(static_cast<std::size_t>(n_layer * per_layer));
    values_ = typename Backend::template buffer<A>(static_cast<std::size_t>(n_layer * per_layer));
    for (std::int64_t b = num_blocks - 1; b >= 0; --b)
      free_.push_back(static_cast<std::int32_t>(b));
  }

  std::int64_t block_size() const { return block_size_; }
  std::int64_t num_blocks() const { return num_blocks_; }
  std::int64_t free_blocks() const { return static_cast<std::int64_t>(free_.size()); }
  // One block beyond the pool, never given to a sequence: the rows a backend adds to pad a step
  // (CUDA pads decode batches to the sizes it has graphs for) write their keys and values here.
  std::int32_t padding_block() const { return static_cast<std::int32_t>(num_blocks_); }
  std::int64_t blocks_for(std::int64_t tokens) const {
    return (tokens + block_size_ - 1) / block_size_;
  }

  SequenceId add_sequence() {
    for (std::size_t i = 0; i < sequences_.size(); ++i)
      if (!sequences_[i].live) {
        sequences_[i] = {true, 0, {}};
        return static_cast<SequenceId>(i);
      }
    sequences_.push_back({true, 0, {}});
    return static_cast<SequenceId>(sequences_.size() - 1);
  }

  // Returns the sequence's blocks to the pool.
  void release(SequenceId id) {
    Sequence& s = at(id);
    free_.insert(free_.end(), s.blocks.rbegin(), s.blocks.rend());
    s = {};
  }

  std::int64_t length(SequenceId id) const { return at(id).length; }
  std::span<const std::int32_t> block_table(SequenceId id) const { return at(id).blocks; }

  // Blocks that `extra` more tokens of sequence `id` would take from the pool.
  std::int64_t blocks_needed(SequenceId id, std::int64_t extra) const {
    const Sequence& s = at(id);
    return blocks_for(s.length + extra) - static_cast<std::int64_t>(s.blocks.size());
  }

  // Makes room for `extra` more tokens and counts them in the sequence's length.
  void grow(SequenceId id, std::int64_t extra) {
    const std::int64_t needed = blocks_needed(id, extra);
    if (needed > free_blocks())
      throw InputError("KV cache: sequence " + std::to_string(id) + " needs " +
                       std::to_string(needed) + " more blocks of " + std::to_string(block_size_) +
                       " tokens but only " + std::to_string(free_blocks()) + " of " +
                       std::to_string(num_blocks_) +
                       " are free; make a larger cache or run fewer sequences at once");
    Sequence& s = at(id);
    for (std::int64_t i = 0; i < needed; ++i) {
      s.blocks.push_back(free_.back());
      free_.pop_back();
    }
    s.length += extra;
  }

  KvLayerView<A> layer(std::int64_t l) {
    const std::int64_t rows = (num_blocks_ + 1) * block_size_;
    return {{keys_.data() + l * rows * width_, rows, width_},
            {values_.data() + l * rows * width_, rows, width_},
            block_size_};
  }

 private:
  struct Sequence {
    bool live = false;
    std::int64_t length = 0;
    std::vector<std::int32_t> blocks;
  };

  Sequence& at(SequenceId id) {
    return const_cast<Sequence&>(static_cast<const PagedKvCache&>(*this).at(id));
  }
  const Sequence& at(SequenceId id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= sequences_.size() || !sequences_[id].live)
      throw InputError("KV cache: sequence id " + std::to_string(id) + " is not a live sequence");
    return sequences_[id];
  }

  std::int64_t n_layer_, width_, block_size_, num_blocks_;
  typename Backend::template buffer<A> keys_;    // (n_layer, (num_blocks + 1) * block_size, C)
  typename Backend::template buffer<A> values_;  // (n_layer, (num_blocks + 1) * block_size, C)
  std::vector<std::int32_t> free_;               // a stack: recently freed blocks are reused first
  std::vector<Sequence> sequences_;
};

}  // namespace ctformer
