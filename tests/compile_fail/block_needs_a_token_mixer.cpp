// A block whose attention slot holds an MLP: an MLP is a ChannelMixer, not a TokenMixer.
#include "ctformer/layers/attention.hpp"
#include "ctformer/layers/block.hpp"
#include "ctformer/layers/layer_norm.hpp"
#include "ctformer/layers/mlp.hpp"

using namespace ctformer;
#ifdef CTFORMER_BREAK
using Attention = Mlp<cpu, float>;
#else
using Attention = CausalSelfAttention<cpu, float>;
#endif
using Block = PreNormBlock<LayerNorm<cpu, float>, Attention, Mlp<cpu, float>>;
static_assert(sizeof(Block) > 0);
