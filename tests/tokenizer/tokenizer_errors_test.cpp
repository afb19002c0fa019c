// Load errors, decode errors and the streaming decoder's hold-back, on a small synthetic byte-level
// vocabulary written to a temporary directory (no GPT-2 files needed).
#define BOOST_TEST_MODULE tokenizer_errors
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/tokenizer/tokenizer.hpp"

namespace fs = std::filesystem;

namespace {

// bytes_to_unicode() from OpenAI's GPT-2 encoder.py, written out independently of the library.
std::string spell(std::string_view bytes) {
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<int> cs = bs;
  int n = 0;
  for (int b = 0; b < 256; ++b)
    if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
      bs.push_back(b);
      cs.push_back(256 + n++);
    }
  std::string out;
  for (unsigned char c : bytes) {
    const auto it = std::find(bs.begin(), bs.end(), c);
    const auto cp = static_cast<std::uint32_t>(cs[it - bs.begin()]);
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

// 256 byte tokens, then "ab", "abc", "<|endoftext|>"; merges "a b", "ab c".
nlohmann::json synthetic_vocab() {
  nlohmann::json v = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) v[spell(std::string(1, static_cast<char>(b)))] = b;
  v["ab"] = 256;
  v["abc"] = 257;
  v["<|endoftext|>"] = 258;
  return v;
}
const std::string kMerges = "#version: 0.2\na b\nab c\n";

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("ctformer_tok_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path / name, std::ios::binary) << content;
  }
};

template <class Exception>
void expect_error(const fs::path& dir, std::initializer_list<std::string> needles) {
  try {
    (void)ctformer::Gpt2Tokenizer::from_directory(dir);
    BOOST_ERROR("no exception");
  } catch (const Exception& e) {
    const std::string what = e.what();
    for (const auto& needle : needles)
      BOOST_TEST(what.find(needle) != std::string::npos, "'" << needle << "' in: " << what);
  } catch (const std::exception& e) {
    BOOST_ERROR("wrong exception type: " << e.what());
  }
}

TempDir with_files(const std::string& vocab, const std::string& merges) {
  TempDir d;
  d.write("vocab.json", vocab);
  d.write("merges.txt", merges);
  return d;
}

}  // namespace

BOOST_AUTO_TEST_CASE(synthetic_vocabulary_loads) {
  const TempDir d = with_files(synthetic_vocab().dump(), kMerges);
  const auto tok = ctformer::Gpt2Tokenizer::from_directory(d.path);
  BOOST_TEST(tok.vocab_size() == 259u);
  BOOST_TEST(tok.eos_token_id() == 258);
  BOOST_TEST(tok.merge_count() == 2u);
  BOOST_TEST(tok.encode("abc") == std::vector<std::int32_t>{257});
  BOOST_TEST(tok.decode(tok.encode("x abc<|endoftext|>\xC3\xA9")) == "x abc<|endoftext|>\xC3\xA9");
}

BOOST_AUTO_TEST_CASE(missing_directory_and_files_are_file_errors) {
  const TempDir d;
  expect_error<ctformer::FileError>(d.path / "nope", {"nope", "vocab.json"});
  expect_error<ctformer::FileError>(d.path, {"vocab.json", "no such file"});
  d.write("vocab.json", synthetic_vocab().dump());
  expect_error<ctformer::FileError>(d.path, {"merges.txt", "no such file"});
}

BOOST_AUTO_TEST_CASE(malformed_vocab_json_is_a_format_error) {
  expect_error<ctformer::FormatError>(with_files("{\"a\": 1,", kMerges).path,
                                      {"vocab.json", "not valid JSON", "parse error"});
  expect_error<ctformer::FormatError>(with_files("[1, 2]", kMerges).path,
                                      {"vocab.json", "expected a JSON object", "array"});
  expect_error<ctformer::FormatError>(with_files("{}", kMerges).path, {"vocab.json", "empty"});
  auto v = synthetic_vocab();
  v["abc"] = "257";
  expect_error<ctformer::FormatError>(with_files(v.dump(), kMerges).path,
                                      {"vocab.json", "\"abc\"", "not an integer"});
  v = synthetic_vocab();
  v["abc"] = 9999;
  expect_error<ctformer::FormatError>(with_files(v.dump(), kMerges).path,
                                      {"vocab.json", "\"abc\"", "9999", "0..258"});
  v = synthetic_vocab();
  v.erase("<|endoftext|>");
  v["zz"] = 258;
  expect_error<ctformer::FormatError>(with_files(v.dump(), kMerges).path,
                                      {"vocab.json", "<|endoftext|>"});
  v = synthetic_vocab();
  v.erase("abc");
  v["a\xE2\x82\xAC"] = 257;  // U+20AC is not one of the 256 byte-level characters
  expect_error<ctformer::FormatError>(with_files(v.dump(), kMerges).path,
                                      {"vocab.json", "byte-level alphabet", "257"});
  v = synthetic_vocab();
  v.erase(spell("\x01"));
  v["abcd"] = 1;
  expect_error<ctformer::FormatError>(with_files(v.dump(), kMerges).path,
                                      {"vocab.json", "single byte 0x01"});
}

BOOST_AUTO_TEST_CASE(bad_merges_lines_are_format_errors_naming_the_line) {
  const std::string vocab = synthetic_vocab().dump();
  expect_error<ctformer::FormatError>(with_files(vocab, "#version: 0.2\na b\nab c d\n").path,
                                      {"merges.txt line 3", "two tokens", "ab c d"});
  expect_error<ctformer::FormatError>(with_files(vocab, "#version: 0.2\nab\n").path,
                                      {"merges.txt line 2", "two tokens"});
  expect_error<ctformer::FormatError>(with_files(vocab, "a b\nab  c\n").path,
                                      {"merges.txt line 2", "two tokens"});
  expect_error<ctformer::FormatError>(with_files(vocab, "#version: 0.2\na b\nabc d\n").path,
                                      {"merges.txt line 3", "\"abcd\"", "not in the vocabulary"});
  expect_error<ctformer::FormatError>(with_files(vocab, "#version: 0.2\nb c\n").path,
                                      {"merges.txt line 2", "\"bc\"", "not in the vocabulary"});
  expect_error<ctformer::FormatError>(with_files(vocab, "#version: 0.2\nxy z\n").path,
                                      {"merges.txt line 2", "\"xy\"", "not in the vocabulary"});
  expect_error<ctformer::FormatError>(with_files(vocab, "#version: 0.2\na b\na b\n").path,
                                      {"merges.txt line 3", "already merged"});
}

BOOST_AUTO_TEST_CASE(decode_out_of_range_is_an_input_error) {
  const TempDir d = with_files(synthetic_vocab().dump(), kMerges);
  const auto tok = ctformer::Gpt2Tokenizer::from_directory(d.path);
  for (std::int32_t bad : {-5, 259, 100000}) {
    try {
      (void)tok.decode(std::vector<std::int32_t>{97, bad});
      BOOST_ERROR("no exception for " << bad);
    } catch (const ctformer::InputError& e) {
      const std::string what = e.what();
      BOOST_TEST(what.find("token id " + std::to_string(bad)) != std::string::npos, what);
      BOOST_TEST(what.find("0..258") != std::string::npos, what);
    }
  }
}

BOOST_AUTO_TEST_CASE(invalid_utf8_error_names_the_offset_and_lossy_mode_replaces) {
  const TempDir d = with_files(synthetic_vocab().dump(), kMerges);
  const auto tok = ctformer::Gpt2Tokenizer::from_directory(d.path);
  const std::string bad = "ab\xE2\x82 ok";  // a truncated 3-byte sequence at offset 2
  BOOST_CHECK_EXCEPTION((void)tok.encode(bad), ctformer::InputError,
                        [](const ctformer::InputError& e) {
                          return std::string(e.what()).find("byte offset 2") != std::string::npos;
                        });
  const auto ids =
      tok.encode(bad, ctformer::SpecialTokens::allowed, ctformer::InvalidUtf8::replace);
  BOOST_TEST(tok.decode(ids) == "ab\xEF\xBF\xBD ok");
}

BOOST_AUTO_TEST_CASE(stream_decoder_holds_back_a_split_character) {
  const TempDir d = with_files(synthetic_vocab().dump(), kMerges);
  const auto tok = ctformer::Gpt2Tokenizer::from_directory(d.path);
  const std::string emoji = "\xF0\x9F\x98\x80";  // U+1F600: four byte tokens here
  const auto ids = tok.encode("a" + emoji + "b");
  BOOST_TEST_REQUIRE(ids.size() == 6u);
  ctformer::Utf8StreamDecoder stream(tok);
  BOOST_TEST(stream.push(ids[0]) == "a");
  BOOST_TEST(stream.push(ids[1]).empty());
  BOOST_TEST(stream.pending_bytes() == 1u);
  BOOST_TEST(stream.push(ids[2]).empty());
  BOOST_TEST(stream.push(ids[3]).empty());
  BOOST_TEST(stream.push(ids[4]) == emoji);
  BOOST_TEST(stream.push(ids[5]) == "b");
  BOOST_TEST(stream.finish().empty());
  // A stream that ends inside a character: finish() flushes U+FFFD.
  BOOST_TEST(stream.push(ids[1]).empty());
  BOOST_TEST(stream.push(ids[2]).empty());
  BOOST_TEST(stream.finish() == "\xEF\xBF\xBD");
  BOOST_TEST(stream.pending_bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(random_bytes_never_misbehave) {
  // Properties, not fixed outputs: strict encode either throws InputError at the offset
  // find_invalid_utf8 reports or round-trips; lossy encode always succeeds and round-trips to
  // to_valid_utf8(input), which is valid UTF-8 and equal to the input exactly when that is valid.
  const TempDir d = with_files(synthetic_vocab().dump(), kMerges);
  const auto tok = ctformer::Gpt2Tokenizer::from_directory(d.path);
  std::mt19937 rng(12345);
  const unsigned char interesting[] = {0x00, ' ',  '\'', 'a',  's',  0x7F, 0x80, 0xBF, 0xC0, 0xC2,
                                       0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0xA0, 0x9F};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s(rng() % 24, '\0');
    for (char& c : s)
      c = static_cast<char>(rng() % 2 ? interesting[rng() % sizeof interesting] : rng() % 256);
    const std::size_t bad = ctformer::find_invalid_utf8(s);
    const std::string repaired = ctformer::to_valid_utf8(s);
    BOOST_TEST_REQUIRE(ctformer::is_valid_utf8(repaired));
    BOOST_TEST_REQUIRE((repaired == s) == (bad == std::string::npos));
    try {
      const auto ids = tok.encode(s);
      BOOST_TEST_REQUIRE(bad == std::string::npos);
      BOOST_TEST_REQUIRE(tok.decode(ids) == s);
    } catch (const ctformer::InputError& e) {
      BOOST_TEST_REQUIRE(bad != std::string::npos);
      BOOST_TEST_REQUIRE(std::string(e.what()).find("byte offset " + std::to_string(bad)) !=
                         std::string::npos);
    }
    const auto lossy =
        tok.encode(s, ctformer::SpecialTokens::allowed, ctformer::InvalidUtf8::replace);
    BOOST_TEST_REQUIRE(tok.decode(lossy) == repaired);
    ctformer::Utf8StreamDecoder stream(tok);
    std::string streamed;
    for (std::int32_t id :
         tok.encode(s, ctformer::SpecialTokens::as_text, ctformer::InvalidUtf8::replace))
      streamed += stream.push(id);
    streamed += stream.finish();
    BOOST_TEST_REQUIRE(streamed == repaired);
  }
}
