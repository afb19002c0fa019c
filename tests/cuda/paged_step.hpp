// One step of attention over a paged KV cache, as the attention tests (on a GPU and emulated) give
// it: each sequence's blocks taken from a shuffled pool that also holds blocks no sequence owns,
// its cached positions filled with random values, and every other row of the cache NaN (the
// positions the step appends, the rest of each last block, the spare blocks), so that a kernel that
// reads a row it should not, or leaves unwritten a row it should append, fails its check.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "ctformer/ops/attention.hpp"
#include "cuda/precision.hpp"

namespace ctformer::test {

class PagedStep {
 public:
  std::int64_t C = 0, block_size = 0;
  std::int64_t N = 0, max_new_rows = 0;  // the step's rows, and the most of one sequence
  std::vector<std::vector<std::int32_t>> tables;
  std::vector<SequenceSlice> slices;  // their block tables point into `tables`
  std::vector<float> keys, values;    // (cache_rows(), C), rounded to T
  std::vector<float> qkv;             // (N, 3 C), rounded to T

  // past[i] positions cached and rows[i] new ones for sequence i.
  template <class T>
  static PagedStep create(const std::vector<std::int64_t>& past,
                          const std::vector<std::int64_t>& rows, std::int64_t C,
                          std::int64_t block_size, std::mt19937& rng, float qkv_scale = 1.0f) {
    PagedStep s;
    s.C = C;
    s.block_size = block_size;
    s.fill<T>(past, rows, rng, qkv_scale);
    return s;
  }

  PagedStep(PagedStep&&) = default;
  PagedStep(const PagedStep&) = delete;  // `slices` points into `tables`

  std::int64_t cache_rows() const { return std::int64_t(keys.size()) / C; }
  StepSlices step() const { return {slices, max_new_rows}; }

 private:
  static constexpr std::int64_t kSpareBlocks = 2;

  PagedStep() = default;

  template <class T>
  void fill(const std::vector<std::int64_t>& past, const std::vector<std::int64_t>& rows,
            std::mt19937& rng, float qkv_scale) {
    std::int64_t blocks = kSpareBlocks;
    for (std::size_t i = 0; i < past.size(); ++i)
      blocks += (past[i] + rows[i] + block_size - 1) / block_size;
    std::vector<std::int32_t> pool(std::size_t(blocks), 0);
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), rng);
    keys.assign(std::size_t(blocks * block_size * C), std::numeric_limits<float>::quiet_NaN());
    values = keys;
    const auto random_keys = random_values<T>(keys.size(), rng);
    const auto random_values_ = random_values<T>(values.size(), rng);
    auto next = pool.begin();
    for (std::size_t i = 0; i < past.size(); ++i) {
      const auto length = std::ptrdiff_t((past[i] + rows[i] + block_size - 1) / block_size);
      tables.emplace_back(next, next + length);
      next += length;
      slices.push_back({N, rows[i], past[i], nullptr});
      N += rows[i];
      max_new_rows = std::max(max_new_rows, rows[i]);
    }
    for (std::size_t i = 0; i < slices.size(); ++i) {
      slices[i].block_table = tables[i].data();
      for (std::int64_t t = 0; t < slices[i].past_length; ++t) {
        const std::int64_t r = ops::cache_row(slices[i], t, block_size);
        std::copy_n(random_keys.begin() + r * C, C, keys.begin() + r * C);
        std::copy_n(random_values_.begin() + r * C, C, values.begin() + r * C);
      }
    }
    qkv = random_values<T>(std::size_t(N * 3 * C), rng, qkv_scale);
  }
};

// Whether two caches hold the same values, NaN where the other has NaN.
inline bool same_cache(const std::vector<float>& got, const std::vector<float>& want) {
  return std::ranges::equal(
      got, want, [](float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); });
}

}  // namespace ctformer::test
