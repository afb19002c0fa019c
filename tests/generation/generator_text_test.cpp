// Text in and out of the generator: streaming, stop strings, generation_config.json.
#define BOOST_TEST_MODULE generator_text
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "ctformer/ctformer.hpp"
#include "support/random_gpt2.hpp"

using namespace ctformer;

using ctformer::test::RequireGpt2Vocab;
BOOST_TEST_GLOBAL_FIXTURE(RequireGpt2Vocab);

namespace {

struct Fixture {
  test::TinyFullVocabModel files;
  GPT2<cpu, float> model = GPT2<cpu, float>::from_directory(files.dir.path);
  Gpt2Tokenizer tokenizer = Gpt2Tokenizer::from_directory(files.dir.path);

  GeneratorOptions options() const {
    GeneratorOptions o;
    o.kv_cache_bytes = 8 << 20;
    o.kv_block_size = 4;
    o.max_batch = 4;
    return o;
  }
  Request request(const std::string& text, std::int64_t max_new_tokens) const {
    Request r;
    r.text = text;
    r.params.max_new_tokens = max_new_tokens;
    r.params.max_length = 1000;
    r.params.stop_at_eos = false;
    return r;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(streamed_deltas_add_up_to_the_text_and_the_text_is_the_tokens, Fixture) {
  Generator generator(model, options(), &tokenizer);
  std::map<RequestId, std::string> streamed;
  const std::vector<std::string> prompts = {"My example 0", "Caf\xc3\xa9",
                                            "\xe4\xbd\xa0\xe5\xa5\xbd"};
  for (const std::string& p : prompts) {
    Request r = request(p, 20);
    r.on_event = [&](const TokenEvent& e) { streamed[e.request] += e.text; };
    generator.submit(r);
  }
  for (const Result& r : generator.run()) {
    BOOST_TEST(streamed[r.id] == r.text);
    BOOST_TEST(r.text == to_valid_utf8(tokenizer.decode(r.tokens)));
    BOOST_TEST(r.prompt == tokenizer.encode(prompts[r.id - 1]), boost::test_tools::per_element());
  }
}

BOOST_FIXTURE_TEST_CASE(the_iterator_form_yields_the_same_events, Fixture) {
  Generator generator(model, options(), &tokenizer);
  generator.submit(request("Hello there", 12));
  generator.submit(request("My example 7", 9));
  std::map<RequestId, std::string> text;
  std::map<RequestId, int> tokens, finished;
  for (const TokenEvent& e : generator.events()) {
    text[e.request] += e.text;
    if (e.token) ++tokens[e.request];
    if (e.finished) ++finished[e.request];
  }
  BOOST_TEST(generator.idle());
  BOOST_TEST(tokens[1] == 12);
  BOOST_TEST(tokens[2] == 9);
  BOOST_TEST(finished[1] == 1);
  BOOST_TEST(finished[2] == 1);
  for (const Result& r : generator.take_results()) BOOST_TEST(text[r.id] == r.text);
}

BOOST_FIXTURE_TEST_CASE(stop_strings_that_span_token_boundaries, Fixture) {
  // Generate freely, then pick stop strings that straddle the boundary between generated tokens.
  Generator free_run(model, options(), &tokenizer);
  free_run.submit(request("My example 3", 24));
  const Result full = free_run.run().at(0);
  std::vector<std::size_t> boundaries;  // byte offsets in the text where a token ends
  std::string so_far;
  for (std::int32_t t : full.tokens) {
    so_far += tokenizer.decode(std::span(&t, 1));
    boundaries.push_back(so_far.size());
  }
  BOOST_REQUIRE(so_far == full.text);  // the tiny model's tokens are whole characters here
  int checked = 0;
  for (std::size_t b = 2; b + 2 < boundaries.size() && checked < 4; b += 3) {
    const std::size_t at = boundaries[b];
    if (at < 2 || at + 2 > full.text.size()) continue;
    const std::string stop = full.text.substr(at - 2, 4);  // 2 bytes each side of the boundary
    const std::size_t first = full.text.find(stop);
    Generator generator(model, options(), &tokenizer);
    Request r = request("My example 3", 24);
    r.params.stop_strings = {"never appears \x01", stop};
    std::string streamed;
    r.on_event = [&](const TokenEvent& e) {
      streamed += e.text;
      // Nothing past the stop string is ever streamed.
      BOOST_TEST(streamed.size() <= first + stop.size());
    };
    generator.submit(r);
    const Result result = generator.run().at(0);
    BOOST_TEST((result.finish_reason == FinishReason::stop_string));
    BOOST_TEST(result.text == full.text.substr(0, first + stop.size()));
    BOOST_TEST(streamed == result.text);
    ++checked;
  }
  BOOST_TEST(checked > 0);
}

BOOST_FIXTURE_TEST_CASE(text_prompts_and_their_errors, Fixture) {
  Generator generator(model, options(), &tokenizer);
  Request bad = request("ok \xff", 3);
  BOOST_CHECK_THROW(generator.submit(bad), InputError);
  Request empty = request("", 3);
  BOOST_CHECK_THROW(generator.submit(empty), InputError);
  std::string long_text;
  for (int i = 0; i < 70; ++i) long_text += " a";
  BOOST_CHECK_THROW(generator.submit(request(long_text, 3)), InputError);
  Generator without_tokenizer(model, options());
  BOOST_CHECK_THROW(without_tokenizer.submit(request("hi", 3)), InputError);
  Request ids;
  ids.prompt = {1, 2};
  ids.params.stop_strings = {"x"};
  BOOST_CHECK_THROW(without_tokenizer.submit(ids), InputError);
}

BOOST_AUTO_TEST_CASE(generation_config_defaults_and_overrides) {
  test::TempDir dir("genconfig");
  const GenerationParams none = GenerationParams::from_generation_config(dir.path / "absent.json");
  BOOST_TEST(none.greedy());
  BOOST_TEST(none.max_length == 20);  // transformers' GenerationConfig default
  BOOST_TEST(none.top_k == 50);
  std::ofstream(dir.path / "g.json") << R"({"do_sample": true, "temperature": 0.7, "top_p": 0.9,
      "max_new_tokens": 64, "eos_token_id": 50256, "transformers_version": "4.45.0"})";
  const GenerationParams p = GenerationParams::from_generation_config(dir.path / "g.json");
  BOOST_TEST(!p.greedy());
  BOOST_TEST(p.temperature == 0.7f);
  BOOST_TEST(p.top_p == 0.9f);
  BOOST_TEST(*p.max_new_tokens == 64);
  std::ofstream(dir.path / "bad.json") << R"({"top_p": 2.0})";
  BOOST_CHECK_THROW(GenerationParams::from_generation_config(dir.path / "bad.json"), ConfigError);
  std::ofstream(dir.path / "type.json") << R"({"do_sample": "yes"})";
  BOOST_CHECK_THROW(GenerationParams::from_generation_config(dir.path / "type.json"), ConfigError);
}
