// The fuzz targets: each feeds arbitrary bytes to one of the library's parsers of outside input
// and checks what it returns. Shared by the libFuzzer programs (fuzz_main.cpp, built with clang by
// scripts/fuzz.sh) and by fuzz_replay_test, which runs every committed seed and regression input
// through them in the ordinary test suite, with any compiler.
//
// Bad input may only end in the exception the parser documents (ctformer::Error or a subclass).
// Any other exception, a crash, a sanitizer report, a leak, a hang, or a broken invariant
// (InvariantViolation) is a finding.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "completions_api.hpp"  // tools/ctformer
#include "ctformer/core/error.hpp"
#include "ctformer/generation/generation_params.hpp"
#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/safetensors.hpp"
#include "ctformer/tokenizer/tokenizer.hpp"
#include "prompt_file.hpp"  // tools/ctformer

namespace ctformer::fuzz {

// A parser returned something that contradicts its contract.
struct InvariantViolation : std::logic_error {
  using std::logic_error::logic_error;
};

inline void check(bool ok, const std::string& what) {
  if (!ok) throw InvariantViolation(what);
}

inline std::string_view as_text(std::span<const std::uint8_t> in) {
  return {reinterpret_cast<const char*>(in.data()), in.size()};
}

// ---- safetensors: SafetensorsFile's header and layout validation, and the tensors it accepts ----
inline void safetensors(std::span<const std::uint8_t> in) {
  std::optional<SafetensorsFile> file;
  try {
    file.emplace(SafetensorsFile::from_bytes(std::as_bytes(in), "fuzz.safetensors"));
  } catch (const FormatError&) {
    return;
  }
  // Accepted: every tensor is what its header entry says (read here independently), lies in the
  // data section, has as many bytes as its shape and dtype need, overlaps no other, and loads.
  check(in.size() >= 8, "accepted a file shorter than its header length");
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | in[i];
  check(header_len <= in.size() - 8, "accepted a header longer than the file");
  const nlohmann::json header = nlohmann::json::parse(
      in.begin() + 8, in.begin() + 8 + static_cast<std::ptrdiff_t>(header_len));
  const std::span<const std::uint8_t> data = in.subspan(8 + header_len);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const SafetensorsTensor& t : file->tensors()) {
    check(t.name != "__metadata__" && header.contains(t.name), "a tensor not in the header");
    const auto info = std::ranges::find(detail::kSafetensorsDTypes, t.dtype_name,
                                        &detail::SafetensorsDTypeInfo::name);
    check(info != std::end(detail::kSafetensorsDTypes), "accepted unknown dtype " + t.dtype_name);
    check(header[t.name]["dtype"] == t.dtype_name, "dtype differs from the header");
    check(header[t.name]["shape"] == t.shape, "shape differs from the header");
    std::int64_t numel = 1;
    for (const std::int64_t d : t.shape) check(d >= 0, "accepted a negative dimension");
    if (std::ranges::find(t.shape, 0) != t.shape.end()) {
      numel = 0;
    } else {
      for (const std::int64_t d : t.shape) {
        check(d <= static_cast<std::int64_t>(data.size()) / numel,
              "tensor '" + t.name + "' has more elements than the data section has bytes");
        numel *= d;
      }
    }
    check(numel == t.numel, "numel is not the product of the shape");
    const auto begin = header[t.name]["data_offsets"][0].get<std::uint64_t>();
    const auto end = header[t.name]["data_offsets"][1].get<std::uint64_t>();
    check(begin <= end && end <= data.size(), "tensor '" + t.name + "' lies outside the data");
    check(end - begin == static_cast<std::uint64_t>(numel) * info->size &&
              t.bytes.size() == end - begin,
          "tensor '" + t.name + "' has " + std::to_string(t.bytes.size()) + " bytes for " +
              std::to_string(numel) + " elements of " + t.dtype_name);
    check(std::ranges::equal(std::as_bytes(data.subspan(begin, end - begin)), t.bytes),
          "tensor '" + t.name + "' holds other bytes than its data_offsets say");
    if (begin != end) ranges.emplace_back(begin, end);
    check(file->find(t.name) == &t, "find() does not return the tensor of that name");
  }
  check(file->tensors().size() + (header.contains("__metadata__") ? 1 : 0) == header.size(),
        "a header entry was skipped");
  std::ranges::sort(ranges);
  for (std::size_t i = 1; i < ranges.size(); ++i)
    check(ranges[i].first >= ranges[i - 1].second, "accepted overlapping tensors");
  for (const SafetensorsTensor& t : file->tensors()) {
    if (!t.dtype) {
      try {
        file->load_float(t.name, t.shape);
        check(false, "load_float accepted dtype " + t.dtype_name);
      } catch (const FormatError&) {
      }
      continue;
    }
    const std::vector<float> values = file->load_float(t.name, t.shape);
    check(values.size() == static_cast<std::size_t>(t.numel), "load_float returned a wrong count");
    std::vector<std::int64_t> wrong = t.shape;
    wrong.push_back(1);
    try {
      file->load_float(t.name, wrong);
      check(false, "load_float accepted a wrong shape");
    } catch (const FormatError&) {
    }
  }
}

// ---- config: config.json (Gpt2Config) and generation_config.json (GenerationParams) ----
inline void config(std::span<const std::uint8_t> in) {
  const nlohmann::json j = nlohmann::json::parse(in.begin(), in.end(), nullptr, false);
  if (j.is_discarded()) return;  // not JSON: from_file reports that before from_json runs
  try {
    const Gpt2Config c = Gpt2Config::from_json(j, "fuzz/config.json");
    check(c.vocab_size > 0 && c.n_positions > 0 && c.n_embd > 0 && c.n_layer > 0 && c.n_head > 0 &&
              c.n_inner > 0,
          "accepted a non-positive size");
    check(c.n_embd % c.n_head == 0, "accepted n_embd not divisible by n_head");
    check(c.bos_token_id >= 0 && c.bos_token_id < c.vocab_size && c.eos_token_id >= 0 &&
              c.eos_token_id < c.vocab_size,
          "accepted bos/eos outside the vocabulary");
    check(c.layer_norm_epsilon > 0.0f && c.layer_norm_epsilon < 1.0f,
          "accepted layer_norm_epsilon outside (0, 1)");
  } catch (const ConfigError&) {
  }
  try {
    const GenerationParams p = GenerationParams::from_json(j, "fuzz/generation_config.json");
    p.validate();  // what from_json returns is valid
    check(p.token_budget(1, 1024) >= 0, "negative token budget");
  } catch (const ConfigError&) {
  }
}

// ---- tokenizer: vocab.json + merges.txt, then encode/decode with what loaded ----

// Encodes `text` every way and checks the round trips: decode(encode(t)) == t for valid UTF-8, and
// == to_valid_utf8(t) with InvalidUtf8::replace; the streaming decoder gives the same text.
inline void check_encode(const Gpt2Tokenizer& tok, std::string_view text) {
  const bool valid = is_valid_utf8(text);
  const std::string repaired = to_valid_utf8(text);
  check(is_valid_utf8(repaired), "to_valid_utf8 returned invalid UTF-8");
  check(!valid || repaired == text, "to_valid_utf8 changed valid text");
  auto ids_in_range = [&](const std::vector<std::int32_t>& ids) {
    for (const std::int32_t id : ids)
      check(id >= 0 && static_cast<std::size_t>(id) < tok.vocab_size(), "id out of range");
  };
  try {
    const std::vector<std::int32_t> ids = tok.encode(text, SpecialTokens::allowed);
    check(valid, "encode accepted invalid UTF-8 with InvalidUtf8::error");
    ids_in_range(ids);
    check(tok.decode(ids) == text, "decode(encode(text)) != text");
    Utf8StreamDecoder stream(tok);
    std::string streamed;
    for (const std::int32_t id : ids) {
      const std::string piece = stream.push(id);
      check(is_valid_utf8(piece), "the stream decoder emitted invalid UTF-8");
      streamed += piece;
    }
    streamed += stream.finish();
    check(streamed == text, "streamed decode != text");
  } catch (const InputError&) {
    check(!valid, "encode refused valid UTF-8");
  }
  const std::vector<std::int32_t> plain =
      tok.encode(text, SpecialTokens::as_text, InvalidUtf8::replace);
  ids_in_range(plain);
  check(tok.decode(plain) == repaired, "decode(encode(text, as_text, replace)) != repaired text");
  if (tok.eos_token_id() >= 0)
    for (const std::int32_t id : plain)
      check(id != tok.eos_token_id(), "SpecialTokens::as_text produced the end-of-text token");
  const std::vector<std::int32_t> lossy =
      tok.encode(text, SpecialTokens::allowed, InvalidUtf8::replace);
  ids_in_range(lossy);
  check(tok.decode(lossy) == repaired, "decode(encode(text, allowed, replace)) != repaired text");
}

// Input: vocab.json, a NUL byte, merges.txt, optionally a NUL byte and a text to encode.
inline void tokenizer_load(std::span<const std::uint8_t> in) {
  const std::string_view all = as_text(in);
  const std::size_t cut1 = all.find('\0');
  const std::string_view vocab = all.substr(0, cut1);
  std::string_view merges, text = "Hello, world! It's 123 <|endoftext|> é 👋";
  if (cut1 != std::string_view::npos) {
    merges = all.substr(cut1 + 1);
    if (const std::size_t cut2 = merges.find('\0'); cut2 != std::string_view::npos) {
      text = merges.substr(cut2 + 1);
      merges = merges.substr(0, cut2);
    }
  }
  std::optional<Gpt2Tokenizer> tok;
  try {
    tok.emplace(Gpt2Tokenizer::from_strings(vocab, merges));
  } catch (const FormatError&) {
    return;
  }
  check(tok->vocab_size() >= 257, "a vocabulary without all 256 bytes and <|endoftext|> loaded");
  check(tok->token_id("<|endoftext|>") == tok->eos_token_id(), "end-of-text id mismatch");
  const std::size_t n = std::min<std::size_t>(tok->vocab_size(), 2000);
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<std::int32_t>(i);
    check(tok->token_id(tok->token_bytes(id)) == id, "token_id(token_bytes(id)) != id");
  }
  check_encode(*tok, text);
}

// The tokenizer that tokenizer_encode uses: GPT-2's own when $CTFORMER_GPT2_DIR holds it (as
// scripts/fuzz.sh arranges), else the small vocabulary committed in tests/fuzz/data.
inline const Gpt2Tokenizer& encode_tokenizer() {
  static const Gpt2Tokenizer tok = [] {
    namespace fs = std::filesystem;
    if (const char* env = std::getenv("CTFORMER_GPT2_DIR"); env && *env) {
      if (fs::is_regular_file(fs::path(env) / "vocab.json"))
        return Gpt2Tokenizer::from_directory(env);
    }
    return Gpt2Tokenizer::from_directory(fs::path(CTFORMER_FUZZ_DIR) / "data");
  }();
  return tok;
}

inline void tokenizer_encode(std::span<const std::uint8_t> in) {
  check_encode(encode_tokenizer(), as_text(in));
}

// ---- prompt_file: the CLI's reader of prompt files (ctformer generate --file) ----
inline void prompt_file(std::span<const std::uint8_t> in) {
  const std::string_view text = as_text(in);
  std::istringstream stream{std::string(text)};
  std::vector<std::string> prompts;
  try {
    prompts = cli::read_prompt_lines(stream, "fuzz prompts");
  } catch (const InputError&) {
    return;
  }
  // Accepted: one prompt per line, none empty, each the line less one trailing '\r'.
  check(!prompts.empty(), "accepted a file with no prompts");
  std::string rebuilt;
  std::size_t pos = 0;
  for (const std::string& p : prompts) {
    check(!p.empty(), "returned an empty prompt");
    check(p.find('\n') == std::string::npos, "a prompt holds a newline");
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    check(p == line, "a prompt is not its line");
    pos = end + 1;
  }
  check(pos >= text.size(), "lines were left unread");
}

// ---- completion_request: the body of POST /v1/completions (ctformer serve), from the network ----
inline void completion_request(std::span<const std::uint8_t> in) {
  const nlohmann::json body = nlohmann::json::parse(in.begin(), in.end(), nullptr, false);
  if (body.is_discarded()) return;  // not JSON: the server answers 400 before parsing fields
  const Gpt2Tokenizer& tok = encode_tokenizer();
  cli::CompletionRequest c;
  try {
    c = cli::parse_completion_request(body, "served", tok);
  } catch (const cli::ApiError& e) {
    check(e.status == 400 || e.status == 404,
          "an API error with status " + std::to_string(e.status));
    check(!std::string(e.what()).empty(), "an API error without a message");
    return;
  }
  // Accepted: n choices for each prompt, every one a request the generator would take (its
  // parameters valid, its ids in the vocabulary), the stop strings non-empty.
  check(c.n >= 1 && c.n <= 128, "accepted n = " + std::to_string(c.n));
  check(!c.choices.empty() && c.choices.size() % c.n == 0 && c.choices.size() <= 1024,
        "accepted " + std::to_string(c.choices.size()) + " choices for n " + std::to_string(c.n));
  check(c.echo_texts.size() == c.choices.size(), "an echo text per choice");
  check(!c.include_usage || c.stream, "include_usage without stream");
  for (const std::string& stop : c.stop_strings) check(!stop.empty(), "accepted an empty stop");
  // max_tokens: 16 when absent, none when null (the context bounds it), else its value.
  const auto max_tokens = body.find("max_tokens");
  const std::optional<std::int64_t> want_max =
      max_tokens == body.end() ? std::optional<std::int64_t>(16)
      : max_tokens->is_null()  ? std::nullopt
                               : std::optional(max_tokens->get<std::int64_t>());
  for (const Request& r : c.choices) {
    check(r.params.max_new_tokens == want_max, "max_tokens not as asked");
    check(std::isfinite(r.params.temperature) && std::isfinite(r.params.top_p) &&
              std::isfinite(r.params.repetition_penalty),
          "accepted a parameter beyond float's range");
    check(std::abs(r.params.presence_penalty) <= 2 && std::abs(r.params.frequency_penalty) <= 2,
          "accepted a penalty outside OpenAI's -2 to 2");
    for (const auto& [token, bias] : r.params.logit_bias)
      check(token >= 0 && std::size_t(token) < tok.vocab_size() && std::abs(bias) <= 100,
            "accepted logit_bias " + std::to_string(token) + ": " + std::to_string(bias));
    r.params.validate();  // InputError here is a finding: it would have been a 500
    check(r.params.stop_strings == c.stop_strings, "a choice with other stop strings");
    check(r.prompt.empty() || r.text.empty(), "a choice with both text and ids");
    for (const std::int32_t id : r.prompt)
      check(id >= 0 && std::size_t(id) < tok.vocab_size(), "accepted id " + std::to_string(id));
    check(r.params.logprobs.has_value() == c.logprobs, "logprobs not as asked");
  }
  // The first prompt as its `logprobs` object would write it: a name and an offset per token, the
  // offsets never going back, JSON that the wire takes.
  if (c.logprobs) {
    cli::LogprobsWriter writer(tok);
    const TokenLogprobs scored{0, -1.0f, {{0, -0.5f}, {1, -0.75f}}};
    const std::vector<std::int32_t>& prompt = c.choices.front().prompt;
    for (std::size_t t = 0; t < prompt.size(); ++t) writer.add(prompt[t], t ? &scored : nullptr);
    const nlohmann::json j = writer.take();
    check(j["tokens"].size() == prompt.size() && j["text_offset"].size() == prompt.size(),
          "a logprobs object without a token per prompt token");
    for (std::size_t t = 1; t < prompt.size(); ++t)
      check(j["text_offset"][t].get<std::size_t>() >= j["text_offset"][t - 1].get<std::size_t>(),
            "a text offset that goes back");
    check(!cli::wire(j).empty(), "an empty logprobs object");
  }
}

// Every target, by name (the folder names under tests/fuzz/corpus and tests/fuzz/regressions).
struct Target {
  std::string_view name;
  void (*run)(std::span<const std::uint8_t>);
};
inline constexpr Target kTargets[] = {
    {"safetensors", safetensors},       {"config", config},
    {"tokenizer_load", tokenizer_load}, {"tokenizer_encode", tokenizer_encode},
    {"prompt_file", prompt_file},       {"completion_request", completion_request},
};

}  // namespace ctformer::fuzz
