// What one request asks of generation: how to choose tokens and when to stop. Defaults are those of
// transformers' GenerationConfig, and a model's generation_config.json overrides them, as in
// transformers (gpt2's asks for nothing, so it decodes greedily).
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/core/error.hpp"
#include "ctformer/core/json_excerpt.hpp"

namespace ctformer {

struct GenerationParams {
  // Choosing tokens. do_sample = false, or temperature = 0, is greedy.
  bool do_sample = false;
  float temperature = 1.0f;
  std::int32_t top_k = 50;  // 0 disables
  float top_p = 1.0f;       // 1 disables
  float min_p = 0.0f;  // keep tokens at least min_p times as likely as the most likely; 0 disables
  float repetition_penalty = 1.0f;
  // OpenAI's penalties on the tokens generated so far (not the prompt's): each one's score is
  // lowered by presence_penalty, and by frequency_penalty times the number of times it was
  // generated; negative values encourage repetition.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::map<std::int32_t, float> logit_bias;  // added to the token's logit; -infinity bans it
  std::int32_t no_repeat_ngram_size = 0;     // bans tokens that would repeat an n-gram; 0 disables
  std::optional<std::uint64_t> seed;         // the request's own random stream; random when absent

  // Stopping. A request stops at the first of these.
  std::optional<std::int64_t> max_new_tokens;
  std::int64_t max_length = 20;  // prompt + generated (transformers' default)
  bool stop_at_eos = true;
  // End-of-text is banned until the sequence (prompt included) is min_length tokens long and
  // min_new_tokens have been generated; only while stop_at_eos (it is an ordinary token otherwise).
  std::int64_t min_length = 0;
  std::int64_t min_new_tokens = 0;
  std::vector<std::string> stop_strings;  // the text is cut right after the first one generated

  // Log-probabilities, of the model's distribution (before the penalty, temperature, top-k and
  // top-p): each generated token's, and each prompt token's after the first, with this many of the
  // most likely tokens at each place. Absent: none.
  std::optional<std::int32_t> logprobs;
  std::optional<std::int32_t> prompt_logprobs;

  bool greedy() const { return !do_sample || temperature <= 0.0f; }

  bool eos_banned(std::int64_t prompt_length, std::int64_t generated) const {
    return stop_at_eos && (prompt_length + generated < min_length || generated < min_new_tokens);
  }

  // How many tokens a prompt of `prompt_length` may generate in a context of n_positions.
  std::int64_t token_budget(std::int64_t prompt_length, std::int64_t n_positions) const {
    std::int64_t budget = std::min(max_length, n_positions) - prompt_length;
    if (max_new_tokens) budget = std::min(budget, *max_new_tokens);
    return std::max<std::int64_t>(budget, 0);
  }

  // Throws InputError naming the bad value.
  void validate() const {
    auto bad = [](const std::string& what) { throw InputError("generation parameter " + what); };
    if (!(temperature >= 0.0f)) bad("temperature " + std::to_string(temperature) + " must be >= 0");
    if (top_k < 0) bad("top_k " + std::to_string(top_k) + " must be >= 0 (0 disables it)");
    if (!(top_p > 0.0f && top_p <= 1.0f))
      bad("top_p " + std::to_string(top_p) + " must be in (0, 1]");
    if (!(min_p >= 0.0f && min_p <= 1.0f))
      bad("min_p " + std::to_string(min_p) + " must be in [0, 1] (0 disables it)");
    if (!(repetition_penalty > 0.0f))
      bad("repetition_penalty " + std::to_string(repetition_penalty) + " must be > 0");
    if (!std::isfinite(presence_penalty))
      bad("presence_penalty " + std::to_string(presence_penalty) + " must be a finite number");
    if (!std::isfinite(frequency_penalty))
      bad("frequency_penalty " + std::to_string(frequency_penalty) + " must be a finite number");
    for (const auto& [token, bias] : logit_bias) {
      if (token < 0) bad("logit_bias names token " + std::to_string(token) + " (ids are >= 0)");
      if (std::isnan(bias) || bias == INFINITY)
        bad("logit_bias of token " + std::to_string(token) + " is " + std::to_string(bias) +
            " (expected a finite number, or -infinity to ban the token)");
    }
    if (no_repeat_ngram_size < 0)
      bad("no_repeat_ngram_size " + std::to_string(no_repeat_ngram_size) +
          " must be >= 0 (0 disables it)");
    if (min_length < 0) bad("min_length " + std::to_string(min_length) + " must be >= 0");
    if (min_new_tokens < 0)
      bad("min_new_tokens " + std::to_string(min_new_tokens) + " must be >= 0");
    if (max_new_tokens && *max_new_tokens < 0)
      bad("max_new_tokens " + std::to_string(*max_new_tokens) + " must be >= 0");
    if (max_length < 0) bad("max_length " + std::to_string(max_length) + " must be >= 0");
    for (const std::string& s : stop_strings)
      if (s.empty()) bad("stop_strings holds an empty string");
    if (logprobs && *logprobs < 0)
      bad("logprobs " + std::to_string(*logprobs) +
          " must be >= 0 (the most likely tokens to list)");
    if (prompt_logprobs && *prompt_logprobs < 0)
      bad("prompt_logprobs " + std::to_string(*prompt_logprobs) +
          " must be >= 0 (the most likely tokens to list)");
  }

  // transformers' defaults overridden by `path` (a generation_config.json) when it exists.
  static GenerationParams from_generation_config(const std::filesystem::path& path) {
    if (!std::filesystem::exists(path)) return {};
    std::ifstream in(path);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError("generation config '" + path.string() + "': not valid JSON: " + e.what());
    }
    return from_json(j, path.string());
  }

  // The same from the file's parsed contents; `source` names the file in error messages.
  static GenerationParams from_json(const nlohmann::json& j, const std::string& source) {
    const std::string at = "generation config '" + source + "': ";
    if (!j.is_object()) throw ConfigError(at + "the file is not a JSON object");
    auto bad = [&](const char* key, const nlohmann::json& v, const std::string& expected) {
      throw ConfigError(at + "'" + key + "' is " + detail::json_excerpt(v) + ", expected " +
                        expected);
    };
    // Numbers are range-checked before conversion: converting 1e30 to an integer, or 1e300 to a
    // float, is undefined behaviour.
    auto real = [&](const char* key) {
      const nlohmann::json& v = j.at(key);
      if (!v.is_number()) bad(key, v, "a number");
      const double d = v.get<double>();
      if (!(std::abs(d) <= std::numeric_limits<float>::max())) bad(key, v, "a finite number");
      return static_cast<float>(d);
    };
    auto integer = [&](const char* key, std::int64_t max) {
      const nlohmann::json& v = j.at(key);
      const std::string range = "an integer from 0 to " + std::to_string(max);
      if (v.is_number_unsigned()) {
        if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(max)) bad(key, v, range);
        return static_cast<std::int64_t>(v.get<std::uint64_t>());
      }
      if (v.is_number_integer()) {  // negative
        bad(key, v, range);
      }
      if (!v.is_number_float()) bad(key, v, range);
      const double d = v.get<double>();  // 50.0 is accepted as 50
      if (!(d >= 0 && d <= static_cast<double>(max) && d < 0x1p63 && d == std::floor(d)))
        bad(key, v, range);
      return static_cast<std::int64_t>(d);
    };
    constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

    GenerationParams p;
    if (j.contains("do_sample")) {
      if (!j.at("do_sample").is_boolean()) bad("do_sample", j.at("do_sample"), "true or false");
      p.do_sample = j.at("do_sample").get<bool>();
    }
    if (j.contains("temperature")) p.temperature = real("temperature");
    if (j.contains("top_k"))
      p.top_k =
          static_cast<std::int32_t>(integer("top_k", std::numeric_limits<std::int32_t>::max()));
    // transformers writes null for a key left at its default.
    auto has = [&](const char* key) { return j.contains(key) && !j.at(key).is_null(); };
    if (j.contains("top_p")) p.top_p = real("top_p");
    if (has("min_p")) p.min_p = real("min_p");
    if (j.contains("repetition_penalty")) p.repetition_penalty = real("repetition_penalty");
    if (has("no_repeat_ngram_size"))
      p.no_repeat_ngram_size = static_cast<std::int32_t>(
          integer("no_repeat_ngram_size", std::numeric_limits<std::int32_t>::max()));
    if (has("min_length")) p.min_length = integer("min_length", kInt64Max);
    if (has("min_new_tokens")) p.min_new_tokens = integer("min_new_tokens", kInt64Max);
    if (j.contains("max_length") && !j.at("max_length").is_null())
      p.max_length = integer("max_length", kInt64Max);
    if (j.contains("max_new_tokens") && !j.at("max_new_tokens").is_null())
      p.max_new_tokens = integer("max_new_tokens", kInt64Max);
    try {
      p.validate();
    } catch (const InputError& e) {
      throw ConfigError(at + e.what());
    }
    return p;
  }
};

}  // namespace ctformer
