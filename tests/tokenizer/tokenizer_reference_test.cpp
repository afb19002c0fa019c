// The GPT-2 tokenizer against reference vectors made by tiktoken and Hugging Face tokenizers
// (tools/make_tokenizer_vectors.py, tests/tokenizer/data/gpt2_vectors.json), on the real
// vocabulary.
#define BOOST_TEST_MODULE tokenizer_reference
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/tokenizer/tokenizer.hpp"
#include "support/test_support.hpp"

using ctformer::test::RequireGpt2Vocab;
BOOST_TEST_GLOBAL_FIXTURE(RequireGpt2Vocab);

namespace {

const ctformer::Gpt2Tokenizer& tokenizer() {
  static const auto tok =
      ctformer::Gpt2Tokenizer::from_directory(*ctformer::test::gpt2_vocab_dir());
  return tok;
}

const nlohmann::json& vectors() {
  static const nlohmann::json doc = [] {
    std::ifstream in(std::filesystem::path(TOKENIZER_VECTORS));
    BOOST_REQUIRE_MESSAGE(in, "cannot open " TOKENIZER_VECTORS);
    return nlohmann::json::parse(in);
  }();
  return doc;
}

std::vector<std::int32_t> ids_of(const nlohmann::json& j) {
  return j.get<std::vector<std::int32_t>>();
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::string show(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out.size() > 120 ? out.substr(0, 120) + "..." : out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(vocabulary_loads) {
  const auto& tok = tokenizer();
  BOOST_TEST(tok.vocab_size() == 50257u);
  BOOST_TEST(tok.eos_token_id() == 50256);
  BOOST_TEST(tok.merge_count() == 50000u);
  BOOST_TEST(tok.decode(std::vector<std::int32_t>{50256}) == "<|endoftext|>");
}

BOOST_AUTO_TEST_CASE(corpus_is_large_and_covers_every_category) {
  const auto& strings = vectors().at("strings");
  BOOST_TEST(strings.size() >= 500u);
  std::set<std::string> categories;
  for (const auto& e : strings) categories.insert(e.at("category").get<std::string>());
  for (const char* c :
       {"empty", "ascii", "contractions", "whitespace", "digits", "punctuation", "latin", "scripts",
        "emoji", "zero_width_nbsp", "special_token", "random_mix", "random_codepoints"})
    BOOST_TEST(categories.count(c) == 1u, "category " << c);
}

BOOST_AUTO_TEST_CASE(encode_matches_references_with_special_tokens_allowed) {
  std::size_t checked = 0, failed = 0;
  for (const auto& e : vectors().at("strings")) {
    const std::string text = e.at("text").get<std::string>();
    const auto expected = ids_of(e.at("ids"));
    const auto got = tokenizer().encode(text);
    if (got != expected && ++failed <= 20)
      BOOST_ERROR("encode mismatch for \"" << show(text) << "\" (" << e.at("category") << ")");
    ++checked;
  }
  BOOST_TEST(failed == 0u);
  BOOST_TEST_MESSAGE("encode (special allowed): " << checked << " strings checked");
}

BOOST_AUTO_TEST_CASE(encode_matches_references_with_special_tokens_as_text) {
  std::size_t failed = 0, with_special = 0;
  for (const auto& e : vectors().at("strings")) {
    const std::string text = e.at("text").get<std::string>();
    const auto expected = ids_of(e.contains("ids_plain") ? e.at("ids_plain") : e.at("ids"));
    if (e.contains("ids_plain")) ++with_special;
    const auto got = tokenizer().encode(text, ctformer::SpecialTokens::as_text);
    if (got != expected && ++failed <= 20)
      BOOST_ERROR("encode (as_text) mismatch for \"" << show(text) << "\"");
    for (std::int32_t id : got) BOOST_TEST_REQUIRE(id != tokenizer().eos_token_id());
  }
  BOOST_TEST(failed == 0u);
  BOOST_TEST(with_special >= 10u);
}

BOOST_AUTO_TEST_CASE(decode_round_trips_every_string) {
  for (const auto& e : vectors().at("strings")) {
    const std::string text = e.at("text").get<std::string>();
    BOOST_TEST(tokenizer().decode(ids_of(e.at("ids"))) == text,
               "decode of \"" << show(text) << "\"");
    if (e.contains("ids_plain")) BOOST_TEST(tokenizer().decode(ids_of(e.at("ids_plain"))) == text);
    BOOST_TEST(tokenizer().decode(tokenizer().encode(text)) == text);
  }
}

BOOST_AUTO_TEST_CASE(decode_matches_reference_bytes) {
  for (const auto& e : vectors().at("decode")) {
    const auto ids = ids_of(e.at("ids"));
    BOOST_TEST(show(tokenizer().decode(ids)) == show(from_hex(e.at("hex").get<std::string>())));
  }
}

BOOST_AUTO_TEST_CASE(batch_encode_equals_single_encodes) {
  std::vector<std::string> texts;
  for (const auto& e : vectors().at("strings")) texts.push_back(e.at("text").get<std::string>());
  const auto batch = tokenizer().encode_batch(texts);
  BOOST_TEST_REQUIRE(batch.size() == texts.size());
  std::size_t i = 0;
  for (const auto& e : vectors().at("strings")) BOOST_TEST(batch[i++] == ids_of(e.at("ids")));
  std::vector<std::string_view> views(texts.begin(), texts.end());
  BOOST_TEST(tokenizer().encode_batch(views, ctformer::SpecialTokens::allowed) == batch);
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_an_error_with_the_byte_offset) {
  const auto& cases = vectors().at("invalid_utf8");
  BOOST_TEST(cases.size() >= 20u);
  for (const auto& e : cases) {
    const std::string bytes = from_hex(e.at("hex").get<std::string>());
    const auto offset = e.at("error_offset").get<std::size_t>();
    BOOST_TEST(ctformer::find_invalid_utf8(bytes) == offset, "offset for " << show(bytes));
    try {
      (void)tokenizer().encode(bytes);
      BOOST_ERROR("no exception for " << show(bytes));
    } catch (const ctformer::InputError& err) {
      const std::string what = err.what();
      BOOST_TEST(what.find("byte offset " + std::to_string(offset)) != std::string::npos, what);
    }
  }
}

BOOST_AUTO_TEST_CASE(lossy_encode_matches_references) {
  for (const auto& e : vectors().at("invalid_utf8")) {
    const std::string bytes = from_hex(e.at("hex").get<std::string>());
    const auto got =
        tokenizer().encode(bytes, ctformer::SpecialTokens::allowed, ctformer::InvalidUtf8::replace);
    BOOST_TEST(got == ids_of(e.at("lossy_ids")), "lossy encode of " << show(bytes));
  }
}

BOOST_AUTO_TEST_CASE(streaming_decoder_emits_only_complete_characters) {
  std::size_t held_back = 0;
  for (const auto& e : vectors().at("strings")) {
    const std::string text = e.at("text").get<std::string>();
    ctformer::Utf8StreamDecoder stream(tokenizer());
    std::string joined;
    for (std::int32_t id : ids_of(e.at("ids"))) {
      const std::string piece = stream.push(id);
      BOOST_TEST(ctformer::is_valid_utf8(piece), "chunk of \"" << show(text) << "\"");
      held_back += stream.pending_bytes() > 0;
      joined += piece;
    }
    joined += stream.finish();
    BOOST_TEST(joined == text, "streamed \"" << show(text) << "\"");
  }
  BOOST_TEST(held_back > 0u);  // the corpus has tokens that end inside a character
}

BOOST_AUTO_TEST_CASE(streaming_decoder_replaces_bytes_that_cannot_become_utf8) {
  for (const auto& e : vectors().at("decode")) {
    const auto ids = ids_of(e.at("ids"));
    ctformer::Utf8StreamDecoder stream(tokenizer());
    std::string joined;
    for (std::int32_t id : ids) {
      const std::string piece = stream.push(id);
      BOOST_TEST(ctformer::is_valid_utf8(piece));
      joined += piece;
    }
    joined += stream.finish();
    BOOST_TEST(show(joined) == show(ctformer::to_valid_utf8(tokenizer().decode(ids))));
  }
}

BOOST_AUTO_TEST_CASE(decode_rejects_ids_out_of_range) {
  for (std::int32_t bad : {-1, 50257, 1 << 30}) {
    const std::vector<std::int32_t> ids{464, bad};
    BOOST_CHECK_EXCEPTION((void)tokenizer().decode(ids), ctformer::InputError,
                          [&](const ctformer::InputError& e) {
                            const std::string what = e.what();
                            return what.find(std::to_string(bad)) != std::string::npos &&
                                   what.find("50257") != std::string::npos;
                          });
    ctformer::Utf8StreamDecoder stream(tokenizer());
    BOOST_CHECK_THROW(stream.push(bad), ctformer::InputError);
  }
}
