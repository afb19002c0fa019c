// `ctformer generate` end to end, on a small random model with GPT-2's real vocabulary.
#define BOOST_TEST_MODULE cli_generate
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/ctformer.hpp"
#include "support/random_gpt2.hpp"
#include "support/run_cli.hpp"
#include "support/test_support.hpp"

using namespace ctformer;
namespace fs = std::filesystem;
using test::run_cli;

using ctformer::test::RequireGpt2Vocab;
BOOST_TEST_GLOBAL_FIXTURE(RequireGpt2Vocab);

using ctformer::test::contains;

namespace {

// What the library generates for `text` alone with `params`: the reference for the CLI's output
// (max_length raised, so that only max_new_tokens limits it, as the CLI's options do).
Result library_result(const std::string& text, GenerationParams params) {
  const auto& dir = test::TinyFullVocabModel::shared().dir.path;
  auto model = GPT2<cpu, float>::from_directory(dir);
  const auto tokenizer = Gpt2Tokenizer::from_directory(dir);
  Generator alone(model, {}, &tokenizer);
  Request request;
  request.text = text;
  request.params = std::move(params);
  request.params.max_length = 1000;
  alone.submit(request);
  return alone.run().at(0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(json_output_matches_the_library_for_each_prompt_in_order) {
  const std::vector<std::string> prompts = {"My example 0", "Hello, world",
                                            "Caf\xc3\xa9 \xf0\x9f\x98\x80"};
  std::string input;
  for (const auto& p : prompts) input += p + "\n";
  const auto r = run_cli("generate " + test::TinyFullVocabModel::shared().arg() +
                             " --json --max-new-tokens 7 --batch-size 2",
                         input);
  BOOST_REQUIRE_EQUAL(r.status, 0);
  const auto results = nlohmann::json::parse(r.out);
  BOOST_REQUIRE_EQUAL(results.size(), prompts.size());

  const auto tokenizer = Gpt2Tokenizer::from_directory(test::TinyFullVocabModel::shared().dir.path);
  std::vector<std::vector<std::int32_t>> ids, expected;
  GenerationParams params;
  params.max_new_tokens = 7;
  for (const auto& p : prompts) {
    const Result r = library_result(p, params);
    ids.push_back(r.prompt);
    expected.push_back(r.tokens);
  }
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto& o = results[i];
    BOOST_TEST(o["prompt"].get<std::string>() == prompts[i]);
    BOOST_TEST(o["tokens"].get<std::vector<std::int32_t>>() == expected[i],
               boost::test_tools::per_element());
    BOOST_TEST(o["prompt_tokens"].get<std::size_t>() == ids[i].size());
    BOOST_TEST(o["generated_tokens"].get<std::size_t>() == expected[i].size());
    BOOST_TEST(o["text"].get<std::string>() == to_valid_utf8(tokenizer.decode(expected[i])));
    BOOST_TEST(o["finish_reason"].get<std::string>() == "length");
  }
}

BOOST_AUTO_TEST_CASE(bias_and_penalty_options_are_the_librarys_parameters) {
  const auto r = run_cli("generate " + test::TinyFullVocabModel::shared().arg() +
                         " --json --prompt 'My example 0' --max-new-tokens 9 --min-new-tokens 9"
                         " --logit-bias 13=-inf --logit-bias 262=3.5 --presence-penalty 0.5"
                         " --frequency-penalty 1.25 --no-repeat-ngram-size 2 --min-p 0.2");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  GenerationParams params;
  params.max_new_tokens = 9;
  params.min_new_tokens = 9;
  params.logit_bias = {{13, -INFINITY}, {262, 3.5f}};
  params.presence_penalty = 0.5f;
  params.frequency_penalty = 1.25f;
  params.no_repeat_ngram_size = 2;
  params.min_p = 0.2f;
  const auto j = nlohmann::json::parse(r.out);
  BOOST_TEST(j[0]["tokens"].get<std::vector<std::int32_t>>() ==
                 library_result("My example 0", params).tokens,
             boost::test_tools::per_element());
  for (const std::string bad : {"13", "x=1", "13=", "13=big", "13=1x"}) {
    const auto u = run_cli(
        "generate " + test::TinyFullVocabModel::shared().arg() + " --prompt a --logit-bias " + bad,
        "", true);
    BOOST_TEST(u.status == 2, bad);
    BOOST_TEST(contains(u.out, "--logit-bias takes ID=BIAS"), bad << ": " << u.out);
  }
}

BOOST_AUTO_TEST_CASE(logprobs_are_the_librarys_with_each_token_named) {
  const auto r = run_cli("generate " + test::TinyFullVocabModel::shared().arg() +
                         " --json --prompt 'My example 0' --max-new-tokens 5 --logprobs 3");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  GenerationParams params;
  params.max_new_tokens = 5;
  params.logprobs = 3;
  const Result want = library_result("My example 0", params);
  const auto tokenizer = Gpt2Tokenizer::from_directory(test::TinyFullVocabModel::shared().dir.path);
  const auto places = nlohmann::json::parse(r.out)[0]["logprobs"];
  BOOST_REQUIRE_EQUAL(places.size(), want.logprobs.size());
  for (std::size_t t = 0; t < places.size(); ++t) {
    const TokenLogprobs& w = want.logprobs[t];
    BOOST_TEST(places[t]["token"].get<std::int32_t>() == w.token);
    const std::string_view bytes = tokenizer.token_bytes(w.token);
    const auto text = places[t]["text"].get<std::string>();
    BOOST_TEST((is_valid_utf8(bytes) ? text == bytes : text.starts_with("bytes:")), text);
    BOOST_TEST(places[t]["logprob"].get<float>() == w.logprob);
    BOOST_REQUIRE_EQUAL(places[t]["top"].size(), 3u);
    for (std::size_t k = 0; k < 3; ++k) {
      BOOST_TEST(places[t]["top"][k][0].get<std::int32_t>() == w.top[k].token);
      BOOST_TEST(places[t]["top"][k][1].get<float>() == w.top[k].logprob);
    }
  }
  const auto u =
      run_cli("generate " + test::TinyFullVocabModel::shared().arg() + " --prompt a --logprobs 2",
              "", true);
  BOOST_TEST(u.status == 2);
  BOOST_TEST(contains(u.out, "--logprobs needs --json"), u.out);
}

BOOST_AUTO_TEST_CASE(one_prompt_streams_prompt_and_continuation) {
  const auto r = run_cli("generate " + test::TinyFullVocabModel::shared().arg() +
                         " --prompt 'My example 0' --max-length 10");
  BOOST_REQUIRE_EQUAL(r.status, 0);
  BOOST_TEST(r.out.starts_with("My example 0"));
  const auto j =
      nlohmann::json::parse(run_cli("generate " + test::TinyFullVocabModel::shared().arg() +
                                    " --json --prompt 'My example 0' --max-length 10")
                                .out);
  BOOST_TEST(j[0]["generated_tokens"].get<int>() == 10 - 3);  // max_length counts the prompt
  BOOST_TEST(r.out == "My example 0" + j[0]["text"].get<std::string>() + "\n");
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_with_the_usage_line) {
  for (const std::string args : {"generate", "generate --bogus", "generate --model",
                                 "generate --model x --max-new-tokens many"}) {
    const auto r = run_cli(args, "", true);
    BOOST_TEST(r.status == 2, args);
    BOOST_TEST(contains(r.out, "usage: ctformer generate"), args << ": " << r.out);
  }
  const auto help = run_cli("generate --help");
  BOOST_TEST(help.status == 0);
  BOOST_TEST(contains(help.out, "usage: ctformer generate"));
  BOOST_TEST(run_cli("frobnicate", "", true).status == 2);
}

BOOST_AUTO_TEST_CASE(runtime_errors_exit_1_with_one_clear_sentence) {
  auto expect = [](const std::string& args, const std::string& input,
                   std::initializer_list<std::string> parts) {
    const auto r = run_cli(args, input, true);
    BOOST_TEST(r.status == 1, args << ": " << r.out);
    for (const auto& part : parts) BOOST_TEST(contains(r.out, part), args << ": " << r.out);
  };
  expect("generate --model /nonexistent --prompt hi", "", {"/nonexistent", "does not exist"});
  test::TempDir partial("cli-partial");
  fs::copy_file(test::TinyFullVocabModel::shared().dir.path / "config.json",
                partial.path / "config.json");
  expect("generate --model '" + partial.path.string() + "' --prompt hi", "",
         {"incomplete", "model.safetensors, vocab.json, merges.txt"});
  std::string long_prompt;
  for (int i = 0; i < 80; ++i) long_prompt += " word";
  expect("generate " + test::TinyFullVocabModel::shared().arg() + " --prompt '" + long_prompt + "'",
         "", {"80 tokens", "n_positions 64"});
  expect("generate " + test::TinyFullVocabModel::shared().arg(), "ok\n\nok\n", {"line 2", "empty"});
  expect("generate " + test::TinyFullVocabModel::shared().arg(), "\xff\xfe\n",
         {"prompt 1", "UTF-8", "byte offset 0"});
  expect("generate " + test::TinyFullVocabModel::shared().arg() + " --prompt hi --dtype fp8", "",
         {"fp8", "fp32, fp16, bf16"});
  // --device cuda: cli_cuda_test (what it does depends on the build and on the GPU).
  expect(
      "generate " + test::TinyFullVocabModel::shared().arg() + " --file /nonexistent/prompts.txt",
      "", {"/nonexistent/prompts.txt"});
  // A projection kernel that does not exist is refused by name, with the ones this CPU runs.
  ::setenv("CTFORMER_CPU_KERNEL", "avx9000", 1);
  expect("generate " + test::TinyFullVocabModel::shared().arg() + " --prompt hi", "",
         {"CTFORMER_CPU_KERNEL=avx9000", "avx512_bf16, avx512, avx2, neon_bf16, neon, portable",
          "portable)"});
  // A kernel of another ISA is refused too, naming the ones this CPU runs.
#if defined(__aarch64__)
  const char* other_isa = "avx2";
#else
  const char* other_isa = "neon";
#endif
  ::setenv("CTFORMER_CPU_KERNEL", other_isa, 1);
  expect("generate " + test::TinyFullVocabModel::shared().arg() + " --prompt hi", "",
         {std::string("CTFORMER_CPU_KERNEL=") + other_isa +
              ": this CPU lacks the instructions of that kernel; it runs ",
          "portable (unset the variable for the fastest)"});
  ::unsetenv("CTFORMER_CPU_KERNEL");
}
