// out = epilogue(x @ W + bias): GPT-2's projections, with the epilogues its blocks need fused in.
//
// Each backend keeps weights in its own format, `Linear<B>::Weight<T>`, made once at load by
// `Linear<B>::prepare` from the (rows, cols) matrix as stored in the checkpoint: packed panels on
// the CPU (ops/packed_matmul.hpp), the checkpoint's layout in device memory on CUDA.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/layer_norm.hpp"
#include "ctformer/ops/packed_matmul.hpp"
#include "ctformer/ops/rms_norm.hpp"

namespace ctformer::ops {

// A row-wise norm as a projection applies it to its input: LayerNorm with gamma and beta, RMSNorm
// with gamma alone (beta empty).
template <class T>
struct RowNorm {
  std::span<const T> gamma;  // (C)
  std::span<const T> beta;   // (C), or empty
  float eps = 1e-5f;
};

// The input of a projection that begins a pre-norm branch: the rows x and the norm to apply to
// them first, so that a backend may fuse the two (CUDA does at small batch: the GEMV normalises x
// as it reads it). Where the norm runs on its own it writes `normed` (the shape of x; it may be x
// itself) and the product reads that; where it is fused, `normed` is left alone. A norm with no
// gamma is none: x is used as it is.
template <class A, class T>
struct NormedRows {
  // A constructor, not an aggregate: a braced (data, rows, cols) must not be taken for one by
  // brace elision, which would make every Linear::run({...}, ...) ambiguous.
  NormedRows(MatrixView<const A> x_, RowNorm<T> norm_, MatrixView<A> normed_)
      : x(x_), norm(norm_), normed(normed_) {}

  MatrixView<const A> x;  // (N, C)
  RowNorm<T> norm;
  MatrixView<A> normed;  // (N, C)
};

// Throws InputError unless the norm's parameters and `normed` have the shape of the rows.
template <class A, class T>
void check_norm_shapes(const NormedRows<A, T>& in) {
  const auto C = std::size_t(in.x.cols);
  if (in.norm.gamma.empty() && in.norm.beta.empty()) return;
  if (in.norm.gamma.size() == C && (in.norm.beta.empty() || in.norm.beta.size() == C) &&
      in.normed.rows == in.x.rows && in.normed.cols == in.x.cols)
    return;
  throw InputError("Linear: a norm with gamma of " + std::to_string(in.norm.gamma.size()) +
                   " and beta of " + std::to_string(in.norm.beta.size()) + " over x (" +
                   std::to_string(in.x.rows) + " x " + std::to_string(in.x.cols) + ") into (" +
                   std::to_string(in.normed.rows) + " x " + std::to_string(in.normed.cols) +
                   "): the shapes do not agree");
}

// Throws InputError unless x (N, K), a weight of K inputs and M outputs, the bias and out (N, M)
// agree: a wrong composition of layers is named here rather than read out of bounds (which on a
// GPU would end the process's CUDA context).
template <class X, class Y>
void check_linear_shapes(MatrixView<X> x, std::int64_t in, std::int64_t out_features,
                         std::size_t bias, Epilogue epilogue, MatrixView<Y> out) {
  const bool needs_bias = epilogue != Epilogue::none;
  if (x.cols == in && out.cols == out_features && x.rows == out.rows &&
      (!needs_bias || bias == std::size_t(out_features)))
    return;
  throw InputError("Linear: x (" + std::to_string(x.rows) + " x " + std::to_string(x.cols) +
                   ") by a weight of " + std::to_string(in) + " inputs and " +
                   std::to_string(out_features) + " outputs into out (" + std::to_string(out.rows) +
                   " x " + std::to_string(out.cols) + ")" +
                   (needs_bias ? " with a bias of " + std::to_string(bias) : std::string()) +
                   ": the shapes do not agree");
}

// The same, for a weight as stored: (K, M) if in_out, (M, K) if out_in.
template <class X, class W, class Y>
void check_linear_shapes(MatrixView<X> x, MatrixView<W> w, WeightLayout layout, std::size_t bias,
                         Epilogue epilogue, MatrixView<Y> out) {
  const bool in_out = layout == WeightLayout::in_out;
  check_linear_shapes(x, in_out ? w.rows : w.cols, in_out ? w.cols : w.rows, bias, epilogue, out);
}

template <class Backend>
struct Linear;

template <>
struct Linear<cpu> {
  template <class T>
  using Weight = packed::PackedMatrix<T>;

  // `w` is (rows, cols) as stored: (in, out) if in_out, (out, in) if out_in. Packing frees it.
  template <class T>
  static Weight<T> prepare(std::vector<T> w, std::int64_t rows, std::int64_t cols,
                           WeightLayout layout) {
    return Weight<T>(MatrixView<const T>{w.data(), rows, cols}, layout);
  }

  template <class T>
  static void run(MatrixView<const float> x,  // (N, in)
                  const Weight<T>& w,
                  std::span<const std::type_identity_t<T>> bias,  // (out), empty for none
                  Epilogue epilogue,
                  MatrixView<float> out) {  // (N, out)
    check_linear_shapes(x, w.in(), w.out(), bias.size(), epilogue, out);
    packed::matmul<T>(x, w, bias, epilogue, out);
  }

  // out = epilogue(norm(x) W + bias): the norm into in.normed, then the product.
  template <class T>
  static void run(const NormedRows<float, std::type_identity_t<T>>& in, const Weight<T>& w,
                  std::span<const std::type_identity_t<T>> bias, Epilogue epilogue,
                  MatrixView<float> out) {
    check_norm_shapes(in);
    check_linear_shapes(in.x, w.in(), w.out(), bias.size(), epilogue, out);  // before normed
    if (in.norm.gamma.empty()) return run<T>(in.x, w, bias, epilogue, out);
    if (in.norm.beta.empty())
      RmsNorm<cpu>::run(in.x, in.norm.gamma, in.norm.eps, in.normed);
    else
      LayerNorm<cpu>::run(in.x, in.norm.gamma, in.norm.beta, in.norm.eps, in.normed);
    run<T>(MatrixView<const float>(in.normed), w, bias, epilogue, out);
  }

  // The same product by Eigen on an unpacked weight: the reference that the packed kernel and the
  // CUDA GEMMs are tested against.
  template <class T>
  static void run(MatrixView<const float> x,  // (N, K)
                  MatrixView<const T> w,      // (K, M) if in_out, (M, K) if out_in
                  WeightLayout layout,
                  std::span<const T> bias,  // (M), empty for Epilogue::none
                  Epilogue epilogue,
                  MatrixView<float> out) {  // (N, M)
    check_linear_shapes(x, w, layout, bias.size(), epilogue, out);
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
