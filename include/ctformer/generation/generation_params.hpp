// What one request asks of generation: how to choose tokens and when to stop. Defaults are those of
// transformers' GenerationConfig, and a model's generation_config.json overrides them, as in
// transformers (gpt2's asks for nothing, so it decodes greedily).
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
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
  float repetition_penalty = 1.0f;
  std::optional<std::uint64_t> seed;  // the request's own random stream; random when absent

  // Stopping. A request stops at the first of these.
  std::optional<std::int64_t> max_new_tokens;
  std::int64_t max_length = 20;  // prompt + generated (transformers' default)
  bool stop_at_eos = true;
  std::vector<std::string> stop_strings;  // the text is cut right after the first one generated

  // Log-probabilities, of the model's distribution (before the penalty, temperature, top-k and
  // top-p): each generated token's, and each prompt token's after the first, with this many of the
  // most likely tokens at each place. Absent: none.
  std::optional<std::int32_t> logprobs;
  std::optional<std::int32_t> prompt_logprobs;

  bool greedy() const { return !do_sample || temperature <= 0.0f; }

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
    if (!(repetition_penalty > 0.0f))
      bad("repetition_penalty " + std::to_string(repetition_penalty) + " must be > 0");
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
    if (j.contains("top_p")) p.top_p = real("top_p");
    if (j.contains("repetition_penalty")) p.repetition_penalty = real("repetition_penalty");
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
