// Causal multi-head self-attention with a paged KV cache (GPT-2's attn: c_attn, then c_proj).
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "ctformer/backends/concepts.hpp"
#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/weight_loader.hpp"
#include "ctformer/layers/concepts.hpp"

namespace ctformer {

template <Backend B, class T>
class CausalSelfAttention {
 public:
  using backend = B;
  using weight_type = T;
  using A = activation_t<B, T>;

  static CausalSelfAttention load(const WeightLoader<B, T>& w, const std::string& prefix,
                                  const Gpt2Config& c) {
    const std::int64_t C = c.n_embd;
    using L = ops::Linear<B>;
    return CausalSelfAttention(
        L::prepare(w.load(prefix + ".c_attn.weight", {C, 3 * C}), C, 3 * C, WeightLayout::in_out),
        w.load(prefix + ".c_attn.bias", {3 * C}),
        L::prepare(w.load(prefix + ".c_proj.weight", {C, C}), C, C, WeightLayout::in_out),
        w.load(prefix + ".c_proj.bias", {C}), c);
  }

  // residual += c_proj(attention(c_attn(norm(x)))), appending this step's keys and values to the
  // cache.
  void forward(const ops::NormedRows<A, T>& x,  // (N, C) and the norm c_attn applies first
               const AttentionStep<A>& step, MatrixView<A> residual,
               const BlockScratch<A>& scratch) const {
    ops::Linear<B>::run(x, w_qkv_, span(b_qkv_), ops::Epilogue::bias, scratch.qkv);
    ops::PagedAttention<B>::run(scratch.qkv, step.slices, step.cache, n_head_, scale_,
                                scratch.mixed);
    ops::Linear<B>::run(scratch.mixed, w_out_, span(b_out_), ops::Epilogue::bias_residual,
                        residual);
  }

 private:
  using buffer = typename B::template buffer<T>;
  using Weight = typename ops::Linear<B>::template Weight<T>;
  static std::span<const T> span(const buffer& b) { return {b.data(), b.size()}; }

  CausalSelfAttention(Weight w_qkv, buffer b_qkv, Weight w_out, buffer b_out, const Gpt2Config& c)
      : w_qkv_(std::move(w_qkv)),
        b_qkv_(std::move(b_qkv)),
        w_out_(std::move(w_out)),
        b_out_(std::move(b_out)),
        n_head_(c.n_head),
        scale_(c.scale_attn_weights ? 1.0f / std::sqrt(static_cast<float>(c.head_dim())) : 1.0f) {}

  Weight w_qkv_;  // (C, 3C)
  buffer b_qkv_;  // (3C)
  Weight w_out_;  // (C, C)
  buffer b_out_;  // (C)
  std::int64_t n_head_;
  float scale_;
};

}  // namespace ctformer
