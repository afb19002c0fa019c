// out = epilogue(x @ W + bias): GPT-2's projections, with the epilogues its blocks need fused in.
#pragma once

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
        if (layout == WeightLayout::in_out)
          op(dst, X * W);
        else
          op(dst, X * W.transpose());
      } else {
        if (layout == WeightLayout::in_out)
          op(dst, X * W.template cast<float>());
        else
          op(dst, X * W.template cast<float>().transpose());
      }
    };
    if (epilogue == Epilogue::bias_residual) {
      product(Y, [](auto& dst, auto&& p) { dst.noalias() += p; });
    } else {
      product(Y, [](auto& dst, auto&& p) { dst.noalias() = p; });
    }
    if (epilogue == Epilogue::none) return;
    const Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> b(bias.data(), out.cols);
    Y.rowwise() += b.template cast<float>();
    if (epilogue == Epilogue::bias_gelu) {
      // GPT-2's "gelu_new", the tanh approximation of GELU, as transformers computes it in fp32.
      // Vectorised: Eigen's float tanh is within a few ulp of std::tanh, whose scalar libm call
      // cost several percent of a decode step.
      constexpr float kSqrt2OverPi = 0.7978845608028654f;
      auto y = Y.array();
      y = 0.5f * y * (1.0f + (kSqrt2OverPi * (y + 0.044715f * y * y * y)).tanh());
    }
  }
};

}  // namespace ctformer::ops
