// A parallel transformer block (GPT-J, PaLM): attention and the feed-forward network read the same
// normalised input, and both add to the residual stream.
//   x = x + attn(norm(x)) + mlp(norm(x))
// against PreNormBlock's x = x + attn(norm1(x)); x = x + mlp(norm2(x)). One norm per block, and
// the two branches are independent (a backend could run them concurrently).
#pragma once

#include <string>

#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/weight_loader.hpp"
#include "ctformer/layers/concepts.hpp"

namespace ctformer {

template <NormLayer Norm, TokenMixer Attention, ChannelMixer Feedforward>
requires SameBackendAndType<Norm, Attention, Feedforward>
class ParallelBlock {
 public:
  using backend = typename Norm::backend;
  using weight_type = typename Norm::weight_type;
  using A = layer_activation_t<Norm>;

  // Names inside h.<i>: ln_1, attn, mlp (GPT-J's; a GPT-2 checkpoint's ln_2 is not read).
  static ParallelBlock load(const WeightLoader<backend, weight_type>& w, const std::string& prefix,
                            const Gpt2Config& c) {
    return {Norm::load(w, prefix + ".ln_1", c), Attention::load(w, prefix + ".attn", c),
            Feedforward::load(w, prefix + ".mlp", c)};
  }

  void forward(MatrixView<A> x,  // (N, C), the residual stream, updated in place
               const AttentionStep<A>& step, const BlockScratch<A>& scratch) const {
    // The norm runs once, on its own: attention adds to x but leaves scratch.normed alone, so the
    // MLP reads norm(x) of the block's input, not of x + attn(...): that is what makes the block
    // parallel. (Fused into each branch's projection, the MLP's would normalise the updated x.)
    ln_1.forward(x, scratch.normed);
    const mixer_input_t<Norm> normed{scratch.normed, {}, scratch.normed};
    attn.forward(normed, step, x, scratch);
    mlp.forward(normed, x, scratch);
  }

  Norm ln_1;
  Attention attn;
  Feedforward mlp;
};

}  // namespace ctformer
