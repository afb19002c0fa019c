// Row gather: out[i] = x[rows[i]] (the last token of each sequence, before the LM head).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/core/parallel.hpp"

namespace ctformer::ops {

template <class Backend>
struct GatherRows;

template <>
struct GatherRows<cpu> {
  static void run(MatrixView<const float> x,           // (N, C)
                  std::span<const std::int64_t> rows,  // (M)
                  MatrixView<float> out) {             // (M, C)
    for (std::size_t i = 0; i < rows.size(); ++i)
      std::copy_n(x.row(rows[i]), x.cols, out.row(static_cast<std::int64_t>(i)));
  }
};

// ids[i] = argmax of logits row i; the first index wins a tie, as torch.argmax does.
template <class Backend>
struct Argmax;

template <>
struct Argmax<cpu> {
  static void run(MatrixView<const float> logits,  // (M, V)
                  std::span<std::int32_t> ids) {   // (M), host memory
    CTFORMER_PARALLEL_FOR
    for (std::int64_t i = 0; i < logits.rows; ++i) {
      const float* row = logits.row(i);
      ids[i] = static_cast<std::int32_t>(std::max_element(row, row + logits.cols) - row);
    }
  }
};

}  // namespace ctformer::ops
