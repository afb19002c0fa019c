#define BOOST_TEST_MODULE gpt2_config
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <string>

#include "ctformer/io/gpt2_config.hpp"
#include "support/safetensors_writer.hpp"
#include "support/test_support.hpp"

using namespace ctformer;
using nlohmann::json;

namespace {

json fixture_json(const std::string& model) {
  std::ifstream in(test::data_dir() / "models" / model / "config.json");
  return json::parse(in);
}

// from_json(j) must throw ConfigError naming every one of `parts`.
void check_refused(const json& j, std::initializer_list<std::string> parts) {
  try {
    Gpt2Config::from_json(j, "test/config.json");
  } catch (const ConfigError& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("test/config.json") != std::string::npos, message);
    for (const std::string& part : parts)
      BOOST_TEST(message.find(part) != std::string::npos,
                 "'" << message << "' lacks '" << part << "'");
    return;
  }
  BOOST_FAIL("config was accepted: " << j.dump());
}

}  // namespace

BOOST_AUTO_TEST_CASE(reads_the_fixture_configs_that_transformers_wrote) {
  const Gpt2Config h16 = Gpt2Config::from_file(test::data_dir() / "models/gpt2-h16/config.json");
  BOOST_TEST(h16.vocab_size == 320);
  BOOST_TEST(h16.n_positions == 128);
  BOOST_TEST(h16.n_embd == 32);
  BOOST_TEST(h16.n_layer == 2);
  BOOST_TEST(h16.n_head == 2);
  BOOST_TEST(h16.head_dim() == 16);
  BOOST_TEST(h16.n_inner == 4 * 32);  // null in the file
  BOOST_TEST(h16.layer_norm_epsilon == 1e-5f);
  BOOST_TEST(h16.eos_token_id == 319);
  const Gpt2Config h32 = Gpt2Config::from_file(test::data_dir() / "models/gpt2-h32/config.json");
  BOOST_TEST(h32.layer_norm_epsilon == 1e-6f);
  BOOST_TEST(Gpt2Config::from_file(test::data_dir() / "models/gpt2-h64/config.json").n_inner ==
             320);
}

BOOST_AUTO_TEST_CASE(missing_required_keys) {
  for (const char* key : {"vocab_size", "n_embd", "n_layer", "n_head"}) {
    json j = fixture_json("gpt2-h16");
    j.erase(key);
    check_refused(j, {key, "missing"});
  }
  json j = fixture_json("gpt2-h16");
  j.erase("n_positions");
  check_refused(j, {"n_positions", "missing"});
  j["n_ctx"] = 64;  // the old name is still accepted
  BOOST_TEST(Gpt2Config::from_json(j, "x").n_positions == 64);
}

BOOST_AUTO_TEST_CASE(unsupported_options_are_refused_with_what_is_supported) {
  auto with = [](const char* key, json value) {
    json j = fixture_json("gpt2-h16");
    j[key] = std::move(value);
    return j;
  };
  check_refused(with("activation_function", "relu"),
                {"activation_function", "\"relu\"", "gelu_new"});
  check_refused(with("scale_attn_by_inverse_layer_idx", true),
                {"scale_attn_by_inverse_layer_idx", "true", "false"});
  check_refused(with("reorder_and_upcast_attn", true), {"reorder_and_upcast_attn"});
  check_refused(with("add_cross_attention", true), {"add_cross_attention"});
  check_refused(with("tie_word_embeddings", false), {"tie_word_embeddings"});
  check_refused(with("model_type", "llama"), {"model_type", "llama", "gpt2"});
}

BOOST_AUTO_TEST_CASE(bad_values) {
  auto with = [](const char* key, json value) {
    json j = fixture_json("gpt2-h16");
    j[key] = std::move(value);
    return j;
  };
  check_refused(with("n_embd", -32), {"n_embd", "-32", "positive integer"});
  check_refused(with("n_head", "2"), {"n_head", "\"2\""});
  check_refused(with("n_head", 3), {"n_embd", "32", "not divisible", "3"});
  check_refused(with("layer_norm_epsilon", 0), {"layer_norm_epsilon"});
  check_refused(with("eos_token_id", 320), {"eos_token_id", "320", "vocab_size 320"});
  json j = fixture_json("gpt2-h16");
  j.erase("eos_token_id");
  check_refused(j, {"50256", "eos_token_id"});
  check_refused(json::array(), {"not a JSON object"});
}

BOOST_AUTO_TEST_CASE(missing_and_malformed_files) {
  try {
    Gpt2Config::from_file("/nonexistent/config.json");
    BOOST_FAIL("accepted a missing file");
  } catch (const FileError& e) {
    BOOST_TEST(std::string(e.what()).find("/nonexistent/config.json") != std::string::npos);
  }
  test::TempDir dir("config");
  std::ofstream(dir.path / "config.json") << "{\"n_embd\": 32,";
  BOOST_CHECK_THROW(Gpt2Config::from_file(dir.path / "config.json"), ConfigError);
}
