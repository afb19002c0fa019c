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
    gather(tokens, positions, wpe, out, [&](std::int32_t t, std::int64_t c) { return wte(c, t); });
  }

  // From an unpacked (V, C) table: the reference for the CUDA kernel's tests.
  template <class T>
  static void run(std::span<const std::int32_t> tokens,     // (N)
                  std::span<const std::int32_t> positions,  // (N)
                  MatrixView<const T> wte,                  // (V, C)
                  MatrixView<const T> wpe,                  // (P, C)
                  MatrixView<float> out) {                  // (N, C)
    gather(tokens, positions, wpe, out,
           [&](std::int32_t t, std::int64_t c) { return wte.row(t)[c]; });
  }

 private:
  // out[i][c] = token(tokens[i], c) + wpe[positions[i]][c].
  template <class T, class Token>
  static void gather(std::span<const std::int32_t> tokens, std::span<const std::int32_t> positions,
                     MatrixView<const T> wpe, MatrixView<float> out, Token token) {
    for (std::int64_t i = 0; i < out.rows; ++i) {
      const T* position = wpe.row(positions[i]);
      float* y = out.row(i);
      for (std::int64_t c = 0; c < out.cols; ++c)
        y[c] = static_cast<float>(token(tokens[i], c)) + static_cast<float>(position[c]);
    }
  }
};

}  // namespace ctformer::ops
