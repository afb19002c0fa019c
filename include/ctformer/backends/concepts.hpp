// What a backend must provide for a model to compose on it. A backend is a tag type; its ops are
// specialisations of the op templates in ctformer/ops/, one header per op. A missing op makes
// `ComputesGpt2<Backend, T>` false, and the model fails to compile with the name of the op.
//
// Memory: every span and view an op takes is in backend memory (device memory on CUDA), except the
// host-side summaries of StepSlices and Argmax's output ids, which are host memory.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "ctformer/cache/paged_kv_cache.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/attention.hpp"
#include "ctformer/ops/embedding.hpp"
#include "ctformer/ops/layer_norm.hpp"
#include "ctformer/ops/linear.hpp"
#include "ctformer/ops/rows.hpp"

namespace ctformer {

template <class B>
concept Backend = requires(std::span<const float> host, float* dst) {
  { B::name } -> std::convertible_to<std::string_view>;
  typename B::template buffer<float>;
  typename B::template activation<float>;
  { B::template upload<float>(host) } -> std::same_as<typename B::template buffer<float>>;
  B::template write<float>(host, dst);  // host -> backend memory
  // Runs a model's decode step: padded_batch(sequences) says how many rows to run it over, and
  // run(batch, addresses, launch) runs it (the CUDA backend replays it from a graph).
  typename B::DecodeGraphs;
};

template <class B, class T>
using activation_t = typename B::template activation<T>;

template <class B, class T>
concept ComputesGpt2 = Backend<B> &&
    requires(std::span<const std::int32_t> ids, MatrixView<const T> w, std::span<const T> v,
             MatrixView<const activation_t<B, T>> x, MatrixView<activation_t<B, T>> y,
             const StepSlices& slices, KvLayerView<activation_t<B, T>> cache,
             std::span<const std::int64_t> rows, std::span<std::int32_t> out_ids,
             typename B::template buffer<T> stored,
             const typename ops::Linear<B>::template Weight<T>& weight) {
  {
    ops::Linear<B>::prepare(std::move(stored), 1, 1, WeightLayout::in_out)
    } -> std::same_as<typename ops::Linear<B>::template Weight<T>>;
  ops::Embedding<B>::run(ids, ids, weight, w, y);
  ops::LayerNorm<B>::run(x, v, v, 1e-5f, y);
  ops::Linear<B>::run(x, weight, v, ops::Epilogue::bias, y);
  ops::Linear<B>::run(ops::NormedRows<activation_t<B, T>, T>{x, {v, v, 1e-5f}, y}, weight, v,
                      ops::Epilogue::bias, y);
  ops::PagedAttention<B>::run(x, slices, cache, std::int64_t{1}, 1.0f, y);
  ops::GatherRows<B>::run(x, rows, y);
  ops::Argmax<B>::run(x, out_ids);
};

}  // namespace ctformer
