// out = x / sqrt(mean(x^2) + eps) * gamma, over each row: RMSNorm (Zhang & Sennrich 2019; T5,
// LLaMA), LayerNorm without the mean subtraction and the shift. GPT-2 does not use it; the custom
// variant (examples/custom_variant.cpp, docs/composing-variants.md) does. The CUDA version is in
// rms_norm.cuh.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/matrix_view.hpp"

namespace ctformer::ops {

template <class Backend>
struct RmsNorm;

template <>
struct RmsNorm<cpu> {
  template <class T>
  static void run(MatrixView<const float> x,  // (N, C)
                  std::span<const T> gamma,   // (C)
                  float eps,
                  MatrixView<float> out) {  // (N, C); may alias x
    const std::int64_t C = x.cols;
    for (std::int64_t i = 0; i < x.rows; ++i) {
      const float* xi = x.row(i);
      double sq = 0;  // in double, as LayerNorm<cpu>: the reference should be the accurate one
      for (std::int64_t c = 0; c < C; ++c) sq += double(xi[c]) * double(xi[c]);
      const float rrms = float(1.0 / std::sqrt(sq / double(C) + double(eps)));
      float* yi = out.row(i);
      for (std::int64_t c = 0; c < C; ++c) yi[c] = xi[c] * rrms * static_cast<float>(gamma[c]);
    }
  }
};

}  // namespace ctformer::ops
