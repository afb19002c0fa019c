// out = (x - mean(x)) / sqrt(var(x) + eps) * gamma + beta, over each row.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/core/parallel.hpp"

namespace ctformer::ops {

template <class Backend>
struct LayerNorm;

template <>
struct LayerNorm<cpu> {
  template <class T>
  static void run(MatrixView<const float> x,  // (N, C)
                  std::span<const T> gamma,   // (C)
                  std::span<const T> beta,    // (C)
                  float eps,
                  MatrixView<float> out) {  // (N, C); may alias x
    const std::int64_t C = x.cols;
    CTFORMER_PARALLEL_FOR
    for (std::int64_t i = 0; i < x.rows; ++i) {
      const float* xi = x.row(i);
      // Two passes in double: the reference should not be the least accurate implementation.
      double sum = 0;
      for (std::int64_t c = 0; c < C; ++c) sum += xi[c];
      const double mean = sum / double(C);
      double sq = 0;
      for (std::int64_t c = 0; c < C; ++c) sq += (xi[c] - mean) * (xi[c] - mean);
      const float rstd = float(1.0 / std::sqrt(sq / double(C) + double(eps)));
      float* yi = out.row(i);
      for (std::int64_t c = 0; c < C; ++c)
        yi[c] = (xi[c] - float(mean)) * rstd * static_cast<float>(gamma[c]) +
                static_cast<float>(beta[c]);
    }
  }
};

}  // namespace ctformer::ops
