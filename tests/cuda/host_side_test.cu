// The CUDA backend's logic that runs on the host, or can: checked here without a GPU, so this
// program never skips. How decode attention partitions a sequence's keys among its splits; the
// argmax order that the block reduction relies on (a total order, so any reduction tree gives
// argmax_row's answer); the batch buckets of the decode graphs; the sampling parameters sent to the
// device.
#define BOOST_TEST_MODULE cuda_host_side
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "ctformer/ctformer.hpp"

using namespace ctformer;

BOOST_AUTO_TEST_CASE(decode_splits_partition_every_sequence_into_whole_tiles) {
  // Every length a GPT-2 sequence can have, every split count the launch can choose: the non-empty
  // ranges must be consecutive whole tiles from key 0, end at the sequence's last key (the block
  // table has no entry past it), and stay within kMinKeysPerSplit-sized shares.
  constexpr std::int64_t kTile = 32;
  for (std::int64_t length = 1; length <= 1024; ++length)
    for (std::int64_t splits = 1; splits <= ops::PagedAttention<ctformer::cuda>::kMaxSplits;
         ++splits) {
      std::int64_t next = 0, non_empty = 0;
      for (std::int64_t split = 0; split < splits; ++split) {
        const auto [begin, end] =
            ops::cuda_kernels::split_keys(length, length - 1, splits, split, kTile);
        if (begin >= end) continue;
        ++non_empty;
        if (begin != next || begin % kTile != 0 || end > length) {
          BOOST_ERROR("length " << length << ", " << splits << " splits: split " << split
                                << " reads [" << begin << ", " << end << ") after key " << next);
          break;
        }
        next = end;
      }
      if (next != length)
        BOOST_ERROR("length " << length << ", " << splits << " splits: keys [" << next << ", "
                              << length << ") are read by no split");
      const std::int64_t most =
          (length + ops::cuda_kernels::kMinKeysPerSplit - 1) / ops::cuda_kernels::kMinKeysPerSplit;
      if (non_empty > std::min(splits, most))
        BOOST_ERROR("length " << length << ", " << splits << " splits: " << non_empty
                              << " splits have keys, more than " << std::min(splits, most));
    }
}

BOOST_AUTO_TEST_CASE(a_prefill_block_reads_every_key_up_to_its_last_query) {
  for (std::int64_t length = 1; length <= 1024; length += 7)
    for (std::int64_t last = 0; last < length; last += 5) {
      const auto [begin, end] = ops::cuda_kernels::split_keys(length, last, 1, 0, 32);
      BOOST_REQUIRE(begin == 0);
      BOOST_REQUIRE(end == last + 1);
    }
}

BOOST_AUTO_TEST_CASE(argmax_candidates_are_totally_ordered) {
  // Rows with ties and NaNs, reduced in random orders and random trees as a CUB block reduction
  // might: the winner is always argmax_row's.
  std::mt19937 rng(3);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int trial = 0; trial < 400; ++trial) {
    const int n = 1 + int(rng() % 300);
    std::vector<float> row(static_cast<std::size_t>(n));
    for (float& x : row) x = float(int(rng() % 9)) - 4.0f;  // many ties
    if (trial % 3 == 0) row[rng() % std::size_t(n)] = -std::numeric_limits<float>::infinity();
    if (trial % 4 == 1) row[rng() % std::size_t(n)] = row[rng() % std::size_t(n)] = nan;
    const auto want = ops::argmax_row(row.data(), n);
    std::vector<ops::cuda_kernels::ArgmaxCandidate> pool;
    for (int i = 0; i < n; ++i) pool.push_back({row[std::size_t(i)], i});
    std::shuffle(pool.begin(), pool.end(), rng);
    while (pool.size() > 1) {  // combine two random candidates, in a random argument order
      const std::size_t i = rng() % pool.size();
      std::swap(pool[i], pool.back());
      const auto a = pool.back();
      pool.pop_back();
      auto& b = pool[rng() % pool.size()];
      b = rng() % 2 ? ops::cuda_kernels::BetterCandidate{}(a, b)
                    : ops::cuda_kernels::BetterCandidate{}(b, a);
    }
    BOOST_TEST(pool[0].index == want, "trial " << trial);
  }
}

BOOST_AUTO_TEST_CASE(decode_graph_buckets) {
  ctformer::cuda::DecodeGraphs graphs;
  graphs.set_enabled(true);
  const std::int64_t want[][2] = {{1, 1},   {2, 2},     {3, 4},     {5, 8},     {8, 8},    {9, 16},
                                  {17, 24}, {256, 256}, {511, 512}, {512, 512}, {513, 513}};
  for (const auto& [sequences, padded] : want)
    BOOST_TEST(graphs.padded_batch(sequences) == padded, sequences);
  graphs.set_enabled(false);
  BOOST_TEST(graphs.padded_batch(3) == 3);
}

BOOST_AUTO_TEST_CASE(sampling_parameters_carry_distinct_history_only_when_penalised_and_biases) {
  const std::vector<std::int32_t> a = {7, 5, 6, 5}, b = {8, 9};
  const std::vector<ops::TokenBias> biases = {{3, 1.0f, 0.0f}, {4, 0.0f, 0.5f}};
  std::vector<ops::SamplingRow> rows(3);
  rows[0] = {0.7f, 40, 0.9f, 1.2f, 11, 3, a, 0.1f, {}};
  rows[1] = {0.0f, 0, 1.0f, 1.0f, 12, 4, b, 0.0f, biases};  // no penalty: its history is not sent
  rows[2] = {1.0f, 0, 1.0f, 1.5f, 13, 5, b, 0.0f, biases};
  std::vector<std::int32_t> history;
  std::vector<ops::TokenBias> all_biases;
  const auto params = ops::cuda_kernels::sample_params(rows, history, all_biases);
  // Each row's history tokens once (the kernel writes each once), sorted.
  BOOST_TEST(history == (std::vector<std::int32_t>{5, 6, 7, 8, 9}),
             boost::test_tools::per_element());
  BOOST_REQUIRE(params.size() == 3u);
  BOOST_TEST(params[0].history_begin == 0);
  BOOST_TEST(params[0].history_end == 3);
  BOOST_TEST(params[1].history_begin == params[1].history_end);
  BOOST_TEST(params[2].history_begin == 3);
  BOOST_TEST(params[2].history_end == 5);
  BOOST_TEST(all_biases.size() == 4u);
  BOOST_TEST(params[0].biases_begin == params[0].biases_end);
  BOOST_TEST(params[1].biases_begin == 0);
  BOOST_TEST(params[1].biases_end == 2);
  BOOST_TEST(params[2].biases_begin == 2);
  BOOST_TEST(params[2].biases_end == 4);
  BOOST_TEST(params[0].top_k == 40);
  BOOST_TEST(params[0].min_p == 0.1f);
  BOOST_TEST(params[0].uniform == uniform_float(11, 3));  // the CPU's draw
  BOOST_TEST(params[2].uniform == uniform_float(13, 5));
}
