// GPT-2's config.json, as Hugging Face transformers writes it (GPT2Config).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "ctformer/core/error.hpp"
#include "ctformer/core/json_excerpt.hpp"

namespace ctformer {

struct Gpt2Config {
  std::int64_t vocab_size = 0;
  std::int64_t n_positions = 0;  // the context length
  std::int64_t n_embd = 0;       // C
  std::int64_t n_layer = 0;
  std::int64_t n_head = 0;
  std::int64_t n_inner = 0;  // the MLP's hidden size; config.json's null means 4 * n_embd
  float layer_norm_epsilon = 1e-5f;
  bool scale_attn_weights = true;  // scores divided by sqrt(head_dim)
  std::int32_t bos_token_id = 50256;
  std::int32_t eos_token_id = 50256;

  std::int64_t head_dim() const { return n_embd / n_head; }

  // Parses and validates; `source` names the file in error messages. Keys absent from the JSON take
  // GPT2Config's defaults, except the five that fix the model's shape, which are required.
  static Gpt2Config from_json(const nlohmann::json& j, const std::string& source) {
    const std::string at = "config '" + source + "': ";
    if (!j.is_object()) throw ConfigError(at + "the file is not a JSON object");
    Gpt2Config c;

    auto integer = [&](const char* key, std::int64_t& out, bool required) {
      const auto it = j.find(key);
      if (it == j.end() || it->is_null()) {
        if (required)
          throw ConfigError(at + "required key '" + key +
                            "' is missing (a GPT-2 config.json defines vocab_size, n_positions, "
                            "n_embd, n_layer and n_head)");
        return false;
      }
      // At most 2^31 - 1: token ids are 32-bit, and sizes derived from these (4 * n_embd, weight
      // counts) must not overflow.
      if (!it->is_number_integer() || it->get<std::int64_t>() <= 0 ||
          it->get<std::int64_t>() > std::numeric_limits<std::int32_t>::max())
        throw ConfigError(at + "'" + key + "' is " + detail::json_excerpt(*it) +
                          ", expected a positive integer (at most 2147483647)");
      out = it->get<std::int64_t>();
      return true;
    };
    auto boolean = [&](const char* key, bool& out) {
      const auto it = j.find(key);
      if (it == j.end()) return;
      if (!it->is_boolean())
        throw ConfigError(at + "'" + key + "' is " + detail::json_excerpt(*it) +
                          ", expected true or false");
      out = it->get<bool>();
    };
    // Options ctformer does not implement: refused unless they have the value GPT-2 uses.
    auto require_value = [&](const char* key, const nlohmann::json& supported, const char* why) {
      const auto it = j.find(key);
      if (it != j.end() && !it->is_null() && *it != supported)
        throw ConfigError(at + "'" + key + "' is " + detail::json_excerpt(*it) +
                          "; ctformer supports only " + supported.dump() + " (" + why + ")");
    };

    if (const auto it = j.find("model_type"); it != j.end() && *it != "gpt2")
      throw ConfigError(at + "'model_type' is " + detail::json_excerpt(*it) +
                        "; ctformer loads GPT-2 models (model_type \"gpt2\")");
    integer("vocab_size", c.vocab_size, true);
    if (!integer("n_positions", c.n_positions, false) && !integer("n_ctx", c.n_positions, false))
      integer("n_positions", c.n_positions, true);  // throws: neither key is there
    integer("n_embd", c.n_embd, true);
    integer("n_layer", c.n_layer, true);
    integer("n_head", c.n_head, true);
    if (!integer("n_inner", c.n_inner, false)) c.n_inner = 4 * c.n_embd;

    if (const auto it = j.find("layer_norm_epsilon"); it != j.end()) {
      // Positive as a float too: 1e-300 would become 0 and divide by zero on a constant row.
      if (!it->is_number() || !(it->get<double>() > 0) || !(it->get<double>() < 1) ||
          !(it->get<float>() > 0))
        throw ConfigError(at + "'layer_norm_epsilon' is " + detail::json_excerpt(*it) +
                          ", expected a small positive number such as 1e-05");
      c.layer_norm_epsilon = it->get<float>();
    }
    if (const auto it = j.find("activation_function"); it != j.end()) {
      if (*it != "gelu_new" && *it != "gelu_pytorch_tanh")
        throw ConfigError(at + "'activation_function' is " + detail::json_excerpt(*it) +
                          "; ctformer supports \"gelu_new\" and \"gelu_pytorch_tanh\" (both the "
                          "tanh approximation of GELU that GPT-2 uses)");
    }
    boolean("scale_attn_weights", c.scale_attn_weights);
    require_value("scale_attn_by_inverse_layer_idx", false, "GPT-2 does not scale by layer");
    require_value("reorder_and_upcast_attn", false, "a training-time option GPT-2 does not use");
    require_value("add_cross_attention", false, "GPT-2 is decoder-only");
    require_value("tie_word_embeddings", true,
                  "the LM head reuses the token embedding, as in every GPT-2 checkpoint");

    for (auto [key, out] :
         {std::pair{"bos_token_id", &c.bos_token_id}, std::pair{"eos_token_id", &c.eos_token_id}}) {
      const auto it = j.find(key);
      if (it == j.end() || it->is_null()) continue;
      if (!it->is_number_integer() || it->get<std::int64_t>() < 0 ||
          it->get<std::int64_t>() >= c.vocab_size)
        throw ConfigError(at + "'" + key + "' is " + detail::json_excerpt(*it) +
                          ", expected a token id below vocab_size " + std::to_string(c.vocab_size));
      *out = it->get<std::int32_t>();
    }
    if (c.bos_token_id >= c.vocab_size || c.eos_token_id >= c.vocab_size)
      throw ConfigError(at + "bos/eos token ids default to 50256, which is not below vocab_size " +
                        std::to_string(c.vocab_size) + "; set 'bos_token_id' and 'eos_token_id'");

    if (c.n_embd % c.n_head != 0)
      throw ConfigError(at + "'n_embd' " + std::to_string(c.n_embd) +
                        " is not divisible by 'n_head' " + std::to_string(c.n_head));
    return c;
  }

  static Gpt2Config from_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in)
      throw FileError("cannot open '" + path.string() +
                      "' (a model directory needs config.json; check the path)");
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError("config '" + path.string() + "': not valid JSON: " + e.what());
    }
    return from_json(j, path.string());
  }
};

}  // namespace ctformer
