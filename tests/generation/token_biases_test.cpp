// Logit bias, minimum lengths, no_repeat_ngram_size and OpenAI's presence and frequency penalties:
// the generator's greedy outputs against transformers' generate under the same parameters
// (tools/make_token_bias_reference.py), all cases in one batch; and the bias list the generator
// hands the sampling op, against the definitions.
#define BOOST_TEST_MODULE token_biases
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/ctformer.hpp"
#include "support/test_support.hpp"

using namespace ctformer;

namespace {

template <class E, class F>
void check_throws_with(F f, const std::string& part) {
  try {
    f();
    BOOST_ERROR("no exception; expected one saying '" << part << "'");
  } catch (const E& e) {
    BOOST_TEST(test::contains(e.what(), part), e.what());
  }
}

GenerationParams params_of(const nlohmann::json& j) {
  GenerationParams p;  // greedy
  p.max_new_tokens = 24;
  p.max_length = 1 << 20;
  if (j.contains("logit_bias"))
    for (const auto& [token, bias] : j["logit_bias"].items())
      p.logit_bias[std::stoi(token)] = bias.is_string() ? -INFINITY : bias.get<float>();
  if (j.contains("min_new_tokens")) p.min_new_tokens = j["min_new_tokens"];
  if (j.contains("min_length")) p.min_length = j["min_length"];
  if (j.contains("no_repeat_ngram_size")) p.no_repeat_ngram_size = j["no_repeat_ngram_size"];
  if (j.contains("repetition_penalty")) p.repetition_penalty = j["repetition_penalty"];
  if (j.contains("presence_penalty")) p.presence_penalty = j["presence_penalty"];
  if (j.contains("frequency_penalty")) p.frequency_penalty = j["frequency_penalty"];
  return p;
}

std::vector<ops::TokenBias> biases_of(const GenerationParams& p,
                                      const std::vector<std::int32_t>& tokens,
                                      std::size_t prompt_length, std::int32_t eos = 99) {
  std::vector<ops::TokenBias> out;
  token_biases(p, tokens, prompt_length, eos, out);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(greedy_generation_matches_transformers_under_every_bias) {
  for (const char* name : {"gpt2-h16", "gpt2-h32", "gpt2-h64"}) {
    auto model = GPT2<cpu, float>::from_directory(test::data_dir() / "models" / name);
    std::ifstream in(test::data_dir() / "reference" / (std::string(name) + ".biases.json"));
    const auto reference = nlohmann::json::parse(in);
    GeneratorOptions options;
    options.kv_block_size = 4;
    options.kv_cache_bytes = std::int64_t(1) << 24;
    options.max_batch = 64;
    Generator generator(model, options);
    std::map<RequestId, const nlohmann::json*> case_of;
    for (const auto& c : reference["cases"]) {
      Request r;
      r.prompt = c["prompt"].get<std::vector<std::int32_t>>();
      r.params = params_of(c["params"]);
      case_of[generator.submit(r)] = &c;
    }
    BOOST_TEST_REQUIRE(case_of.size() >= 30u);
    for (const Result& result : generator.run()) {
      const nlohmann::json& c = *case_of.at(result.id);
      BOOST_TEST_CONTEXT(name << " " << c["case"].get<std::string>() << ", prompt of "
                              << result.prompt.size() << " tokens") {
        const auto want = c["generated"].get<std::vector<std::int32_t>>();
        BOOST_TEST(result.tokens == want, boost::test_tools::per_element());
        const bool ended = !want.empty() && want.back() == model.config().eos_token_id;
        BOOST_TEST((result.finish_reason == FinishReason::eos) == ended);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(no_repeat_ngram_bans_what_follows_each_earlier_occurrence) {
  std::vector<std::int32_t> banned;
  repeated_ngram_tokens(std::vector<std::int32_t>{1, 2, 3, 1, 2, 4, 1, 2}, 3, banned);
  BOOST_TEST(banned == (std::vector<std::int32_t>{3, 4}), boost::test_tools::per_element());
  banned.clear();
  repeated_ngram_tokens(std::vector<std::int32_t>{5, 6, 5}, 2, banned);
  BOOST_TEST(banned == (std::vector<std::int32_t>{6}), boost::test_tools::per_element());
  banned.clear();
  repeated_ngram_tokens(std::vector<std::int32_t>{7, 8}, 1, banned);  // every token seen
  BOOST_TEST(banned == (std::vector<std::int32_t>{7, 8}), boost::test_tools::per_element());
  banned.clear();
  repeated_ngram_tokens(std::vector<std::int32_t>{7, 8}, 4, banned);  // shorter than n - 1
  BOOST_TEST(banned.empty());
}

BOOST_AUTO_TEST_CASE(the_bias_list_merges_every_source_per_token) {
  GenerationParams p;
  BOOST_TEST(biases_of(p, {1, 2, 3}, 1).empty());  // nothing asked: the op's fast path

  p.logit_bias = {{3, 1.5f}, {50, -2.0f}};
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  p.min_new_tokens = 3;
  // Prompt {3, 3}, generated {3, 7, 3}: 3 twice (the prompt's do not count), 7 once.
  const auto b = biases_of(p, {3, 3, 3, 7, 3}, 2);
  BOOST_TEST_REQUIRE(b.size() == 3u);  // 3 generated: end-of-text allowed again
  BOOST_TEST(b[0].token == 3);
  BOOST_TEST(b[0].bias == 1.5f);
  BOOST_TEST(b[0].penalty == 0.5f + 2 * 0.25f);
  BOOST_TEST(b[1].token == 7);
  BOOST_TEST(b[1].bias == 0.0f);
  BOOST_TEST(b[1].penalty == 0.75f);
  BOOST_TEST(b[2].token == 50);
  BOOST_TEST(b[2].bias == -2.0f);
  BOOST_TEST(b[2].penalty == 0.0f);
  // A ban and a bias of the same token, and n-gram bans of a token twice: one entry each.
  p.min_new_tokens = 4;
  p.logit_bias[99] = 5.0f;
  p.no_repeat_ngram_size = 1;
  const auto c = biases_of(p, {3, 3, 3, 7, 3}, 2);
  BOOST_TEST_REQUIRE(c.size() == 4u);
  BOOST_TEST(c[0].token == 3);
  BOOST_TEST(c[0].bias == -INFINITY);
  BOOST_TEST(c[1].token == 7);
  BOOST_TEST(c[1].bias == -INFINITY);
  BOOST_TEST(c[3].token == 99);
  BOOST_TEST(c[3].bias == -INFINITY);
}

BOOST_AUTO_TEST_CASE(end_of_text_is_banned_until_both_minimums_and_only_while_it_stops) {
  GenerationParams p;
  p.min_length = 6;
  p.min_new_tokens = 2;
  auto eos_bias = [&](std::size_t prompt, std::size_t generated) {
    const std::vector<std::int32_t> tokens(prompt + generated, 1);
    for (const ops::TokenBias& b : biases_of(p, tokens, prompt))
      if (b.token == 99) return b.bias;
    return 0.0f;
  };
  BOOST_TEST(eos_bias(3, 2) == -INFINITY);  // 5 < min_length
  BOOST_TEST(eos_bias(3, 3) == 0.0f);
  BOOST_TEST(eos_bias(5, 1) == -INFINITY);  // 1 < min_new_tokens
  BOOST_TEST(eos_bias(5, 2) == 0.0f);
  p.stop_at_eos = false;  // ignore_eos: end-of-text is an ordinary token
  BOOST_TEST(eos_bias(3, 0) == 0.0f);
}

BOOST_AUTO_TEST_CASE(a_request_that_bans_every_token_gets_token_0) {
  auto model = GPT2<cpu, float>::from_directory(test::data_dir() / "models" / "gpt2-h16");
  GeneratorOptions options;
  options.kv_block_size = 4;
  options.kv_cache_bytes = std::int64_t(1) << 22;
  Generator generator(model, options);
  for (const bool sample : {false, true}) {
    Request r;
    r.prompt = {5, 6};
    r.params.max_new_tokens = 3;
    r.params.do_sample = sample;
    r.params.seed = 7;
    for (std::int32_t t = 0; t < model.config().vocab_size; ++t) r.params.logit_bias[t] = -INFINITY;
    generator.submit(r);
  }
  for (const Result& result : generator.run())
    BOOST_TEST(result.tokens == (std::vector<std::int32_t>{0, 0, 0}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bad_values_are_refused_with_their_name) {
  auto model = GPT2<cpu, float>::from_directory(test::data_dir() / "models" / "gpt2-h16");
  Generator generator(model, GeneratorOptions{});
  auto refused = [&](auto change, const std::string& message) {
    Request r;
    r.prompt = {1};
    change(r.params);
    check_throws_with<InputError>([&] { generator.submit(r); }, message);
  };
  refused([](GenerationParams& p) { p.min_p = 1.5f; }, "min_p 1.5");
  refused([](GenerationParams& p) { p.min_p = NAN; }, "min_p");
  refused([](GenerationParams& p) { p.presence_penalty = INFINITY; }, "presence_penalty");
  refused([](GenerationParams& p) { p.frequency_penalty = NAN; }, "frequency_penalty");
  refused([](GenerationParams& p) { p.logit_bias[320] = 1.0f; },
          "logit_bias names token 320, outside the vocabulary (vocab_size 320)");
  refused([](GenerationParams& p) { p.logit_bias[-1] = 1.0f; }, "logit_bias names token -1");
  refused([](GenerationParams& p) { p.logit_bias[3] = INFINITY; }, "logit_bias of token 3");
  refused([](GenerationParams& p) { p.logit_bias[3] = NAN; }, "logit_bias of token 3");
  refused([](GenerationParams& p) { p.no_repeat_ngram_size = -1; }, "no_repeat_ngram_size -1");
  refused([](GenerationParams& p) { p.min_length = -2; }, "min_length -2");
  refused([](GenerationParams& p) { p.min_new_tokens = -3; }, "min_new_tokens -3");
}

BOOST_AUTO_TEST_CASE(generation_config_carries_the_new_keys) {
  const auto p = GenerationParams::from_json(
      nlohmann::json::parse(R"({"min_p": 0.05, "no_repeat_ngram_size": 3, "min_length": 10,
                                "min_new_tokens": 4})"),
      "test");
  BOOST_TEST(p.min_p == 0.05f);
  BOOST_TEST(p.no_repeat_ngram_size == 3);
  BOOST_TEST(p.min_length == 10);
  BOOST_TEST(p.min_new_tokens == 4);
  // transformers writes null for a key at its default.
  const auto nulls = GenerationParams::from_json(
      nlohmann::json::parse(R"({"min_p": null, "no_repeat_ngram_size": null})"), "test");
  BOOST_TEST(nulls.min_p == 0.0f);
  check_throws_with<ConfigError>(
      [] {
        GenerationParams::from_json(nlohmann::json::parse(R"({"no_repeat_ngram_size": -1})"),
                                    "g.json");
      },
      "'no_repeat_ngram_size' is -1");
}
