// GPT-2's input: token embedding plus learned position embedding.
#pragma once

#include <cstdint>
#include <span>

#include "ctformer/backends/concepts.hpp"
#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/weight_loader.hpp"

namespace ctformer {

template <Backend B, class T>
class Embedding {
 public:
  using backend = B;
  using weight_type = T;
  using A = activation_t<B, T>;

  static Embedding load(const WeightLoader<B, T>& w, const Gpt2Config& c) {
    return Embedding(ops::Linear<B>::prepare(w.load("wte.weight", {c.vocab_size, c.n_embd}),
                                             c.vocab_size, c.n_embd, WeightLayout::out_in),
                     w.load("wpe.weight", {c.n_positions, c.n_embd}), c);
  }

  void forward(std::span<const std::int32_t> tokens,     // (N), each < vocab_size
               std::span<const std::int32_t> positions,  // (N), each < n_positions
               MatrixView<A> out) const {                // (N, C)
    ops::Embedding<B>::run(tokens, positions, wte_,
                           MatrixView<const T>{wpe_.data(), n_positions_, n_embd_}, out);
  }

  // The token table is kept in the LM head's weight format, as the head is tied to it: one copy.
  using Weight = typename ops::Linear<B>::template Weight<T>;
  const Weight& lm_head() const { return wte_; }

 private:
  using buffer = typename B::template buffer<T>;
  Embedding(Weight wte, buffer wpe, const Gpt2Config& c)
      : wte_(std::move(wte)),
        wpe_(std::move(wpe)),
        n_positions_(c.n_positions),
        n_embd_(c.n_embd) {}

  Weight wte_;  // (V, C), out_in
  buffer wpe_;  // (P, C)
  std::int64_t n_positions_, n_embd_;
};

}  // namespace ctformer
