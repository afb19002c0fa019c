// What a layer must provide to be composed into a block, and a block into a model. A composition
// that breaks one of these fails to compile naming the concept, not deep inside a template.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string>

#include "ctformer/backends/concepts.hpp"
#include "ctformer/cache/paged_kv_cache.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/weight_loader.hpp"

namespace ctformer {

// Per-step views into the model's workspace that a block's layers write their intermediates to.
template <class A>
struct BlockScratch {
  MatrixView<A> normed;  // (N, C)       a sub-layer's normalised input, where the norm runs alone
  MatrixView<A> qkv;     // (N, 3C)
  MatrixView<A> mixed;   // (N, C)       attention output, before the output projection
  MatrixView<A> hidden;  // (N, n_inner) the MLP's hidden activations
};

// One step's view of the sequences being extended, for the attention of one layer.
template <class A>
struct AttentionStep {
  StepSlices slices;
  KvLayerView<A> cache;
};

template <class L>
concept Layer = Backend<typename L::backend> && requires {
  typename L::weight_type;
};

template <class L>
using layer_activation_t = activation_t<typename L::backend, typename L::weight_type>;

// x -> out, row by row.
template <class L>
concept NormLayer = Layer<L> && requires(const L& l, MatrixView<const layer_activation_t<L>> x,
                                         MatrixView<layer_activation_t<L>> out) {
  l.forward(x, out);
};

// What a mixer reads: rows of the residual stream and the norm its first projection applies to
// them (ops/linear.hpp).
template <class L>
using mixer_input_t = ops::NormedRows<layer_activation_t<L>, typename L::weight_type>;

// The input a pre-norm block hands a mixer: x with `norm` still to apply, when the norm can say
// what it is (row_norm(), as LayerNorm and RmsNorm do), so that the backend may fuse it into the
// projection; otherwise the norm runs here, into `normed`, and the mixer reads that.
template <NormLayer Norm>
mixer_input_t<Norm> normalized(const Norm& norm, MatrixView<const layer_activation_t<Norm>> x,
                               MatrixView<layer_activation_t<Norm>> normed) {
  if constexpr (requires {
                  { norm.row_norm() } -> std::same_as<ops::RowNorm<typename Norm::weight_type>>;
                }) {
    return {x, norm.row_norm(), normed};
  } else {
    norm.forward(x, normed);
    return {normed, {}, normed};
  }
}

// Mixes information across positions, through the KV cache, and adds its result to the residual.
template <class L>
concept TokenMixer = Layer<L> && requires(const L& l, const mixer_input_t<L>& x,
                                          const AttentionStep<layer_activation_t<L>>& step,
                                          MatrixView<layer_activation_t<L>> residual,
                                          const BlockScratch<layer_activation_t<L>>& scratch) {
  l.forward(x, step, residual, scratch);
};

// Transforms each position on its own and adds its result to the residual.
template <class L>
concept ChannelMixer = Layer<L> &&
    requires(const L& l, const mixer_input_t<L>& x, MatrixView<layer_activation_t<L>> residual,
             const BlockScratch<layer_activation_t<L>>& scratch) {
  l.forward(x, residual, scratch);
};

// A whole block: loads itself from `h.<i>` and updates the residual stream in place. What a model
// repeats n_layer times (PreNormBlock, ParallelBlock).
template <class L>
concept DecoderBlock = Layer<L> &&
    requires(const L& l, const WeightLoader<typename L::backend, typename L::weight_type>& w,
             const std::string& prefix, const Gpt2Config& c, MatrixView<layer_activation_t<L>> x,
             const AttentionStep<layer_activation_t<L>>& step,
             const BlockScratch<layer_activation_t<L>>& scratch) {
  { L::load(w, prefix, c) } -> std::same_as<L>;
  l.forward(x, step, scratch);
};

template <class L, class... Ls>
concept SameBackendAndType = (std::same_as<typename L::backend, typename Ls::backend> && ...) &&
                             (std::same_as<typename L::weight_type, typename Ls::weight_type> &&
                              ...);

}  // namespace ctformer
