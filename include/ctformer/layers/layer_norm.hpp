// LayerNorm with a learned scale and shift (GPT-2's ln_1, ln_2, ln_f).
#pragma once

#include <span>
#include <string>

#include "ctformer/backends/concepts.hpp"
#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/weight_loader.hpp"

namespace ctformer {

template <Backend B, class T>
class LayerNorm {
 public:
  using backend = B;
  using weight_type = T;
  using A = activation_t<B, T>;

  static LayerNorm load(const WeightLoader<B, T>& w, const std::string& prefix,
                        const Gpt2Config& c) {
    return LayerNorm(w.load(prefix + ".weight", {c.n_embd}), w.load(prefix + ".bias", {c.n_embd}),
                     c.layer_norm_epsilon);
  }

  void forward(MatrixView<const A> x, MatrixView<A> out) const {  // (N, C) -> (N, C)
    ops::LayerNorm<B>::run(x, std::span<const T>(gamma_.data(), gamma_.size()),
                           std::span<const T>(beta_.data(), beta_.size()), eps_, out);
  }

  // This norm, for a projection to apply to its input (ops::NormedRows).
  ops::RowNorm<T> row_norm() const {
    return {{gamma_.data(), gamma_.size()}, {beta_.data(), beta_.size()}, eps_};
  }

 private:
  using buffer = typename B::template buffer<T>;
  LayerNorm(buffer gamma, buffer beta, float eps)
      : gamma_(std::move(gamma)), beta_(std::move(beta)), eps_(eps) {}

  buffer gamma_;  // (C)
  buffer beta_;   // (C)
  float eps_;
};

}  // namespace ctformer
