// A block whose layers store weights in different types.
#include "ctformer/layers/attention.hpp"
#include "ctformer/layers/block.hpp"
#include "ctformer/layers/layer_norm.hpp"
#include "ctformer/layers/mlp.hpp"

using namespace ctformer;
#ifdef CTFORMER_BREAK
using Feedforward = Mlp<cpu, half>;
#else
using Feedforward = Mlp<cpu, float>;
#endif
using Block = PreNormBlock<LayerNorm<cpu, float>, CausalSelfAttention<cpu, float>, Feedforward>;
static_assert(sizeof(Block) > 0);
