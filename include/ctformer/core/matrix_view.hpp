// Non-owning views of dense row-major matrices, on whichever device holds the memory.
#pragma once

#include <cstdint>
#include <type_traits>

namespace ctformer {

// rows x cols, row-major, rows packed (row r starts at data + r * cols).
template <class T>
struct MatrixView {
  T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;

  T* row(std::int64_t r) const { return data + r * cols; }
  std::int64_t size() const { return rows * cols; }
  MatrixView first_rows(std::int64_t n) const { return {data, n, cols}; }
  template <class U = T>
  requires(!std::is_const_v<U>) operator MatrixView<const U>() const { return {data, rows, cols}; }
};

// How a weight matrix is stored. GPT-2's Conv1D keeps [in, out]; nn.Linear and the tied LM head
// (the token embedding) keep [out, in].
enum class WeightLayout { in_out, out_in };

}  // namespace ctformer
