// A backend with every op GPT-2 needs but not RmsNorm: GPT-2 composes on it, the RMSNorm variant
// does not, and the diagnostic names the missing op's concept.
#include <string_view>

#include "ctformer/layers/parallel_block.hpp"
#include "ctformer/layers/rms_norm.hpp"
#include "ctformer/models/gpt2.hpp"

// Memory and buffers as the CPU's (inherited); ops only where specialised below.
struct gpt2_only_backend : ctformer::cpu {
  static constexpr std::string_view name = "gpt2-only";
};

namespace ctformer::ops {
template <>
struct Embedding<gpt2_only_backend> : Embedding<cpu> {};
template <>
struct LayerNorm<gpt2_only_backend> : LayerNorm<cpu> {};
template <>
struct Linear<gpt2_only_backend> : Linear<cpu> {};
template <>
struct PagedAttention<gpt2_only_backend> : PagedAttention<cpu> {};
template <>
struct GatherRows<gpt2_only_backend> : GatherRows<cpu> {};
template <>
struct Argmax<gpt2_only_backend> : Argmax<cpu> {};
#ifndef CTFORMER_BREAK
template <>
struct RmsNorm<gpt2_only_backend> : RmsNorm<cpu> {};
#endif
}  // namespace ctformer::ops

using namespace ctformer;
using B = gpt2_only_backend;
static_assert(sizeof(GPT2<B, float>) > 0);
using Block = ParallelBlock<RmsNorm<B, float>, CausalSelfAttention<B, float>, Mlp<B, float>>;
static_assert(sizeof(DecoderModel<B, float, Block, RmsNorm<B, float>>) > 0);
