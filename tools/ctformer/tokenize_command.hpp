// `ctformer tokenize`: GPT-2 token ids of text on stdin, or (--decode) text of ids on stdin.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "arguments.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/tokenizer/gpt2_tokenizer.hpp"
#include "ctformer/tokenizer/utf8.hpp"

namespace ctformer::cli {

inline constexpr std::string_view kTokenizeUsage =
    R"(usage: ctformer tokenize --model DIR [--json] [--decode] [--no-special] [--lossy]

Reads text on stdin (all of it, byte for byte: a trailing newline is text too) and prints its GPT-2
token ids on one line, separated by spaces.

options:
  --model DIR    model directory holding vocab.json and merges.txt (required)
  --json         read a JSON array of strings; print a JSON array of id arrays, one per string
  --decode       the reverse: read token ids separated by white space and print their bytes
                 exactly; with --json read a JSON array of id arrays and print a JSON array of
                 strings (invalid UTF-8 in a decoded string becomes U+FFFD, as JSON needs)
  --no-special   encode "<|endoftext|>" in the text as plain text; by default it is the special
                 end-of-text token (50256), as in Hugging Face's tokenizer
  --lossy        replace invalid UTF-8 in the input by U+FFFD instead of failing
  -h, --help     print this help)";

namespace detail {

inline std::string read_all_stdin() {
  std::string data;
  char buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) data.append(buf, n);
  if (std::ferror(stdin)) throw FileError("cannot read stdin");
  return data;
}

inline void write_stdout(std::string_view s) {
  if (!s.empty() && std::fwrite(s.data(), 1, s.size(), stdout) != s.size())
    throw FileError("cannot write to stdout");
}

inline nlohmann::json parse_stdin_json(const std::string& data, std::string_view expected) {
  try {
    return nlohmann::json::parse(data);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError("stdin is not valid JSON (expected " + std::string(expected) +
                     "): " + e.what());
  }
}

inline std::vector<std::int32_t> parse_id_list(std::string_view data) {
  std::vector<std::int32_t> ids;
  std::size_t i = 0;
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  };
  while (i < data.size()) {
    while (i < data.size() && is_space(data[i])) ++i;
    if (i == data.size()) break;
    std::size_t j = i;
    while (j < data.size() && !is_space(data[j])) ++j;
    const std::string_view word = data.substr(i, j - i);
    std::size_t k = 0;
    long long value = 0;
    bool ok = !word.empty() && word.size() <= 10;
    if (ok && word[0] == '-') k = 1;
    ok = ok && k < word.size();
    for (; ok && k < word.size(); ++k) {
      if (word[k] < '0' || word[k] > '9')
        ok = false;
      else
        value = value * 10 + (word[k] - '0');
    }
    if (!ok || value > 0x7FFFFFFF)
      throw InputError("stdin: \"" + std::string(word.substr(0, 40)) +
                       "\" is not a token id (expected integers separated by white space)");
    ids.push_back(static_cast<std::int32_t>(word[0] == '-' ? -value : value));
    i = j;
  }
  return ids;
}

}  // namespace detail

inline int tokenize_main(int argc, char** argv) {
  Arguments args(argc, argv, std::string(kTokenizeUsage));
  if (args.printed_help()) return 0;
  const auto model = args.value("--model");
  const bool json = args.flag("--json"), decode = args.flag("--decode"),
             no_special = args.flag("--no-special"), lossy = args.flag("--lossy");
  args.finish();
  if (!model || model->empty()) args.fail("--model DIR is required");
  if (decode && (no_special || lossy))
    args.fail("--no-special and --lossy apply to encoding, not to --decode");

  const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::from_directory(*model);
  const SpecialTokens special = no_special ? SpecialTokens::as_text : SpecialTokens::allowed;
  const InvalidUtf8 invalid = lossy ? InvalidUtf8::replace : InvalidUtf8::error;
  const std::string input = detail::read_all_stdin();

  if (!decode && !json) {
    const std::vector<std::int32_t> ids = tokenizer.encode(input, special, invalid);
    std::string out;
    out.reserve(ids.size() * 6 + 1);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ' ';
      out += std::to_string(ids[i]);
    }
    out += '\n';
    detail::write_stdout(out);
  } else if (!decode) {
    const nlohmann::json texts = detail::parse_stdin_json(input, "a JSON array of strings");
    if (!texts.is_array())
      throw InputError("stdin: expected a JSON array of strings, got a " +
                       std::string(texts.type_name()));
    nlohmann::json result = nlohmann::json::array();
    for (std::size_t i = 0; i < texts.size(); ++i) {
      if (!texts[i].is_string())
        throw InputError("stdin: element " + std::to_string(i) + " is a " +
                         std::string(texts[i].type_name()) + ", expected a string");
      result.push_back(tokenizer.encode(texts[i].get_ref<const std::string&>(), special, invalid));
    }
    detail::write_stdout(result.dump() + "\n");
  } else if (!json) {
    detail::write_stdout(tokenizer.decode(detail::parse_id_list(input)));
  } else {
    const nlohmann::json lists = detail::parse_stdin_json(input, "a JSON array of id arrays");
    if (!lists.is_array())
      throw InputError("stdin: expected a JSON array of id arrays, got a " +
                       std::string(lists.type_name()));
    nlohmann::json result = nlohmann::json::array();
    for (std::size_t i = 0; i < lists.size(); ++i) {
      const nlohmann::json& list = lists[i];
      if (!list.is_array())
        throw InputError("stdin: element " + std::to_string(i) + " is a " +
                         std::string(list.type_name()) + ", expected an array of token ids");
      std::vector<std::int32_t> ids;
      ids.reserve(list.size());
      for (std::size_t k = 0; k < list.size(); ++k) {
        const nlohmann::json& v = list[k];
        if (!v.is_number_integer() || v.get<std::int64_t>() < INT32_MIN ||
            v.get<std::int64_t>() > INT32_MAX)
          throw InputError("stdin: element " + std::to_string(i) + "[" + std::to_string(k) +
                           "] = " + v.dump() + " is not a token id (expected an integer)");
        ids.push_back(static_cast<std::int32_t>(v.get<std::int64_t>()));
      }
      result.push_back(to_valid_utf8(tokenizer.decode(ids)));
    }
    detail::write_stdout(result.dump() + "\n");
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace ctformer::cli
