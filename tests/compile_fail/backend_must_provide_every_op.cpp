// A backend that provides memory and every op but attention.
#include <span>
#include <string_view>
#include <vector>

#include "ctformer/models/gpt2.hpp"

struct partial_backend {
  static constexpr std::string_view name = "partial";
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
struct Embedding<partial_backend> : Embedding<cpu> {};
template <>
struct LayerNorm<partial_backend> : LayerNorm<cpu> {};
template <>
struct Linear<partial_backend> : Linear<cpu> {};
template <>
struct AppendKv<partial_backend> : AppendKv<cpu> {};
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
