// GPT-2's feed-forward network: c_fc, gelu (tanh approximation), c_proj.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "ctformer/backends/concepts.hpp"
#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/weight_loader.hpp"
#include "ctformer/layers/concepts.hpp"

namespace ctformer {

template <Backend B, class T>
class Mlp {
 public:
  using backend = B;
  using weight_type = T;
  using A = activation_t<B, T>;

  static Mlp load(const WeightLoader<B, T>& w, const std::string& prefix, const Gpt2Config& c) {
    const std::int64_t C = c.n_embd, H = c.n_inner;
    using L = ops::Linear<B>;
    return Mlp(L::prepare(w.load(prefix + ".c_fc.weight", {C, H}), C, H, WeightLayout::in_out),
               w.load(prefix + ".c_fc.bias", {H}),
               L::prepare(w.load(prefix + ".c_proj.weight", {H, C}), H, C, WeightLayout::in_out),
               w.load(prefix + ".c_proj.bias", {C}));
  }

  // residual += c_proj(gelu(c_fc(norm(x))))
  void forward(const ops::NormedRows<A, T>& x,  // (N, C) and the norm c_fc applies first
               MatrixView<A> residual, const BlockScratch<A>& scratch) const {
    ops::Linear<B>::run(x, w_fc_, span(b_fc_), ops::Epilogue::bias_gelu, scratch.hidden);
    ops::Linear<B>::run(MatrixView<const A>(scratch.hidden), w_proj_, span(b_proj_),
                        ops::Epilogue::bias_residual, residual);
  }

 private:
  using buffer = typename B::template buffer<T>;
  using Weight = typename ops::Linear<B>::template Weight<T>;
  static std::span<const T> span(const buffer& b) { return {b.data(), b.size()}; }
  Mlp(Weight w_fc, buffer b_fc, Weight w_proj, buffer b_proj)
      : w_fc_(std::move(w_fc)),
        b_fc_(std::move(b_fc)),
        w_proj_(std::move(w_proj)),
        b_proj_(std::move(b_proj)) {}

  Weight w_fc_;    // (C, H)
  buffer b_fc_;    // (H)
  Weight w_proj_;  // (H, C)
  buffer b_proj_;  // (C)
};

}  // namespace ctformer
