// out = epilogue(x @ W + bias): GPT-2's projections, with the epilogues its blocks need fused in.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>

#include <Eigen/Core>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/matrix_view.hpp"

namespace ctformer::ops {

enum class Epilogue {
  bias,           // out = x W + b
  bias_gelu,      // out = gelu_tanh(x W + b)   (GPT-2's MLP up-projection)
  bias_residual,  // out += x W + b             (the projections that end each residual branch)
  none,           // out = x W                  (the tied LM head)
};

// GPT-2's "gelu_new": the tanh approximation of GELU, computed as transformers does in fp32.
inline float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

template <class Backend>
struct Linear;

template <>
struct Linear<cpu> {
  template <class T>
  static void run(MatrixView<const float> x,  // (N, K)
                  MatrixView<const T> w,      // (K, M) if in_out, (M, K) if out_in
                  WeightLayout layout,
                  std::span<const T> bias,  // (M), empty for Epilogue::none
                  Epilogue epilogue,
                  MatrixView<float> out) {  // (N, M)
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using WeightMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const RowMajor> X(x.data, x.rows, x.cols);
    const Eigen::Map<const WeightMatrix> W(w.data, w.rows, w.cols);
    Eigen::Map<RowMajor> Y(out.data, out.rows, out.cols);

    auto product = [&](auto&& dst, auto op) {
      // fp16/bf16 weights are widened to float for the product (accumulation stays in float).
      if constexpr (std::is_same_v<T, float>) {
        if (layout == WeightLayout::in_out) op(dst, X * W);
        else op(dst, X * W.transpose());
      } else {
        if (layout == WeightLayout::in_out) op(dst, X * W.template cast<float>());
        else op(dst, X * W.template cast<float>().transpose());
      }
    };
    if (epilogue == Epilogue::bias_residual) {
      product(Y, [](auto& dst, auto&& p) { dst.noalias() += p; });
    } else {
      product(Y, [](auto& dst, auto&& p) { dst.noalias() = p; });
    }
    if (epilogue == Epilogue::none) return;
    for (std::int64_t i = 0; i < out.rows; ++i) {
      float* y = out.row(i);
      for (std::int64_t j = 0; j < out.cols; ++j) {
        y[j] += static_cast<float>(bias[j]);
        if (epilogue == Epilogue::bias_gelu) y[j] = gelu_tanh(y[j]);
      }
    }
  }
};

}  // namespace ctformer::ops
