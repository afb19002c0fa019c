// A backend with every op GPT-2 needs but not RmsNorm: GPT-2 composes on it, the RMSNorm variant
// does not, and the diagnostic names the missing op's concept.
#include <span>
#include <string_view>
#include <vector>

#include "ctformer/layers/parallel_block.hpp"
#include "ctformer/layers/rms_norm.hpp"
#include "ctformer/models/gpt2.hpp"

struct gpt2_only_backend {
  static constexpr std::string_view name = "gpt2-only";
  template <class T>
  using buffer = std::vector<T>;
  template <class T>
  using activation = float;
  template <class T>
  static buffer<T> upload(std::span<const T> host) {
    return buffer<T>(host.begin(), host.end());
  }
  template <class T>
  static void write(std::span<const T> host, T* dst) {
    for (const T& x : host) *dst++ = x;
  }
};

namespace ctformer::ops {
template <>
struct Embedding<gpt2_only_backend> : Embedding<cpu> {};
template <>
struct LayerNorm<gpt2_only_backend> : LayerNorm<cpu> {};
template <>
struct Linear<gpt2_only_backend> : Linear<cpu> {};
template <>
struct AppendKv<gpt2_only_backend> : AppendKv<cpu> {};
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
