// RMSNorm with a learned scale and no shift: the norm of T5, LLaMA and most GPT-style models after
// GPT-2. A drop-in NormLayer: any block that takes a LayerNorm takes this.
#pragma once

#include <span>
#include <string>

#include "ctformer/backends/concepts.hpp"
#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/weight_loader.hpp"
#include "ctformer/ops/rms_norm.hpp"

namespace ctformer {

// The op this layer needs, which ComputesGpt2 does not ask for: a backend without an
// ops::RmsNorm<B> specialisation fails here, naming this concept.
template <class B, class T>
concept ComputesRmsNorm = Backend<B> &&
    requires(MatrixView<const activation_t<B, T>> x, std::span<const T> gamma,
             MatrixView<activation_t<B, T>> out) {
  ops::RmsNorm<B>::run(x, gamma, 1e-5f, out);
};

template <Backend B, class T>
requires ComputesRmsNorm<B, T>
class RmsNorm {
 public:
  using backend = B;
  using weight_type = T;
  using A = activation_t<B, T>;

  // Reads only `<prefix>.weight`, so it loads from a LayerNorm's tensors too (ignoring the bias);
  // epsilon is config.json's layer_norm_epsilon.
  static RmsNorm load(const WeightLoader<B, T>& w, const std::string& prefix, const Gpt2Config& c) {
    return RmsNorm(w.load(prefix + ".weight", {c.n_embd}), c.layer_norm_epsilon);
  }

  void forward(MatrixView<const A> x, MatrixView<A> out) const {  // (N, C) -> (N, C)
    ops::RmsNorm<B>::run(x, std::span<const T>(gamma_.data(), gamma_.size()), eps_, out);
  }

  // This norm, for a projection to apply to its input (ops::NormedRows): no beta.
  ops::RowNorm<T> row_norm() const { return {{gamma_.data(), gamma_.size()}, {}, eps_}; }

 private:
  using buffer = typename B::template buffer<T>;
  RmsNorm(buffer gamma, float eps) : gamma_(std::move(gamma)), eps_(eps) {}

  buffer gamma_;  // (C)
  float eps_;
};

}  // namespace ctformer
