// A pre-norm transformer block: x += mix_tokens(norm1(x)); x += mix_channels(norm2(x)).
#pragma once

#include <string>

#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/weight_loader.hpp"
#include "ctformer/layers/concepts.hpp"

namespace ctformer {

template <NormLayer Norm, TokenMixer Attention, ChannelMixer Feedforward>
requires SameBackendAndType<Norm, Attention, Feedforward>
class PreNormBlock {
 public:
  using backend = typename Norm::backend;
  using weight_type = typename Norm::weight_type;
  using A = layer_activation_t<Norm>;

  // Hugging Face's names inside h.<i>: ln_1, attn, ln_2, mlp.
  static PreNormBlock load(const WeightLoader<backend, weight_type>& w, const std::string& prefix,
                           const Gpt2Config& c) {
    return {Norm::load(w, prefix + ".ln_1", c), Attention::load(w, prefix + ".attn", c),
            Norm::load(w, prefix + ".ln_2", c), Feedforward::load(w, prefix + ".mlp", c)};
  }

  void forward(MatrixView<A> x,  // (N, C), the residual stream, updated in place
               const AttentionStep<A>& step, const BlockScratch<A>& scratch) const {
    // Each norm is applied by the branch's first projection (fused into it where the backend can).
    attn.forward(normalized(ln_1, x, scratch.normed), step, x, scratch);
    mlp.forward(normalized(ln_2, x, scratch.normed), x, scratch);
  }

  Norm ln_1;
  Attention attn;
  Norm ln_2;
  Feedforward mlp;
};

}  // namespace ctformer
