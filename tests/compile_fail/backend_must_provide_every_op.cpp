// A backend that provides memory and every op but attention.
#include <string_view>

#include "ctformer/models/gpt2.hpp"

// Memory and buffers as the CPU's (inherited); ops only where specialised below.
struct partial_backend : ctformer::cpu {
  static constexpr std::string_view name = "partial";
};

namespace ctformer::ops {
template <>
struct Embedding<partial_backend> : Embedding<cpu> {};
template <>
struct LayerNorm<partial_backend> : LayerNorm<cpu> {};
template <>
struct Linear<partial_backend> : Linear<cpu> {};
template <>
struct GatherRows<partial_backend> : GatherRows<cpu> {};
template <>
struct Argmax<partial_backend> : Argmax<cpu> {};
#ifndef CTFORMER_BREAK
template <>
struct PagedAttention<partial_backend> : PagedAttention<cpu> {};
#endif
}  // namespace ctformer::ops

static_assert(sizeof(ctformer::GPT2<partial_backend, float>) > 0);
