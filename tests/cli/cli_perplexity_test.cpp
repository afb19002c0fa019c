// `ctformer perplexity` end to end, on a small random model with a small byte-level BPE vocabulary
// (no GPT-2 files needed): what it prints is the library's perplexity() of the same text, and text
// or options it cannot score get a message that names the problem.
#define BOOST_TEST_MODULE cli_perplexity
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "ctformer/ctformer.hpp"
#include "ctformer/evaluation/perplexity.hpp"
#include "support/random_gpt2.hpp"
#include "support/run_cli.hpp"
#include "support/test_support.hpp"

using namespace ctformer;
using test::contains;
using test::run_cli;
using test::SmallVocabModel;

namespace {

// About 250 tokens: four windows of the model's 64 positions at the default stride of 32.
std::string sample_text() {
  std::string text;
  for (int i = 0; i < 12; ++i)
    text += "The generator serves many requests at once, line " + std::to_string(i) +
            ", with a paged cache.\n";
  return text;
}

}  // namespace

BOOST_AUTO_TEST_CASE(json_output_is_the_librarys_perplexity_of_the_text) {
  const SmallVocabModel& m = SmallVocabModel::tiny();
  const test::TempDir dir("cli-perplexity");
  const auto file = dir.path / "text.txt";
  std::ofstream(file, std::ios::binary) << sample_text();

  auto model = GPT2<cpu, float>::from_directory(m.dir.path);
  const auto tokenizer = Gpt2Tokenizer::from_directory(m.dir.path);
  const auto ids = tokenizer.encode(sample_text());
  for (const std::string& options :
       {std::string(), std::string(" --context 48 --stride 20 --batch-size 3")}) {
    BOOST_TEST_CONTEXT("options '" << options << "'") {
      const auto r =
          run_cli("perplexity " + m.arg() + " --file '" + file.string() + "' --json" + options);
      BOOST_REQUIRE_EQUAL(r.status, 0);
      const auto j = nlohmann::json::parse(r.out);
      const PerplexityOptions o{j["context"].get<std::int64_t>(), j["stride"].get<std::int64_t>(),
                                j["batch_size"].get<std::int64_t>()};
      BOOST_TEST(o.context == (options.empty() ? 64 : 48));
      BOOST_TEST(o.stride == (options.empty() ? 32 : 20));
      const Perplexity want = perplexity(model, ids, o);
      BOOST_TEST(j["text_tokens"] == ids.size());
      BOOST_TEST(j["scored_tokens"] == ids.size() - 1);
      BOOST_TEST(j["windows"] == want.windows);
      BOOST_TEST(std::abs(j["mean_nll"].get<double>() - want.mean_nll()) <= 1e-9);
      BOOST_TEST(std::abs(j["perplexity"].get<double>() - want.perplexity()) <=
                 1e-9 * want.perplexity());
    }
  }
  // Standard input, and the text summary.
  const auto text = run_cli("perplexity " + m.arg(), sample_text());
  BOOST_REQUIRE_EQUAL(text.status, 0);
  BOOST_TEST(contains(text.out, "perplexity  "));
  BOOST_TEST(contains(text.out, "standard input: " + std::to_string(ids.size()) + " tokens"));
}

BOOST_AUTO_TEST_CASE(what_it_cannot_score_is_named) {
  const SmallVocabModel& m = SmallVocabModel::tiny();
  struct Case {
    std::string args, input, says;
    int status;
  };
  const Case cases[] = {
      {"--file /nonexistent/text.txt", "", "cannot open text file '/nonexistent/text.txt'", 1},
      {"--context 65", sample_text(), "context 65 must be from 2 to the model's n_positions 64", 1},
      {"--stride 70", sample_text(), "stride 70 must be from 1 to the context 64", 1},
      {"--stride 0", sample_text(), "--stride must be positive", 2},
      {"--batch-size 0", sample_text(), "--batch-size must be positive", 2},
      {"", "a", "standard input: perplexity: the text is 1 token(s) long", 1},
      {"", "", "the text is 0 token(s) long", 1},
      {"", "caf\xc3 au lait", "standard input: text is not valid UTF-8", 1},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.args << " with " << c.input.size() << " bytes in") {
      const auto r = run_cli("perplexity " + m.arg() + " " + c.args, c.input, true);
      BOOST_TEST(r.status == c.status);
      BOOST_TEST(contains(r.out, c.says), r.out);
    }
  }
}
