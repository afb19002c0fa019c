// `ctformer tokenize` end to end: runs the built CLI on the reference vectors.
#define BOOST_TEST_MODULE cli_tokenize
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/run_cli.hpp"
#include "support/test_support.hpp"

namespace fs = std::filesystem;

using ctformer::test::RequireGpt2Vocab;
BOOST_TEST_GLOBAL_FIXTURE(RequireGpt2Vocab);

namespace {

using Result = ctformer::test::CliResult;
using ctformer::test::run_cli;

std::string model_arg() {
  return "--model '" + ctformer::test::gpt2_vocab_dir()->string() + "'";
}

const nlohmann::json& vectors() {
  static const nlohmann::json doc = [] {
    std::ifstream in(std::filesystem::path(TOKENIZER_VECTORS));
    return nlohmann::json::parse(in);
  }();
  return doc;
}

std::string join_ids(const nlohmann::json& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(ids[i].get<int>());
  }
  return s + "\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(help_prints_usage_and_exits_zero) {
  const Result r = run_cli("tokenize --help", "");
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.out.find("usage: ctformer tokenize") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(usage_mistakes_exit_two) {
  BOOST_TEST(run_cli("tokenize", "x").status == 2);
  BOOST_TEST(run_cli("tokenize " + model_arg() + " --bogus", "x").status == 2);
  BOOST_TEST(run_cli("tokenize --model", "x").status == 2);
}

BOOST_AUTO_TEST_CASE(text_mode_matches_references) {
  // Each string through stdin, byte for byte, with and without --no-special.
  std::size_t n = 0;
  for (const auto& e : vectors().at("strings")) {
    const std::string cat = e.at("category").get<std::string>();
    if (cat != "special_token" && cat != "ascii" && cat != "emoji" && cat != "whitespace") continue;
    const std::string text = e.at("text").get<std::string>();
    const Result r = run_cli("tokenize " + model_arg(), text);
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out == join_ids(e.at("ids")));
    if (e.contains("ids_plain")) {
      const Result p = run_cli("tokenize --no-special " + model_arg(), text);
      BOOST_TEST(p.out == join_ids(e.at("ids_plain")));
    }
    if (++n >= 30) break;
  }
}

BOOST_AUTO_TEST_CASE(json_mode_encodes_every_reference_string) {
  nlohmann::json texts = nlohmann::json::array(), expected = nlohmann::json::array(),
                 expected_plain = nlohmann::json::array();
  for (const auto& e : vectors().at("strings")) {
    texts.push_back(e.at("text"));
    expected.push_back(e.at("ids"));
    expected_plain.push_back(e.contains("ids_plain") ? e.at("ids_plain") : e.at("ids"));
  }
  const Result r = run_cli("tokenize --json " + model_arg(), texts.dump());
  BOOST_TEST_REQUIRE(r.status == 0);
  BOOST_TEST(nlohmann::json::parse(r.out) == expected);
  const Result p = run_cli("tokenize --json --no-special " + model_arg(), texts.dump());
  BOOST_TEST(nlohmann::json::parse(p.out) == expected_plain);

  const Result d = run_cli("tokenize --json --decode " + model_arg(), expected.dump());
  BOOST_TEST_REQUIRE(d.status == 0);
  BOOST_TEST(nlohmann::json::parse(d.out) == texts);
}

BOOST_AUTO_TEST_CASE(decode_reverses_encode_byte_for_byte) {
  std::size_t n = 0;
  for (const auto& e : vectors().at("strings")) {
    if (e.at("category") != "scripts" && e.at("category") != "emoji") continue;
    if (n++ % 4 != 0) continue;  // a sample: each run loads the vocabulary
    const Result d = run_cli("tokenize --decode " + model_arg(), join_ids(e.at("ids")));
    BOOST_TEST(d.status == 0);
    BOOST_TEST(d.out == e.at("text").get<std::string>());
  }
}

BOOST_AUTO_TEST_CASE(bad_input_fails_with_a_message) {
  const auto& bad = vectors().at("invalid_utf8").at(0);
  std::string bytes;
  const std::string hex = bad.at("hex").get<std::string>();
  for (std::size_t i = 0; i < hex.size(); i += 2)
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  const Result r = run_cli("tokenize " + model_arg(), bytes, true);
  BOOST_TEST(r.status == 1);
  BOOST_TEST(r.out.find("byte offset " + std::to_string(bad.at("error_offset").get<int>())) !=
                 std::string::npos,
             r.out);
  const Result lossy = run_cli("tokenize --lossy " + model_arg(), bytes);
  BOOST_TEST(lossy.status == 0);
  BOOST_TEST(lossy.out == join_ids(bad.at("lossy_ids")));

  const Result range = run_cli("tokenize --decode " + model_arg(), "464 50257", true);
  BOOST_TEST(range.status == 1);
  BOOST_TEST(range.out.find("50257") != std::string::npos, range.out);
  BOOST_TEST(run_cli("tokenize --decode " + model_arg(), "12 abc").status == 1);
  BOOST_TEST(run_cli("tokenize --json " + model_arg(), "[\"a\", 3]").status == 1);
  BOOST_TEST(run_cli("tokenize --json " + model_arg(), "[\"a\"").status == 1);
  BOOST_TEST(run_cli("tokenize --model /nonexistent/dir", "x").status == 1);
}
