// The sampling op against the distribution it should draw from (chi-square tests on a tiny model's
// logits) and against transformers' definitions of top-k, top-p and the repetition penalty.
#define BOOST_TEST_MODULE sampling
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "ctformer/ctformer.hpp"
#include "ctformer/ops/sampling.hpp"
#include "support/test_support.hpp"

using namespace ctformer;

namespace {

// Last-position logits of the gpt2-h16 fixture for a short prompt: a realistic distribution.
std::vector<float> model_logits() {
  auto model = GPT2<cpu, float>::from_directory(test::data_dir() / "models" / "gpt2-h16");
  auto cache = model.make_cache(16);
  const std::vector<std::int32_t> prompt = {11, 22, 33};
  const SequenceStep step{cache.add_sequence(), prompt};
  const auto logits = model.forward({&step, 1}, cache);
  return {logits.data, logits.data + logits.cols};
}

// The distribution transformers samples from: softmax(logits / T), restricted to the top k, then to
// the smallest set of most likely tokens whose probability reaches top_p, renormalised.
std::vector<double> expected_distribution(const std::vector<float>& logits, float temperature,
                                          int top_k, float top_p, float min_p = 0.0f) {
  const std::size_t V = logits.size();
  std::vector<std::size_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return logits[a] > logits[b]; });
  const std::size_t k = top_k > 0 ? std::size_t(top_k) : V;
  std::vector<double> p(V, 0.0);
  double total = 0;
  for (std::size_t j = 0; j < k; ++j)
    total += p[order[j]] = std::exp((double(logits[order[j]]) - logits[order[0]]) / temperature);
  double cumulative = 0;
  std::size_t kept = k;
  for (std::size_t j = 0; j < k; ++j) {
    cumulative += p[order[j]] / total;
    if (cumulative >= top_p) {
      kept = j + 1;
      break;
    }
  }
  for (std::size_t j = kept; j < V; ++j) p[order[j]] = 0;
  // min-p (transformers applies it last): tokens less than min_p times as likely as the first.
  for (std::size_t j = 1; j < kept; ++j)
    if (p[order[j]] < min_p * p[order[0]]) p[order[j]] = 0;
  const double kept_total = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& x : p) x /= kept_total;
  return p;
}

// Pearson's chi-square of `counts` against `p`, bins with expected count < 5 pooled; returns the
// statistic and its degrees of freedom. Fails the test if a token of probability 0 was drawn.
std::pair<double, int> chi_square(const std::vector<int>& counts, const std::vector<double>& p,
                                  int n) {
  double stat = 0, pooled_expected = 0;
  int bins = 0, pooled_observed = 0;
  for (std::size_t t = 0; t < p.size(); ++t) {
    if (p[t] == 0) {
      BOOST_TEST(counts[t] == 0, "token " << t << " is outside the kept set but was drawn");
      continue;
    }
    const double e = p[t] * n;
    if (e < 5) {
      pooled_expected += e;
      pooled_observed += counts[t];
      continue;
    }
    stat += (counts[t] - e) * (counts[t] - e) / e;
    ++bins;
  }
  if (pooled_expected > 0) {
    stat +=
        (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) / pooled_expected;
    ++bins;
  }
  return {stat, bins - 1};
}

// The chi-square distribution's 0.999 quantile (Wilson-Hilferty): a correct sampler exceeds it
// once in a thousand seeds; the seeds below are fixed, so the test is deterministic.
double chi_square_critical(int df) {
  const double z = 3.0902, a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

void check_sampler(float temperature, int top_k, float top_p, float min_p = 0.0f,
                   std::span<const ops::TokenBias> biases = {}) {
  const auto logits = model_logits();
  auto adjusted = logits;
  for (const ops::TokenBias& b : biases) adjusted[std::size_t(b.token)] += b.bias - b.penalty;
  const auto p = expected_distribution(adjusted, temperature, top_k, top_p, min_p);
  const int n = 40000;
  std::vector<int> counts(logits.size(), 0);
  std::vector<ops::SamplingRow> rows(1);
  rows[0] = {temperature, top_k, top_p, 1.0f, 1234, 0, {}, min_p, biases};
  std::int32_t id = -1;
  const MatrixView<const float> view{logits.data(), 1, std::int64_t(logits.size())};
  for (int i = 0; i < n; ++i) {
    rows[0].draw = std::uint64_t(i);
    ops::Sample<cpu>::run(view, rows, {&id, 1});
    ++counts[std::size_t(id)];
  }
  const auto [stat, df] = chi_square(counts, p, n);
  BOOST_TEST_MESSAGE("T=" << temperature << " top_k=" << top_k << " top_p=" << top_p
                          << " min_p=" << min_p << ": chi-square " << stat << " with " << df
                          << " degrees of freedom");
  BOOST_TEST(df > 0);
  BOOST_TEST(stat < chi_square_critical(df), "chi-square " << stat << ", df " << df);
}

}  // namespace

BOOST_AUTO_TEST_CASE(plain_temperature_sampling_follows_the_softmax) {
  check_sampler(1.3f, 0, 1.0f);
}
BOOST_AUTO_TEST_CASE(top_k_sampling_follows_the_renormalised_softmax) {
  check_sampler(1.0f, 12, 1.0f);
}
BOOST_AUTO_TEST_CASE(top_p_sampling_follows_the_renormalised_softmax) {
  check_sampler(0.8f, 0, 0.7f);
}
BOOST_AUTO_TEST_CASE(top_k_and_top_p_together) {
  check_sampler(1.1f, 30, 0.9f);
}

BOOST_AUTO_TEST_CASE(min_p_sampling_keeps_the_tokens_near_the_most_likely) {
  check_sampler(1.0f, 0, 1.0f, 0.05f);
}
BOOST_AUTO_TEST_CASE(min_p_after_top_k_and_top_p) {
  check_sampler(1.4f, 40, 0.95f, 0.1f);
}
BOOST_AUTO_TEST_CASE(biases_bans_and_penalties_move_the_distribution) {
  // The most likely token banned, one raised, one penalised.
  const auto logits = model_logits();
  const auto top = std::int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const std::int32_t V = std::int32_t(logits.size());
  const std::vector<ops::TokenBias> biases = {
      {top, -INFINITY, 0.0f}, {(top + 1) % V, 1.5f, 0.0f}, {(top + 2) % V, 0.0f, 0.7f}};
  check_sampler(1.0f, 0, 1.0f, 0.0f, biases);
  check_sampler(0.7f, 20, 0.9f, 0.02f, biases);
}

BOOST_AUTO_TEST_CASE(overflowing_and_nan_scores_tie_as_the_most_likely) {
  // A bias near the largest float over temperature 0.5 overflows to infinity, and an overflowed
  // model gives NaN logits: those tokens are drawn, about equally, never another one.
  auto drawn_only = [](const std::vector<float>& logits, std::span<const ops::TokenBias> biases,
                       std::int32_t a, std::int32_t b) {
    std::vector<ops::SamplingRow> rows = {{0.5f, 0, 0.9f, 1.0f, 7, 0, {}, 0.0f, {}}};
    rows[0].biases = biases;
    const int n = 2000;
    int first = 0;
    for (int i = 0; i < n; ++i) {
      rows[0].draw = std::uint64_t(i);
      std::int32_t id = -1;
      ops::Sample<cpu>::run({logits.data(), 1, std::int64_t(logits.size())}, rows, {&id, 1});
      BOOST_TEST_REQUIRE((id == a || id == b), "drew token " << id);
      first += id == a;
    }
    BOOST_TEST(std::abs(first - n / 2) < 150, first << " of " << n << " draws were token " << a);
  };
  const auto logits = model_logits();
  const std::vector<ops::TokenBias> huge = {{3, 3e38f, 0.0f}, {9, 3e38f, 0.0f}};
  drawn_only(logits, huge, 3, 9);
  auto with_nan = logits;
  with_nan[4] = with_nan[11] = std::numeric_limits<float>::quiet_NaN();
  drawn_only(with_nan, {}, 4, 11);
}

BOOST_AUTO_TEST_CASE(a_wrong_distribution_is_detected) {
  // The test's power: samples at T = 1.3 judged against T = 1.0 must fail the bound.
  const auto logits = model_logits();
  const auto p = expected_distribution(logits, 1.0f, 0, 1.0f);
  const int n = 40000;
  std::vector<int> counts(logits.size(), 0);
  std::vector<ops::SamplingRow> rows = {{1.3f, 0, 1.0f, 1.0f, 99, 0, {}, 0.0f, {}}};
  std::int32_t id = -1;
  for (int i = 0; i < n; ++i) {
    rows[0].draw = std::uint64_t(i);
    ops::Sample<cpu>::run({logits.data(), 1, std::int64_t(logits.size())}, rows, {&id, 1});
    ++counts[std::size_t(id)];
  }
  const auto [stat, df] = chi_square(counts, p, n);
  BOOST_TEST(stat > chi_square_critical(df));
}

BOOST_AUTO_TEST_CASE(repetition_penalty_is_transformers_rule) {
  // Scores of tokens in the history: positive ones divided by the penalty, negative multiplied;
  // each token once however often it occurs. Greedy then picks from the penalised scores.
  const std::vector<float> logits = {2.0f, 1.9f, -0.5f, -0.6f};
  const std::vector<std::int32_t> history = {0, 0, 3};
  std::vector<ops::SamplingRow> rows = {{0.0f, 0, 1.0f, 2.0f, 0, 0, history, 0.0f, {}}};
  std::int32_t id = -1;
  ops::Sample<cpu>::run({logits.data(), 1, 4}, rows, {&id, 1});
  BOOST_TEST(id == 1);                 // token 0 fell to 1.0
  rows[0].repetition_penalty = 1.04f;  // 2.0 / 1.04 = 1.923 > 1.9
  ops::Sample<cpu>::run({logits.data(), 1, 4}, rows, {&id, 1});
  BOOST_TEST(id == 0);
  // A penalty on a negative score pushes it further down: token 3 stays below token 2.
  const std::vector<float> negative = {-3.0f, -3.0f, -0.5f, -0.45f};
  rows[0] = {0.0f, 0, 1.0f, 1.2f, 0, 0, history, 0.0f, {}};
  ops::Sample<cpu>::run({negative.data(), 1, 4}, rows, {&id, 1});
  BOOST_TEST(id == 2);  // -0.45 * 1.2 = -0.54 < -0.5
}

BOOST_AUTO_TEST_CASE(greedy_picks_as_torch_argmax_does) {
  // The first of equal maxima; a NaN above any number (the first NaN), so that a model that
  // overflowed gives the same token on every backend. Independent reference: numpy.argmax gives
  // 1, 2 and 0 for these rows (numpy 2.4.6); torch.argmax orders NaN the same way (GreaterOrNan).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, -2.0f,  //
                                     5.0f, 4.0f, nan,  nan,    //
                                     nan,  9.0f, nan,  1.0f};
  std::vector<std::int32_t> ids(3, -1);
  ops::Argmax<cpu>::run({logits.data(), 3, 4}, ids);
  BOOST_TEST(ids == (std::vector<std::int32_t>{1, 2, 0}), boost::test_tools::per_element());
  const std::vector<ops::SamplingRow> rows(3);  // temperature 0: greedy
  ids.assign(3, -1);
  ops::Sample<cpu>::run({logits.data(), 3, 4}, rows, ids);
  BOOST_TEST(ids == (std::vector<std::int32_t>{1, 2, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(argmax_over_a_whole_vocabulary_row) {
  // Rows as long as GPT-2's vocabulary: ties and NaNs in different lanes of the vectorised loop and
  // in its tail, against a plain first-occurrence scan.
  const std::int64_t V = 50257;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  auto first_of = [](const std::vector<float>& row, auto is_best) {
    return std::int32_t(std::find_if(row.begin(), row.end(), is_best) - row.begin());
  };
  for (const auto& [a, b] : {std::pair<std::int64_t, std::int64_t>{17, 40000},
                             {40000, 17},
                             {3, 50256},
                             {50250, 50256},
                             {50256, 50256}}) {
    std::vector<float> row(V);
    for (float& x : row) x = normal(rng);
    row[std::size_t(a)] = row[std::size_t(b)] = 9.0f;
    std::int32_t id = -1;
    ops::Argmax<cpu>::run({row.data(), 1, V}, {&id, 1});
    BOOST_TEST(id == first_of(row, [](float x) { return x == 9.0f; }));
    row[std::size_t(b)] = row[std::size_t(a) / 2] = std::numeric_limits<float>::quiet_NaN();
    ops::Argmax<cpu>::run({row.data(), 1, V}, {&id, 1});
    BOOST_TEST(id == first_of(row, [](float x) { return std::isnan(x); }));
  }
  const std::vector<float> minus_infinity(V, -std::numeric_limits<float>::infinity());
  std::int32_t id = -1;
  ops::Argmax<cpu>::run({minus_infinity.data(), 1, V}, {&id, 1});
  BOOST_TEST(id == 0);
}

BOOST_AUTO_TEST_CASE(mismatched_sizes_and_foreign_history_tokens_are_refused) {
  auto says = [](std::string part) {
    return [part](const InputError& e) {
      BOOST_TEST_MESSAGE(e.what());
      return std::string(e.what()).find(part) != std::string::npos;
    };
  };
  const std::vector<float> logits(8, 0.0f);  // (2, 4)
  std::vector<std::int32_t> ids(2, -1);
  const std::vector<ops::SamplingRow> one_row(1);
  BOOST_CHECK_EXCEPTION(ops::Sample<cpu>::run({logits.data(), 2, 4}, one_row, ids), InputError,
                        says("1 sampling rows and 2 ids for 2 rows of logits"));
  std::vector<std::int32_t> three_ids(3, -1);
  BOOST_CHECK_EXCEPTION(ops::Argmax<cpu>::run({logits.data(), 2, 4}, three_ids), InputError,
                        says("3 ids for 2 rows of logits"));
  const std::vector<std::int32_t> history = {1, 4};
  std::vector<ops::SamplingRow> rows(2);
  rows[1].repetition_penalty = 1.3f;
  rows[1].history = history;
  BOOST_CHECK_EXCEPTION(ops::Sample<cpu>::run({logits.data(), 2, 4}, rows, ids), InputError,
                        says("history token 4 of row 1 is outside the vocabulary"));
  BOOST_TEST(ids == (std::vector<std::int32_t>{-1, -1}), boost::test_tools::per_element());
  rows[1].repetition_penalty = 1.0f;  // no penalty: the history is not read
  const std::vector<ops::TokenBias> biases = {{2, 1.0f, 0.0f}, {4, 1.0f, 0.0f}};
  rows[0].biases = biases;
  BOOST_CHECK_EXCEPTION(ops::Sample<cpu>::run({logits.data(), 2, 4}, rows, ids), InputError,
                        says("biased token 4 of row 0 is outside the vocabulary"));
  rows[0].biases = {};
  ops::Sample<cpu>::run({logits.data(), 2, 4}, rows, ids);
  BOOST_TEST(ids == (std::vector<std::int32_t>{0, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_counter_based_stream_is_uniform_and_seed_dependent) {
  const int n = 100000, bins = 100;
  std::vector<int> counts(bins, 0);
  for (int i = 0; i < n; ++i) {
    const float u = uniform_float(7, std::uint64_t(i));
    BOOST_REQUIRE(u >= 0.0f && u < 1.0f);
    ++counts[std::size_t(u * bins)];
  }
  double stat = 0;
  for (int c : counts) stat += (c - 1000.0) * (c - 1000.0) / 1000.0;
  BOOST_TEST(stat < chi_square_critical(bins - 1));
  BOOST_TEST(uniform_float(7, 0) != uniform_float(8, 0));
  BOOST_TEST(uniform_float(7, 0) == uniform_float(7, 0));
}
