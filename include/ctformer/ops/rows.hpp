// Row gather: out[i] = x[rows[i]] (the last token of each sequence, before the LM head).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/error.hpp"
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

// The index of the largest of row[0, n), as torch.argmax picks it: the first one wins a tie, and a
// NaN counts as larger than any number (so broken logits give the first NaN, on every backend,
// rather than an order-dependent token). n < 2^31.
inline std::int64_t argmax_row(const float* row, std::int64_t n) {
  // 16 independent lanes (value, first index, saw a NaN) that the compiler turns into vector
  // compares and blends: a one-pass scalar loop took 3% of the seed workload's CPU throughput
  // (examples/seed_workload.cpp at batch 64), this loop none.
  constexpr int kLanes = 16;
  float value[kLanes];
  std::int32_t index[kLanes];
  bool nan[kLanes] = {};
  for (int j = 0; j < kLanes; ++j) value[j] = -INFINITY, index[j] = std::int32_t(n);
  const std::int64_t body = n / kLanes * kLanes;
  for (std::int64_t v = 0; v < body; v += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float x = row[v + j];
      nan[j] |= x != x;
      if (x > value[j]) value[j] = x, index[j] = std::int32_t(v + j);
    }
  bool any_nan = false;
  for (int j = 0; j < kLanes; ++j) any_nan |= nan[j];
  for (std::int64_t v = body; v < n; ++v) any_nan |= std::isnan(row[v]);
  if (any_nan) return std::find_if(row, row + n, [](float x) { return std::isnan(x); }) - row;
  float best = -INFINITY;
  std::int64_t at = n;
  for (int j = 0; j < kLanes; ++j)
    if (value[j] > best || (value[j] == best && index[j] < at)) best = value[j], at = index[j];
  for (std::int64_t v = body; v < n; ++v)  // after every lane's index: strictly larger only
    if (row[v] > best) best = row[v], at = v;
  return at == n ? 0 : at;  // a row of -inf: its first element
}

// Throws InputError unless `ids` has one entry per row of logits.
inline void check_one_id_per_row(const char* op, std::int64_t rows, std::size_t ids) {
  if (ids != std::size_t(rows))
    throw InputError(std::string(op) + ": " + std::to_string(ids) + " ids for " +
                     std::to_string(rows) + " rows of logits (expected one per row)");
}

// ids[i] = argmax_row of logits row i.
template <class Backend>
struct Argmax;

template <>
struct Argmax<cpu> {
  static void run(MatrixView<const float> logits,  // (M, V)
                  std::span<std::int32_t> ids) {   // (M), host memory
    check_one_id_per_row("Argmax", logits.rows, ids.size());
    CTFORMER_PARALLEL_FOR
    for (std::int64_t i = 0; i < logits.rows; ++i) {
      ids[i] = static_cast<std::int32_t>(argmax_row(logits.row(i), logits.cols));
    }
  }
};

}  // namespace ctformer::ops
