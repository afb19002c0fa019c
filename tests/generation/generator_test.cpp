// The generator's scheduling on the CPU: continuous batching, the paged cache, preemption and
// cancellation never change what a request produces.
#define BOOST_TEST_MODULE generator
#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

#include "ctformer/ctformer.hpp"
#include "support/mixed_requests.hpp"
#include "support/reference.hpp"

using namespace ctformer;

namespace {

GPT2<cpu, float> load(const std::string& name) {
  return GPT2<cpu, float>::from_directory(test::data_dir() / "models" / name);
}

using test::greedy;
using test::sampled;

// A KV budget of `tokens` tokens for `model`.
GeneratorOptions options_for(const GPT2<cpu, float>& model, std::int64_t tokens,
                             std::int64_t block_size, std::int64_t max_batch) {
  GeneratorOptions o;
  o.kv_block_size = block_size;
  o.kv_cache_bytes = tokens * 2 * model.config().n_layer * model.config().n_embd * 4;
  o.max_batch = max_batch;
  return o;
}

// Runs each request on a generator of its own: the reference for the batched runs.
std::vector<std::vector<std::int32_t>> alone(GPT2<cpu, float>& model,
                                             const std::vector<Request>& requests) {
  std::vector<std::vector<std::int32_t>> out;
  for (const Request& r : requests) {
    Generator generator(model, options_for(model, model.config().n_positions, 16, 1));
    generator.submit(r);
    out.push_back(generator.run().at(0).tokens);
  }
  return out;
}

// Prompts of varied lengths, greedy and sampled, for `model`.
std::vector<Request> mixed_requests(const GPT2<cpu, float>& model, int n) {
  return test::mixed_requests(model.config().vocab_size, n, [](int i) { return 10 + i % 9; });
}

}  // namespace

BOOST_AUTO_TEST_CASE(batched_greedy_matches_transformers_generate) {
  for (const std::string& name : test::kReferenceModels) {
    auto model = load(name);
    const auto ref = test::Reference::load(name, model.config().vocab_size);
    Generator generator(model, options_for(model, 1024, 4, 2));  // two at a time
    std::map<RequestId, std::size_t> case_of;
    for (std::size_t i = 0; i < ref.greedy.size(); ++i) {
      Request r;
      r.prompt = ref.greedy[i].prompt;
      r.params = greedy(ref.max_new_tokens);
      case_of[generator.submit(r)] = i;
    }
    for (const Result& result : generator.run())
      BOOST_TEST(result.tokens == ref.greedy[case_of.at(result.id)].generated,
                 boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(every_request_in_a_continuous_batch_equals_running_it_alone) {
  auto model = load("gpt2-h32");
  const auto requests = mixed_requests(model, 12);
  const auto expected = alone(model, requests);

  Generator generator(model, options_for(model, 2048, 4, 5));
  std::map<RequestId, std::size_t> index;
  // Half arrive at the start, the rest one per step while the first ones run.
  for (std::size_t i = 0; i < 6; ++i) index[generator.submit(requests[i])] = i;
  for (std::size_t i = 6; i < requests.size(); ++i) {
    generator.step();
    index[generator.submit(requests[i])] = i;
  }
  const auto results = generator.run();
  BOOST_TEST(results.size() == requests.size());
  for (const Result& r : results) {
    BOOST_TEST(r.tokens == expected[index.at(r.id)], boost::test_tools::per_element());
    BOOST_TEST(r.token_times_ms.size() == r.tokens.size());
    BOOST_TEST(r.ttft_ms == r.token_times_ms.front());
  }
  BOOST_TEST(generator.free_kv_blocks() == generator.kv_blocks());
}

BOOST_AUTO_TEST_CASE(small_blocks_equal_one_contiguous_block_per_sequence) {
  auto model = load("gpt2-h16");
  const auto requests = mixed_requests(model, 6);
  std::vector<std::vector<std::vector<std::int32_t>>> runs;
  for (const std::int64_t block_size :
       {std::int64_t(1), std::int64_t(3), model.config().n_positions}) {
    Generator generator(model, options_for(model, 6 * model.config().n_positions, block_size, 6));
    for (const Request& r : requests) generator.submit(r);
    std::vector<std::vector<std::int32_t>> tokens;
    for (const Result& r : generator.run()) tokens.push_back(r.tokens);
    runs.push_back(tokens);
  }
  BOOST_TEST((runs[0] == runs[2]));
  BOOST_TEST((runs[1] == runs[2]));
}

BOOST_AUTO_TEST_CASE(a_kv_budget_too_small_for_all_at_once_still_completes_them_all) {
  auto model = load("gpt2-h32");  // n_positions 96
  std::vector<Request> requests = mixed_requests(model, 8);
  for (Request& r : requests) r.params.max_new_tokens = 40;  // each grows past 40 tokens
  const auto expected = alone(model, requests);

  // Room for 96 tokens: every request fits alone, but 8 at once must wait or be preempted.
  Generator generator(model, options_for(model, 96, 8, 8));
  std::map<RequestId, std::size_t> index;
  for (std::size_t i = 0; i < requests.size(); ++i) index[generator.submit(requests[i])] = i;
  const auto results = generator.run();
  BOOST_TEST(results.size() == requests.size());
  for (const Result& r : results)
    BOOST_TEST(r.tokens == expected[index.at(r.id)], boost::test_tools::per_element());
  BOOST_TEST(generator.preemptions() > 0u);  // the budget really was too small
  BOOST_TEST(generator.free_kv_blocks() == generator.kv_blocks());
}

BOOST_AUTO_TEST_CASE(cancelled_requests_free_their_blocks_and_leave_the_others_alone) {
  auto model = load("gpt2-h16");
  auto requests = mixed_requests(model, 5);
  for (Request& r : requests) r.params.max_new_tokens = 30;
  const auto expected = alone(model, requests);
  Generator generator(model, options_for(model, 1024, 4, 3));
  std::vector<RequestId> ids;
  for (const Request& r : requests) ids.push_back(generator.submit(r));
  for (int i = 0; i < 5; ++i) generator.step();
  generator.cancel(ids[1]);  // running
  generator.cancel(ids[4]);  // still waiting (max_batch 3)
  const std::int64_t free_before = generator.free_kv_blocks();
  const auto events = generator.step();
  BOOST_TEST(generator.free_kv_blocks() > free_before);
  int cancellations = 0;
  for (const TokenEvent& e : events)
    if (e.finished == FinishReason::cancelled) ++cancellations;
  BOOST_TEST(cancellations == 2);
  for (const Result& r : generator.run()) {
    const std::size_t i = std::size_t(r.id - ids[0]);
    if (i == 1 || i == 4) {
      BOOST_TEST((r.finish_reason == FinishReason::cancelled));
      BOOST_TEST(r.tokens.size() < expected[i].size());
    } else {
      BOOST_TEST(r.tokens == expected[i], boost::test_tools::per_element());
    }
  }
  BOOST_TEST(generator.free_kv_blocks() == generator.kv_blocks());
}

BOOST_AUTO_TEST_CASE(a_seed_gives_the_same_sample_whatever_the_batch) {
  auto model = load("gpt2-h64");
  Request r;
  r.prompt = {5, 6, 7};
  r.params = sampled(42, 25);
  const auto expected = alone(model, {r});
  Generator generator(model, options_for(model, 2048, 16, 8));
  auto others = mixed_requests(model, 7);
  for (const Request& o : others) generator.submit(o);
  const RequestId id = generator.submit(r);
  for (const Result& result : generator.run())
    if (result.id == id) {
      BOOST_TEST(result.tokens == expected[0], boost::test_tools::per_element());
      BOOST_TEST(result.seed == 42u);
    }
  // And a different seed gives a different sample.
  r.params.seed = 43;
  BOOST_TEST((alone(model, {r})[0] != expected[0]));
}

BOOST_AUTO_TEST_CASE(top_k_1_equals_greedy_and_temperature_0_is_greedy) {
  auto model = load("gpt2-h32");
  Request g;
  g.prompt = {1, 2, 3, 4};
  g.params = greedy(30);
  Request k1 = g;
  k1.params = sampled(7, 30);
  k1.params.top_k = 1;
  k1.params.repetition_penalty = 1.0f;
  Request t0 = k1;
  t0.params.top_k = 0;
  t0.params.temperature = 0.0f;
  const auto out = alone(model, {g, k1, t0});
  BOOST_TEST(out[1] == out[0], boost::test_tools::per_element());
  BOOST_TEST(out[2] == out[0], boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(prompt_lengths_at_and_past_the_context) {
  auto model = load("gpt2-h16");
  const std::int64_t P = model.config().n_positions;
  Generator generator(model, options_for(model, 4 * P, 16, 4));
  Request full;
  full.prompt.assign(std::size_t(P), 3);
  full.params = greedy(10);
  const RequestId id = generator.submit(full);  // nothing left to generate: finishes at once
  const auto results = generator.run();
  BOOST_TEST(results.at(0).id == id);
  BOOST_TEST(results.at(0).tokens.empty());
  BOOST_TEST((results.at(0).finish_reason == FinishReason::length));

  Request nearly = full;
  nearly.prompt.pop_back();  // room for exactly one token
  generator.submit(nearly);
  BOOST_TEST(generator.run().at(0).tokens.size() == 1u);

  Request too_long = full;
  too_long.prompt.push_back(3);
  try {
    generator.submit(too_long);
    BOOST_FAIL("accepted a prompt longer than the context");
  } catch (const InputError& e) {
    BOOST_TEST(std::string(e.what()).find("129 tokens") != std::string::npos, e.what());
    BOOST_TEST(std::string(e.what()).find("n_positions 128") != std::string::npos, e.what());
  }
  Request bad_id = nearly;
  bad_id.prompt[0] = 320;
  BOOST_CHECK_THROW(generator.submit(bad_id), InputError);
  Request bad_param = nearly;
  bad_param.params.top_p = 0.0f;
  BOOST_CHECK_THROW(generator.submit(bad_param), InputError);
  BOOST_TEST(generator.idle());
}

BOOST_AUTO_TEST_CASE(max_length_counts_the_prompt_and_eos_stops_early) {
  auto model = load("gpt2-h16");
  const auto ref = test::Reference::load("gpt2-h16", model.config().vocab_size);
  Generator generator(model, options_for(model, 1024, 16, 4));
  Request r;
  r.prompt = ref.greedy[1].prompt;  // 4 tokens
  r.params = greedy(100);
  r.params.max_length = 10;
  generator.submit(r);
  const Result result = generator.run().at(0);
  BOOST_TEST(result.tokens.size() == 6u);
  BOOST_TEST((result.finish_reason == FinishReason::length));

  // With eos set to the token greedy produces third, generation stops there and keeps it.
  GeneratorOptions o = options_for(model, 1024, 16, 4);
  o.eos_token_id = ref.greedy[1].generated[2];
  Generator stops(model, o);
  r.params.max_length = 100;
  stops.submit(r);
  const Result stopped = stops.run().at(0);
  BOOST_TEST((stopped.finish_reason == FinishReason::eos));
  BOOST_TEST(stopped.tokens.back() == ref.greedy[1].generated[2]);
  BOOST_TEST(stopped.tokens.size() <= 3u);
}
