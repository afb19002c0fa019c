// GPT2<cpu, T> against Hugging Face transformers (tests/data, made by tools/make_reference.py).
// Greedy generation against transformers' generate is in tests/generation/generator_test.cpp.
// CTest runs it once more for each projection kernel but the best (CTFORMER_CPU_KERNEL, see
// tests/models/CMakeLists.txt); a kernel this CPU cannot run is SKIPPED.
#define BOOST_TEST_MODULE gpt2_reference
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ctformer/ctformer.hpp"
#include "support/decode_script.hpp"
#include "support/reference.hpp"

using namespace ctformer;
using test::Reference;

namespace {

struct ProjectionKernel {
  ProjectionKernel() {
    const char* name = std::getenv("CTFORMER_CPU_KERNEL");
    const auto kernel = ops::packed::kernel_named(name ? name : "");
    if (kernel && !ops::packed::cpu_runs(*kernel)) {
      std::printf("SKIPPED: this CPU cannot run the %s projection kernel\n", name);
      std::fflush(stdout);
      std::_Exit(77);  // CTest's SKIP_RETURN_CODE
    }
    // Any other name is a ConfigError here, so that a misspelt kernel fails.
    std::printf("projection kernel: %s\n", ops::packed::best_kernel_name());
  }
};
BOOST_TEST_GLOBAL_FIXTURE(ProjectionKernel);

template <class T>
struct Loaded {
  GPT2<cpu, T> model;
  Reference ref;
  explicit Loaded(const std::string& name)
      : model(GPT2<cpu, T>::from_directory(test::data_dir() / "models" / name)),
        ref(Reference::load(name, model.config().vocab_size)) {}
};

// Every position's logits of `tokens`, run as one step on a fresh cache.
template <class T>
std::vector<float> all_logits(GPT2<cpu, T>& model, const std::vector<std::int32_t>& tokens) {
  auto cache = model.make_cache(std::int64_t(tokens.size()));
  const SequenceStep step{cache.add_sequence(), tokens, LogitsFor::every_token};
  const auto logits = model.forward({&step, 1}, cache);
  return {logits.data, logits.data + logits.size()};
}

// Relative error of fp32 logits against transformers (fp32 on the CPU); see test::relative_error.
constexpr double kFp32Tolerance = 1e-4;

}  // namespace

BOOST_AUTO_TEST_CASE(fp32_logits_match_transformers) {
  for (const std::string& name : test::kReferenceModels) {
    Loaded<float> m(name);
    for (std::size_t i = 0; i < m.ref.sequences.size(); ++i) {
      const auto got = all_logits(m.model, m.ref.sequences[i]);
      const double err = test::relative_error(got.data(), m.ref.logits[i]);
      BOOST_TEST_MESSAGE(name << " sequence of " << m.ref.sequences[i].size()
                              << " tokens: relative error " << err);
      BOOST_TEST(err <= kFp32Tolerance, name << " sequence " << i << ": relative error " << err);
    }
  }
}

BOOST_AUTO_TEST_CASE(ragged_batch_gives_each_sequence_its_result_alone) {
  for (const std::string& name : test::kReferenceModels) {
    Loaded<float> m(name);
    // Small blocks, so that each sequence's cache is scattered across the pool.
    auto cache = m.model.make_cache(2048, 4);
    // Every token's logits for every other sequence, the last token's for the rest.
    const std::int64_t V = m.model.config().vocab_size;
    std::vector<SequenceStep> steps;
    for (const auto& tokens : m.ref.sequences)
      steps.push_back({cache.add_sequence(), tokens,
                       steps.size() % 2 ? LogitsFor::last_token : LogitsFor::every_token});
    const auto logits = m.model.forward(steps, cache);
    std::int64_t row = 0;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const auto n = std::int64_t(steps[i].tokens.size());
      const bool every = steps[i].logits == LogitsFor::every_token;
      const std::vector<float> want(m.ref.logits[i].end() - (every ? n : 1) * V,
                                    m.ref.logits[i].end());
      const double err = test::relative_error(logits.row(row), want);
      BOOST_TEST(err <= kFp32Tolerance, name << " sequence " << i << " in a batch: " << err);
      row += every ? n : 1;
    }
    BOOST_TEST(row == logits.rows);
  }
}

BOOST_AUTO_TEST_CASE(incremental_decode_with_the_cache_equals_full_recomputation) {
  for (const std::string& name : test::kReferenceModels) {
    Loaded<float> m(name);
    const std::int64_t V = m.model.config().vocab_size;
    // Two sequences decoded in lockstep, in chunks of varying size, with 3-token blocks: their
    // blocks interleave in the pool.
    const auto& a = m.ref.sequences[3];
    const auto& b = m.ref.sequences[2];
    auto cache = m.model.make_cache(256, 3);
    const auto sa = cache.add_sequence(), sb = cache.add_sequence();
    std::size_t pa = 0, pb = 0, chunk = 1;
    while (pa < a.size()) {
      std::vector<SequenceStep> steps;
      const std::size_t na = std::min(chunk, a.size() - pa);
      steps.push_back({sa, std::span(a).subspan(pa, na)});
      const std::size_t nb = std::min<std::size_t>(1, b.size() - pb);
      if (nb) steps.push_back({sb, std::span(b).subspan(pb, nb)});
      const auto logits = m.model.forward(steps, cache);  // the last token of each step
      pa += na;
      pb += nb;
      const std::vector<float> want_a(m.ref.logits[3].begin() + (pa - 1) * V,
                                      m.ref.logits[3].begin() + pa * V);
      BOOST_TEST(test::relative_error(logits.row(0), want_a) <= kFp32Tolerance,
                 name << ": sequence a after " << pa << " tokens");
      if (nb) {
        const std::vector<float> want_b(m.ref.logits[2].begin() + (pb - 1) * V,
                                        m.ref.logits[2].begin() + pb * V);
        BOOST_TEST(test::relative_error(logits.row(1), want_b) <= kFp32Tolerance,
                   name << ": sequence b after " << pb << " tokens");
      }
      chunk = chunk % 4 + 1;
    }
    BOOST_TEST(cache.length(sa) == std::int64_t(a.size()));
  }
}

// The CUDA backend pads decode batches so that CUDA graphs can replay them (docs/cuda.md): padding
// rows decode into the cache's padding block and must change no sequence's results. The same
// padding, checked here on the CPU.
BOOST_AUTO_TEST_CASE(padded_decode_steps_give_the_logits_of_unpadded_ones) {
  auto to_host = [](MatrixView<const float> logits) {
    return std::vector<float>(logits.data, logits.data + logits.size());
  };
  for (const std::string& name : test::kReferenceModels) {
    Loaded<float> plain(name), padded(name);
    padded.model.decode_graphs().pad_to_multiple = 8;
    const auto want = test::run_decode_script(plain.model, to_host);
    const auto got = test::run_decode_script(padded.model, to_host);
    BOOST_TEST_REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      BOOST_TEST_REQUIRE(got[i].size() == want[i].size(), "step " << i << ": logits rows");
      const double err = test::relative_error(got[i].data(), want[i]);
      BOOST_TEST(err <= 1e-6, name << " step " << i << ": " << err);
    }
  }
}

// Weights stored in fp16 / bf16, computed in fp32: rounding each weight costs a relative 2^-11
// (fp16) or 2^-8 (bf16), and bf16 projections also take their input rounded to bf16 (the pairs of
// AVX512_BF16). Measured worst cases over the three fixtures: 1.0e-3 (fp16) and 9.1e-3
// (bf16; 7.9e-3 with the input unrounded); the bounds leave a 2.5x margin (run with
// --log_level=message to see the figures).
BOOST_AUTO_TEST_CASE(fp16_and_bf16_storage_stay_close_to_fp32) {
  auto check = [](auto tag, const char* dtype, double tolerance) {
    using T = decltype(tag);
    for (const std::string& name : test::kReferenceModels) {
      Loaded<T> m(name);
      double worst = 0;
      for (std::size_t i = 0; i < m.ref.sequences.size(); ++i)
        worst = std::max(worst, test::relative_error(all_logits(m.model, m.ref.sequences[i]).data(),
                                                     m.ref.logits[i]));
      BOOST_TEST_MESSAGE(name << " " << dtype << " storage: worst relative error " << worst);
      BOOST_TEST(worst <= tolerance, name << " " << dtype << ": " << worst);
    }
  };
  check(half{}, "fp16", 3e-3);
  check(bfloat16{}, "bf16", 2.5e-2);
}

BOOST_AUTO_TEST_CASE(bad_tokens_and_lengths_are_input_errors_that_change_nothing) {
  Loaded<float> m("gpt2-h16");
  const std::int64_t V = m.model.config().vocab_size, P = m.model.config().n_positions;
  auto cache = m.model.make_cache(4 * P);
  const auto s = cache.add_sequence();
  auto expect = [&](std::vector<std::int32_t> tokens, std::initializer_list<std::string> parts) {
    const SequenceStep step{s, tokens};
    try {
      m.model.forward({&step, 1}, cache);
      BOOST_FAIL("accepted a bad step");
    } catch (const InputError& e) {
      for (const std::string& part : parts)
        BOOST_TEST(std::string(e.what()).find(part) != std::string::npos, e.what());
    }
    BOOST_TEST(cache.length(s) == 0);  // a refused step leaves the cache as it was
  };
  expect({1, 2, std::int32_t(V)}, {"token id 320", "index 2", "vocab_size 320"});
  expect({-1}, {"token id -1"});
  expect(std::vector<std::int32_t>(std::size_t(P + 1), 1), {"129 tokens", "n_positions 128"});
  expect({}, {"no tokens"});

  // Exactly n_positions tokens is fine (the fixture covers its logits); one more is refused.
  const std::vector<std::int32_t> full(std::size_t(P), 7);
  const SequenceStep step{s, full};
  m.model.forward({&step, 1}, cache);
  const std::int32_t one_more[] = {7};
  const SequenceStep next{s, one_more};
  BOOST_CHECK_THROW(m.model.forward({&next, 1}, cache), InputError);
}

BOOST_AUTO_TEST_CASE(a_full_cache_is_refused_before_anything_changes) {
  Loaded<float> m("gpt2-h16");
  auto cache = m.model.make_cache(8, 4);  // two blocks
  const auto a = cache.add_sequence(), b = cache.add_sequence();
  const std::vector<std::int32_t> six(6, 5), three(3, 5);
  const SequenceStep steps[] = {{a, six}, {b, three}};
  BOOST_CHECK_THROW(m.model.forward(steps, cache), InputError);
  BOOST_TEST(cache.free_blocks() == 2);
  BOOST_TEST(cache.length(a) == 0);
  m.model.forward({steps, 1}, cache);
  BOOST_TEST(cache.free_blocks() == 0);
  cache.release(a);
  BOOST_TEST(cache.free_blocks() == 2);
  BOOST_CHECK_THROW(cache.length(a), InputError);  // released ids are no longer live
}
