// Log-probabilities from the generator: each generated token's and each prompt token's, with the
// most likely tokens at each place, against transformers' log_softmax and language-modelling loss
// (tools/make_logprob_reference.py); and asking for them never changes what a request generates.
#define BOOST_TEST_MODULE logprobs
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/ctformer.hpp"
#include "ctformer/evaluation/perplexity.hpp"
#include "support/mixed_requests.hpp"
#include "support/reference.hpp"

using namespace ctformer;

namespace {

// fp32 logits agree with transformers' to about 1e-6 of their scale; a log-probability is a logit
// less a log-sum-exp of them, each a few units.
constexpr double kLogprobTolerance = 1e-4;

GPT2<cpu, float> load(const std::string& name) {
  return GPT2<cpu, float>::from_directory(test::data_dir() / "models" / name);
}

nlohmann::json load_logprobs_reference(const std::string& name) {
  std::ifstream in(test::data_dir() / "reference" / (name + ".logprobs.json"));
  return nlohmann::json::parse(in);
}

GeneratorOptions small_options(std::int64_t max_batch, std::int64_t kv_tokens = 4096) {
  GeneratorOptions o;
  o.kv_block_size = 4;
  o.kv_cache_bytes = kv_tokens * 2 * 2 * 128 * 4;  // every reference model: n_layer * n_embd <= 256
  o.max_batch = max_batch;
  return o;
}

// `got` against one place of the reference: the token, its log-probability, and the most likely
// tokens in order (where the reference's own log-probabilities are too close to order, either
// order passes).
void check_place(const TokenLogprobs& got, const nlohmann::json& want, const std::string& where) {
  BOOST_TEST(got.token == want["token"].get<std::int32_t>(), where);
  BOOST_TEST(std::abs(got.logprob - want["logprob"].get<double>()) <= kLogprobTolerance,
             where << ": logprob " << got.logprob << ", transformers " << want["logprob"]);
  const auto& top = want["top"];
  BOOST_TEST_REQUIRE(got.top.size() == top.size(), where);
  for (std::size_t k = 0; k < top.size(); ++k) {
    const double value = top[k][1].get<double>();
    BOOST_TEST(
        std::abs(got.top[k].logprob - value) <= kLogprobTolerance,
        where << ": top " << k << " logprob " << got.top[k].logprob << ", transformers " << value);
    const bool tied =
        (k > 0 && top[k - 1][1].get<double>() - value < kLogprobTolerance) ||
        (k + 1 < top.size() && value - top[k + 1][1].get<double>() < kLogprobTolerance);
    if (!tied)
      BOOST_TEST(got.top[k].token == top[k][0].get<std::int32_t>(),
                 where << ": top " << k << " is token " << got.top[k].token << ", transformers "
                       << top[k][0]);
  }
}

double mean_negative_logprob(const std::vector<TokenLogprobs>& places, std::size_t from = 0) {
  double sum = 0;
  for (std::size_t t = from; t < places.size(); ++t) sum -= places[t].logprob;
  return sum / double(places.size() - from);
}

}  // namespace

BOOST_AUTO_TEST_CASE(generated_and_prompt_logprobs_match_transformers) {
  for (const std::string& name : test::kReferenceModels) {
    auto model = load(name);
    const auto ref = test::Reference::load(name, model.config().vocab_size);
    const auto want = load_logprobs_reference(name);
    const auto top = want["top"].get<std::int32_t>();
    Generator generator(model, small_options(2));  // two at a time, the third joins later
    std::map<RequestId, std::size_t> case_of;
    for (std::size_t i = 0; i < ref.greedy.size(); ++i) {
      Request r;
      r.prompt = ref.greedy[i].prompt;
      r.params = test::greedy(ref.max_new_tokens);
      r.params.logprobs = top;
      r.params.prompt_logprobs = top;
      case_of[generator.submit(r)] = i;
    }
    for (const Result& result : generator.run()) {
      const std::size_t i = case_of.at(result.id);
      const auto& places = want["greedy"][i];  // tokens 1.. of prompt + generated
      const std::string at = name + " case " + std::to_string(i);
      BOOST_TEST(result.tokens == ref.greedy[i].generated, boost::test_tools::per_element());
      BOOST_TEST_REQUIRE(result.prompt_logprobs.size() == result.prompt.size() - 1, at);
      BOOST_TEST_REQUIRE(result.logprobs.size() == result.tokens.size(), at);
      for (std::size_t t = 0; t < result.prompt_logprobs.size(); ++t)
        check_place(result.prompt_logprobs[t], places[t],
                    at + " prompt token " + std::to_string(t + 1));
      for (std::size_t t = 0; t < result.logprobs.size(); ++t) {
        check_place(result.logprobs[t], places[result.prompt.size() - 1 + t],
                    at + " generated token " + std::to_string(t));
        // Greedy: the chosen token is the most likely one.
        BOOST_TEST(result.logprobs[t].logprob == result.logprobs[t].top[0].logprob, at);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(scoring_a_text_gives_transformers_loss) {
  for (const std::string& name : test::kReferenceModels) {
    auto model = load(name);
    const auto ref = test::Reference::load(name, model.config().vocab_size);
    const auto want = load_logprobs_reference(name)["sequences"];
    // Texts scored alone (max_new_tokens 0), alongside requests that generate.
    Generator generator(model, small_options(4, 2 * model.config().n_positions));
    std::map<RequestId, std::size_t> text_of;
    std::size_t s = 0;
    for (const auto& ids : ref.sequences) {
      if (ids.size() < 2) continue;
      Request r;
      r.prompt = ids;
      r.params = test::greedy(0);
      r.params.prompt_logprobs = 0;
      text_of[generator.submit(r)] = s++;
      generator.submit({{1, 2, 3}, "", test::sampled(7, 5), {}});
    }
    std::size_t scored = 0;
    for (const Result& result : generator.run()) {
      if (!text_of.contains(result.id)) continue;
      ++scored;
      const auto& w = want[text_of.at(result.id)];
      const std::string at = name + " text of " + std::to_string(result.prompt.size()) + " tokens";
      BOOST_TEST(result.tokens.empty(), at);
      BOOST_TEST(result.logprobs.empty(), at);
      BOOST_TEST((result.finish_reason == FinishReason::length), at);
      BOOST_TEST_REQUIRE(result.prompt_logprobs.size() == result.prompt.size() - 1, at);
      BOOST_TEST(result.prompt_logprobs[0].top.empty(), at);
      const double loss = mean_negative_logprob(result.prompt_logprobs);
      BOOST_TEST(
          std::abs(loss - w["loss"].get<double>()) <= kLogprobTolerance,
          at << ": mean negative log-likelihood " << loss << ", transformers' loss " << w["loss"]);
      // The second half given the first, as a sliding window over a long text scores it.
      const std::size_t half = result.prompt.size() / 2;
      const double second = mean_negative_logprob(result.prompt_logprobs, half);
      BOOST_TEST(std::abs(second - w["second_half_loss"].get<double>()) <= kLogprobTolerance,
                 at << ": second half " << second << ", transformers " << w["second_half_loss"]);
    }
    BOOST_TEST(scored == want.size());
    BOOST_TEST(generator.free_kv_blocks() == generator.kv_blocks());
  }
}

BOOST_AUTO_TEST_CASE(asking_for_logprobs_changes_nothing_generated_and_events_carry_them) {
  auto model = load("gpt2-h32");
  auto requests = test::mixed_requests(model.config().vocab_size, 10, [](int i) { return 3 + i; });
  std::vector<std::vector<std::int32_t>> plain;
  {
    Generator generator(model, small_options(4));
    for (const Request& r : requests) generator.submit(r);
    for (const Result& r : generator.run()) plain.push_back(r.tokens);
  }
  // Every other request asks for log-probabilities, some of the prompt too; one prompt of a single
  // token has none to score.
  std::map<RequestId, std::vector<TokenEvent>> events;
  Generator generator(model, small_options(4));
  for (std::size_t i = 0; i < requests.size(); ++i) {
    Request r = requests[i];
    if (i % 2) r.params.logprobs = std::int32_t(i % 4);
    if (i % 3 == 0) r.params.prompt_logprobs = 2;
    r.on_event = [&events](const TokenEvent& e) { events[e.request].push_back(e); };
    generator.submit(r);
  }
  const auto results = generator.run();
  BOOST_TEST_REQUIRE(results.size() == requests.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    const GenerationParams& p = requests[i].params;
    BOOST_TEST(r.tokens == plain[i], boost::test_tools::per_element());
    const bool asked = i % 2, prompt_asked = i % 3 == 0;
    BOOST_TEST(r.logprobs.size() == (asked ? r.tokens.size() : 0u), "request " << i);
    BOOST_TEST(r.prompt_logprobs.size() == (prompt_asked ? r.prompt.size() - 1 : 0u),
               "request " << i);
    for (std::size_t t = 0; t < r.logprobs.size(); ++t) {
      BOOST_TEST(r.logprobs[t].token == r.tokens[t]);
      BOOST_TEST(r.logprobs[t].top.size() == std::size_t(i % 4));
      BOOST_TEST(r.logprobs[t].logprob <= 0.0f);
      if (p.greedy() && !r.logprobs[t].top.empty())
        BOOST_TEST(r.logprobs[t].logprob == r.logprobs[t].top[0].logprob);
    }
    // The events: one log-probability per token, the same as the result's; the prompt's in the
    // first event only.
    const auto& seen = events.at(r.id);
    std::size_t tokens = 0;
    for (std::size_t k = 0; k < seen.size(); ++k) {
      BOOST_TEST((k == 0 ? r.prompt_logprobs.size() : 0u) == seen[k].prompt_logprobs.size());
      BOOST_TEST(seen[k].logprobs.has_value() == (asked && seen[k].token.has_value()));
      if (seen[k].logprobs) {
        BOOST_TEST(seen[k].logprobs->logprob == r.logprobs[tokens].logprob);
        BOOST_TEST(seen[k].logprobs->token == r.tokens[tokens]);
      }
      tokens += seen[k].token.has_value();
    }
    for (std::size_t t = 0; t < r.prompt_logprobs.size(); ++t)
      BOOST_TEST(seen[0].prompt_logprobs[t].logprob == r.prompt_logprobs[t].logprob);
  }
}

BOOST_AUTO_TEST_CASE(logprobs_survive_preemption) {
  auto model = load("gpt2-h32");  // n_positions 96
  std::vector<Request> requests =
      test::mixed_requests(model.config().vocab_size, 8, [](int) { return 40; });
  for (Request& r : requests) r.params.logprobs = 1, r.params.prompt_logprobs = 1;
  auto run = [&](std::int64_t kv_tokens, std::uint64_t* preemptions) {
    Generator generator(model, small_options(8, kv_tokens));
    for (const Request& r : requests) generator.submit(r);
    auto results = generator.run();
    *preemptions = generator.preemptions();
    return results;
  };
  std::uint64_t roomy_preemptions = 0, tight_preemptions = 0;
  const auto roomy = run(8 * 96, &roomy_preemptions);
  const auto tight = run(96, &tight_preemptions);  // every request fits alone, not all at once
  BOOST_TEST(roomy_preemptions == 0u);
  BOOST_TEST(tight_preemptions > 0u);
  BOOST_TEST_REQUIRE(roomy.size() == tight.size());
  for (std::size_t i = 0; i < roomy.size(); ++i) {
    BOOST_TEST(tight[i].tokens == roomy[i].tokens, boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(tight[i].logprobs.size() == roomy[i].logprobs.size());
    BOOST_TEST_REQUIRE(tight[i].prompt_logprobs.size() == roomy[i].prompt_logprobs.size());
    // A preempted request recomputes its context in one prefill, in another order of sums.
    for (std::size_t t = 0; t < roomy[i].logprobs.size(); ++t)
      BOOST_TEST(std::abs(tight[i].logprobs[t].logprob - roomy[i].logprobs[t].logprob) <= 1e-5);
  }
}

BOOST_AUTO_TEST_CASE(bad_logprob_counts_are_refused_naming_the_value) {
  auto model = load("gpt2-h16");  // vocabulary of 320
  Generator generator(model, small_options(2));
  auto refused = [&](std::optional<std::int32_t> logprobs, std::optional<std::int32_t> prompt,
                     const std::string& message) {
    Request r;
    r.prompt = {1, 2, 3};
    r.params.logprobs = logprobs;
    r.params.prompt_logprobs = prompt;
    try {
      generator.submit(r);
    } catch (const InputError& e) {
      BOOST_TEST(std::string(e.what()).find(message) != std::string::npos, e.what());
      return;
    }
    BOOST_ERROR("accepted logprobs that should be refused: " << message);
  };
  refused(-1, std::nullopt, "logprobs -1 must be >= 0");
  refused(std::nullopt, -2, "prompt_logprobs -2 must be >= 0");
  refused(321, std::nullopt, "logprobs 321 is more tokens than the vocabulary has (320)");
  refused(1, 400, "prompt_logprobs 400 is more tokens than the vocabulary has (320)");
  BOOST_TEST(generator.idle());
  // The whole vocabulary is a valid count.
  Request r;
  r.prompt = {1, 2};
  r.params = test::greedy(1);
  r.params.logprobs = 320;
  r.params.prompt_logprobs = 320;
  generator.submit(r);
  const Result result = generator.run().at(0);
  BOOST_TEST_REQUIRE(result.logprobs.size() == 1u);
  BOOST_TEST(result.logprobs[0].top.size() == 320u);
  double total = 0;
  for (const LikelyToken& t : result.logprobs[0].top) total += std::exp(double(t.logprob));
  BOOST_TEST(std::abs(total - 1.0) <= 1e-5);  // the whole distribution sums to one
}

BOOST_AUTO_TEST_CASE(sliding_window_perplexity_matches_transformers) {
  for (const std::string& name : test::kReferenceModels) {
    auto model = load(name);
    const auto want = load_logprobs_reference(name)["sliding"];
    const auto ids = want["ids"].get<std::vector<std::int32_t>>();
    const double want_mean = want["nll_sum"].get<double>() / want["tokens"].get<double>();
    for (const std::int64_t batch : {1, 4}) {
      std::int64_t calls = 0, last_done = 0;
      const Perplexity got = perplexity(
          model, ids,
          {want["context"].get<std::int64_t>(), want["stride"].get<std::int64_t>(), batch},
          [&](std::int64_t done, std::int64_t windows) {
            ++calls;
            BOOST_TEST(done > last_done);
            BOOST_TEST(windows == want["windows"].get<std::int64_t>());
            last_done = done;
          });
      const std::string at = name + " batch " + std::to_string(batch);
      BOOST_TEST(got.tokens == want["tokens"].get<std::int64_t>(), at);
      BOOST_TEST(got.windows == want["windows"].get<std::int64_t>(), at);
      BOOST_TEST(last_done == got.windows, at);
      BOOST_TEST(calls == (got.windows + batch - 1) / batch, at);
      BOOST_TEST(std::abs(got.mean_nll() - want_mean) <= kLogprobTolerance,
                 at << ": mean negative log-likelihood " << got.mean_nll() << ", transformers "
                    << want_mean);
      BOOST_TEST(std::abs(got.perplexity() - std::exp(want_mean)) <=
                     std::exp(want_mean) * 2 * kLogprobTolerance,
                 at);
    }
    // The defaults: the model's context, half of it as the stride.
    const Perplexity defaults = perplexity(model, ids);
    BOOST_TEST(std::abs(defaults.mean_nll() - want_mean) <= kLogprobTolerance, name);
    // Windows that do not overlap: each one's first token is not scored.
    const auto disjoint = load_logprobs_reference(name)["disjoint"];
    const std::int64_t context = disjoint["context"];
    const Perplexity apart = perplexity(model, ids, {context, context, 2});
    BOOST_TEST(apart.tokens == disjoint["tokens"].get<std::int64_t>(), name);
    BOOST_TEST(apart.windows == disjoint["windows"].get<std::int64_t>(), name);
    BOOST_TEST(
        std::abs(apart.mean_nll() - disjoint["nll_sum"].get<double>() /
                                        disjoint["tokens"].get<double>()) <= kLogprobTolerance,
        name);
  }
}

BOOST_AUTO_TEST_CASE(perplexity_refuses_what_it_cannot_score_naming_the_value) {
  auto model = load("gpt2-h16");  // n_positions 128, vocabulary of 320
  const std::vector<std::int32_t> text(300, 5);
  auto refused = [&](std::span<const std::int32_t> ids, PerplexityOptions o,
                     const std::string& message) {
    try {
      perplexity(model, ids, o);
    } catch (const InputError& e) {
      BOOST_TEST(std::string(e.what()).find(message) != std::string::npos, e.what());
      return;
    }
    BOOST_ERROR("perplexity accepted what it should refuse: " << message);
  };
  refused(text, {129, 0, 1}, "context 129 must be from 2 to the model's n_positions 128");
  refused(text, {1, 0, 1}, "context 1 must be from 2");
  refused(text, {64, 65, 1}, "stride 65 must be from 1 to the context 64");
  refused(text, {64, 32, 0}, "batch 0 must be positive");
  refused(std::span(text).first(1), {}, "the text is 1 token(s) long; it needs at least 2");
  const std::vector<std::int32_t> bad = {1, 2, 320};
  refused(bad, {}, "token id 320 at index 2 is outside the vocabulary (vocab_size 320)");
  // The smallest text, and a stride of one token: every token is still scored once.
  BOOST_TEST(perplexity(model, std::span(text).first(2)).tokens == 1);
  const Perplexity one = perplexity(model, std::span(text).first(40), {8, 1, 3});
  BOOST_TEST(one.tokens == 39);
  BOOST_TEST(one.windows == 33);  // begins 0..32: the last one reaches the end
}
