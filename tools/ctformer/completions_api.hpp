// OpenAI's completions API (POST /v1/completions) in ctformer's terms: a request body becomes
// generator requests, and their events and results become the API's JSON, whole or as server-sent
// events. GPT-2 has no chat template, so the chat API is not offered.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/core/error.hpp"
#include "ctformer/core/json_excerpt.hpp"
#include "ctformer/generation/generator.hpp"
#include "ctformer/tokenizer/gpt2_tokenizer.hpp"
#include "ctformer/tokenizer/utf8.hpp"

namespace ctformer::cli {

// An error the API answers with {"error": {"message", "type", "param", "code"}} and an HTTP status.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = {},
           std::string type = "invalid_request_error")
      : std::runtime_error(std::move(message)),
        status(status),
        param(std::move(param)),
        type(std::move(type)) {}
  int status;
  std::string param;
  std::string type;
};

inline nlohmann::json api_error_json(const std::string& message, const std::string& type,
                                     const std::string& param = {}) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
            {"code", nullptr}}}};
}

// JSON text for the wire: bytes that are not UTF-8 (a model can generate them) become U+FFFD
// rather than an exception.
inline std::string wire(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One completion request: every choice as a generator request, prompt by prompt, `n` each.
struct CompletionRequest {
  std::vector<Request> choices;           // choice i is prompt i / n; its prompt is ids
  std::vector<std::string> echo_texts;    // per choice, the prompt's text when `echo`, else empty
  std::vector<std::string> stop_strings;  // to take off the end of a text that stopped at one
  std::size_t n = 1;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;  // each choice has a `logprobs` object (of its prompt too with `echo`)
};

// The API's name of one token: its text, or where its bytes are not whole UTF-8 characters (a
// character split across tokens), "bytes:" and the bytes as \xNN, as OpenAI writes them.
inline std::string token_name(const Gpt2Tokenizer& tokenizer, std::int32_t id) {
  const std::string_view bytes = tokenizer.token_bytes(id);
  if (is_valid_utf8(bytes)) return std::string(bytes);
  std::string name = "bytes:";
  for (const unsigned char b : bytes) {
    static constexpr char kHex[] = "0123456789abcdef";
    name += {'\\', 'x', kHex[b >> 4], kHex[b & 15]};
  }
  return name;
}

// OpenAI's legacy `logprobs` object, built token by token: tokens, token_logprobs, top_logprobs
// (the most likely tokens and the chosen one) and text_offset (in characters from the start of the
// choice's text). take() returns what was added since it was last called, for a streamed chunk.
class LogprobsWriter {
 public:
  explicit LogprobsWriter(const Gpt2Tokenizer& tokenizer) : tokenizer_(tokenizer) { clear(); }

  // One token; `scored` is null for a text's first token, which nothing came before to predict.
  void add(std::int32_t token, const TokenLogprobs* scored) {
    const std::string name = token_name(tokenizer_, token);
    out_["tokens"].push_back(name);
    out_["text_offset"].push_back(characters_);
    // Characters: the bytes that start one (a character split across tokens counts once).
    for (const unsigned char b : tokenizer_.token_bytes(token)) characters_ += (b & 0xC0) != 0x80;
    if (!scored) {
      out_["token_logprobs"].push_back(nullptr);
      out_["top_logprobs"].push_back(nullptr);
      return;
    }
    out_["token_logprobs"].push_back(scored->logprob);
    nlohmann::json top = nlohmann::json::object();
    for (const LikelyToken& t : scored->top) top[token_name(tokenizer_, t.token)] = t.logprob;
    top[name] = scored->logprob;
    out_["top_logprobs"].push_back(std::move(top));
  }

  nlohmann::json take() {
    nlohmann::json out = std::move(out_);
    clear();
    return out;
  }

 private:
  void clear() {
    out_ = {{"tokens", nlohmann::json::array()},
            {"token_logprobs", nlohmann::json::array()},
            {"top_logprobs", nlohmann::json::array()},
            {"text_offset", nlohmann::json::array()}};
  }
  const Gpt2Tokenizer& tokenizer_;
  nlohmann::json out_;
  std::size_t characters_ = 0;
};

inline CompletionRequest parse_completion_request(const nlohmann::json& body,
                                                  const std::string& served_model,
                                                  const Gpt2Tokenizer& tokenizer) {
  using nlohmann::json;
  if (!body.is_object()) throw ApiError(400, "the request body is not a JSON object");
  const auto field = [&](const char* key) -> const json* {
    const auto it = body.find(key);
    return it == body.end() || it->is_null() ? nullptr : &*it;
  };
  const auto bad = [](const char* key, const std::string& expected, const json& got) -> ApiError {
    return ApiError(
        400,
        std::string("'") + key + "' must be " + expected + ", got " + detail::json_excerpt(got),
        key);
  };
  // Every number field becomes a float: converting one beyond float's range is undefined.
  const auto number = [&](const char* key, float fallback) {
    const json* v = field(key);
    if (!v) return fallback;
    if (!v->is_number() || !(std::abs(v->get<double>()) <= std::numeric_limits<float>::max()))
      throw bad(key, "a finite number", *v);
    return float(v->get<double>());
  };
  const auto integer = [&](const char* key, std::int64_t fallback, std::int64_t lo,
                           std::int64_t hi) {
    const json* v = field(key);
    if (!v) return fallback;
    const std::string range = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    if (!v->is_number_integer()) throw bad(key, range, *v);
    // nlohmann keeps a non-negative integer as unsigned, so that 2^64 - 1 is not -1.
    if (v->is_number_unsigned() ? v->get<std::uint64_t>() > std::uint64_t(hi) ||
                                      std::int64_t(v->get<std::uint64_t>()) < lo
                                : v->get<std::int64_t>() < lo || v->get<std::int64_t>() > hi)
      throw bad(key, range, *v);
    return v->get<std::int64_t>();
  };
  const auto boolean = [&](const char* key) {
    const json* v = field(key);
    if (!v) return false;
    if (!v->is_boolean()) throw bad(key, "true or false", *v);
    return v->get<bool>();
  };
  const auto unsupported = [](const char* key, const std::string& why) {
    return ApiError(400, std::string("'") + key + "' is not supported: " + why, key);
  };

  if (const json* model = field("model"))
    if (!model->is_string() || model->get<std::string>() != served_model)
      throw ApiError(404,
                     "the model " + detail::json_excerpt(*model) +
                         " does not exist; this server serves '" + served_model + "'",
                     "model", "not_found_error");
  if (const json* s = field("suffix"); s && !(s->is_string() && s->get<std::string>().empty()))
    throw unsupported("suffix", "GPT-2 generates left to right only");

  CompletionRequest c;
  GenerationParams params;
  // OpenAI's ranges.
  for (const auto& [key, value] : {std::pair{"presence_penalty", &params.presence_penalty},
                                   std::pair{"frequency_penalty", &params.frequency_penalty}}) {
    *value = number(key, 0.0f);
    if (!(*value >= -2.0f && *value <= 2.0f)) throw bad(key, "a number from -2 to 2", *field(key));
  }
  if (const json* b = field("logit_bias")) {
    if (!b->is_object()) throw bad("logit_bias", "an object of token ids to numbers", *b);
    for (const auto& [key, value] : b->items()) {
      const std::string at = "logit_bias[\"" + key + "\"]";
      std::int64_t id = -1;
      const auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (error != std::errc() || end != key.data() + key.size() || id < 0 ||
          id >= std::int64_t(tokenizer.vocab_size()))
        throw ApiError(400,
                       "'logit_bias' key " + detail::json_excerpt(json(key)) +
                           " is not a token id of the vocabulary (0 to " +
                           std::to_string(tokenizer.vocab_size() - 1) + ")",
                       "logit_bias");
      if (!value.is_number() || !(std::abs(value.get<double>()) <= 100))
        throw ApiError(
            400,
            "'" + at + "' must be a number from -100 to 100, got " + detail::json_excerpt(value),
            "logit_bias");
      params.logit_bias[std::int32_t(id)] = float(value.get<double>());
    }
  }
  c.n = std::size_t(integer("n", 1, 1, 128));
  if (const std::int64_t best_of = integer("best_of", std::int64_t(c.n), 1, 128);
      best_of != std::int64_t(c.n))
    throw unsupported("best_of", "only best_of = n (every candidate is returned)");
  c.stream = boolean("stream");
  const bool echo = boolean("echo");
  // OpenAI allows 5; 20 as vLLM.
  if (field("logprobs")) {
    c.logprobs = true;
    params.logprobs = std::int32_t(integer("logprobs", 0, 0, 20));
    if (echo) params.prompt_logprobs = params.logprobs;
  }
  if (const json* options = field("stream_options")) {
    if (!options->is_object()) throw bad("stream_options", "an object", *options);
    if (!c.stream)
      throw ApiError(400, "'stream_options' is only allowed with \"stream\": true",
                     "stream_options");
    const auto usage = options->find("include_usage");
    if (usage != options->end() && !usage->is_null()) {
      if (!usage->is_boolean()) throw bad("stream_options.include_usage", "true or false", *usage);
      c.include_usage = usage->get<bool>();
    }
  }

  // OpenAI's defaults: 16 tokens, sampling at temperature 1; top_k (0 or -1: off), min_p,
  // repetition_penalty, ignore_eos and min_tokens are the extensions vLLM also takes, and
  // no_repeat_ngram_size is transformers'.
  params.max_length = std::numeric_limits<std::int64_t>::max();
  // Absent: 16; null: as many as the context leaves (field() reads both as absent).
  if (const auto max_tokens = body.find("max_tokens");
      max_tokens == body.end() || !max_tokens->is_null())
    params.max_new_tokens = integer("max_tokens", 16, 0, std::numeric_limits<std::int32_t>::max());
  params.temperature = number("temperature", 1.0f);
  params.do_sample = params.temperature > 0;
  params.top_p = number("top_p", 1.0f);
  params.top_k = std::int32_t(
      std::max<std::int64_t>(integer("top_k", 0, -1, std::numeric_limits<std::int32_t>::max()), 0));
  params.min_p = number("min_p", 0.0f);
  params.repetition_penalty = number("repetition_penalty", 1.0f);
  params.stop_at_eos = !boolean("ignore_eos");
  params.min_new_tokens = integer("min_tokens", 0, 0, std::numeric_limits<std::int32_t>::max());
  params.no_repeat_ngram_size =
      std::int32_t(integer("no_repeat_ngram_size", 0, 0, std::numeric_limits<std::int32_t>::max()));
  // Not an optional: GCC 12 for AArch64 warns that the optional's value may be used uninitialized.
  const bool seeded = field("seed") != nullptr;
  const std::int64_t seed = integer("seed", 0, 0, std::numeric_limits<std::int64_t>::max());
  if (const json* stop = field("stop")) {
    if (stop->is_string()) {
      c.stop_strings.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= 16) {
      for (const json& s : *stop) {
        if (!s.is_string()) throw bad("stop", "a string or an array of up to 16 strings", *stop);
        c.stop_strings.push_back(s.get<std::string>());
      }
    } else {
      throw bad("stop", "a string or an array of up to 16 strings", *stop);
    }
    for (const std::string& s : c.stop_strings)
      if (s.empty()) throw ApiError(400, "'stop' holds an empty string", "stop");
  }
  params.stop_strings = c.stop_strings;
  try {
    params.validate();
  } catch (const InputError& e) {
    throw ApiError(400, e.what());
  }

  // prompt: a string, an array of strings, an array of token ids, or an array of such arrays.
  struct Prompt {
    std::string text;
    std::vector<std::int32_t> ids;
  };
  std::vector<Prompt> prompts;
  const auto ids_of = [&](const json& array) {
    std::vector<std::int32_t> ids;
    for (const json& id : array) {
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0 ||
          id.get<std::int64_t>() >= std::int64_t(tokenizer.vocab_size()))
        throw ApiError(400,
                       "prompt token id " + detail::json_excerpt(id) +
                           " is not an id of the vocabulary (0 to " +
                           std::to_string(tokenizer.vocab_size() - 1) + ")",
                       "prompt");
      ids.push_back(id.get<std::int32_t>());
    }
    return ids;
  };
  const json* prompt = field("prompt");
  const std::string prompt_forms =
      "a string, an array of strings, an array of token ids or an array of arrays of token ids";
  if (!prompt) throw ApiError(400, "'prompt' is required: " + prompt_forms, "prompt");
  if (prompt->is_string()) {
    prompts.push_back({prompt->get<std::string>(), {}});
  } else if (prompt->is_array() && !prompt->empty() && prompt->front().is_number()) {
    prompts.push_back({{}, ids_of(*prompt)});
  } else if (prompt->is_array() && !prompt->empty()) {
    for (const json& p : *prompt) {
      if (p.is_string())
        prompts.push_back({p.get<std::string>(), {}});
      else if (p.is_array() && !p.empty())
        prompts.push_back({{}, ids_of(p)});
      else
        throw bad("prompt", prompt_forms, *prompt);
    }
  } else {
    throw bad("prompt", prompt_forms, *prompt);
  }
  if (prompts.size() * c.n > 1024)
    throw ApiError(400,
                   std::to_string(prompts.size()) + " prompts x n " + std::to_string(c.n) +
                       " is more than 1024 choices in one request; split it",
                   "prompt");

  for (const Prompt& p : prompts) {
    // Text is encoded here, once for its n choices, so that each choice's prompt ids are known to
    // write its logprobs.
    const std::vector<std::int32_t> ids = p.ids.empty() ? tokenizer.encode(p.text) : p.ids;
    for (std::size_t j = 0; j < c.n; ++j) {
      Request r;
      r.prompt = ids;
      r.params = params;
      if (seeded) r.params.seed = std::uint64_t(seed) + j;  // n samples, not n copies of one
      c.choices.push_back(std::move(r));
      c.echo_texts.push_back(!echo           ? std::string()
                             : p.ids.empty() ? p.text
                                             : to_valid_utf8(tokenizer.decode(p.ids)));
    }
  }
  return c;
}

// The JSON name of a finish reason, OpenAI's (`generate --json` uses them too): "stop" (end-of-text
// or a stop string), "length", "cancelled".
inline std::string_view json_finish_reason(FinishReason r) {
  switch (r) {
    case FinishReason::eos:
    case FinishReason::stop_string:
      return "stop";
    case FinishReason::length:
      return "length";
    case FinishReason::cancelled:
      return "cancelled";
  }
  return "?";
}

// The generator keeps a stop string at the end of the text; OpenAI's API leaves it out. `text` so
// far ends with the stop string that ended it; returns how many bytes to take off its end.
inline std::size_t stop_string_tail(const std::string& text,
                                    const std::vector<std::string>& stop_strings) {
  std::size_t longest = 0;
  for (const std::string& s : stop_strings)
    if (s.size() > longest && text.ends_with(s)) longest = s.size();
  return longest;
}

}  // namespace ctformer::cli
