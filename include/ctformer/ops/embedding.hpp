// out[i] = wte[tokens[i]] + wpe[positions[i]]: the token and position embeddings of GPT-2's input.
#pragma once

#include <cstdint>
#include <span>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/packed_matmul.hpp"

namespace ctformer::ops {

// Specialised per backend; ids and positions are already validated by the model.
template <class Backend>
struct Embedding;

template <>
struct Embedding<cpu> {
  // The token table is the tied LM head's packed weight (in = C, out = V): token t is its column t.
  template <class T>
  static void run(std::span<const std::int32_t> tokens,     // (N)
                  std::span<const std::int32_t> positions,  // (N)
                  const packed::PackedMatrix<T>& wte,       // (C, V), packed
                  MatrixView<const T> wpe,                  // (P, C)
                  MatrixView<float> out) {                  // (N, C)
    constexpr std::int64_t kPanel = packed::kPanel;
    gather(tokens, positions, wpe, out, kPanel,
           [&](std::int32_t t) { return wte.panel(t / kPanel) + t % kPanel; });
  }

  // From an unpacked (V, C) table: the reference for the CUDA kernel's tests.
  template <class T>
  static void run(std::span<const std::int32_t> tokens,     // (N)
                  std::span<const std::int32_t> positions,  // (N)
                  MatrixView<const T> wte,                  // (V, C)
                  MatrixView<const T> wpe,                  // (P, C)
                  MatrixView<float> out) {                  // (N, C)
    gather(tokens, positions, wpe, out, 1, [&](std::int32_t t) { return wte.row(t); });
  }

 private:
  // out[i][c] = token(tokens[i])[c * stride] + wpe[positions[i]][c].
  template <class T, class TokenStart>
  static void gather(std::span<const std::int32_t> tokens, std::span<const std::int32_t> positions,
                     MatrixView<const T> wpe, MatrixView<float> out, std::int64_t stride,
                     TokenStart token) {
    for (std::int64_t i = 0; i < out.rows; ++i) {
      const T* t = token(tokens[i]);
      const T* position = wpe.row(positions[i]);
      float* y = out.row(i);
      for (std::int64_t c = 0; c < out.cols; ++c)
        y[c] = static_cast<float>(t[c * stride]) + static_cast<float>(position[c]);
    }
  }
};

}  // namespace ctformer::ops
