// A GPT-2 with the full 50,257-token vocabulary but tiny width, written at test time (it would be
// too big to commit), with the real vocab.json / merges.txt: for tests that need text in and out.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/safetensors_writer.hpp"
#include "support/test_support.hpp"

namespace ctformer::test {

// C = 16, 1 layer, 64 positions, random weights. Needs gpt2_vocab_dir().
struct TinyFullVocabModel {
  TempDir dir{"tiny-full-vocab"};
  TinyFullVocabModel() {
    const std::int64_t V = 50257, P = 64, C = 16, H = 64;
    nlohmann::json config = {{"model_type", "gpt2"}, {"vocab_size", V}, {"n_positions", P},
                             {"n_embd", C},          {"n_layer", 1},    {"n_head", 2},
                             {"n_inner", H},         {"bos_token_id", 50256},
                             {"eos_token_id", 50256}};
    std::ofstream(dir.path / "config.json") << config.dump();
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    std::vector<RawTensor> tensors;
    auto add = [&](const std::string& name, std::vector<std::int64_t> shape, float base) {
      std::int64_t n = 1;
      for (auto d : shape) n *= d;
      std::vector<float> values(static_cast<std::size_t>(n));
      for (float& v : values) v = base + normal(rng);
      std::vector<std::byte> bytes(values.size() * 4);
      std::memcpy(bytes.data(), values.data(), bytes.size());
      tensors.push_back({name, "F32", shape, std::move(bytes)});
    };
    add("wte.weight", {V, C}, 0);
    add("wpe.weight", {P, C}, 0);
    for (const char* ln : {"h.0.ln_1", "h.0.ln_2", "ln_f"}) {
      add(std::string(ln) + ".weight", {C}, 1);
      add(std::string(ln) + ".bias", {C}, 0);
    }
    add("h.0.attn.c_attn.weight", {C, 3 * C}, 0);
    add("h.0.attn.c_attn.bias", {3 * C}, 0);
    add("h.0.attn.c_proj.weight", {C, C}, 0);
    add("h.0.attn.c_proj.bias", {C}, 0);
    add("h.0.mlp.c_fc.weight", {C, H}, 0);
    add("h.0.mlp.c_fc.bias", {H}, 0);
    add("h.0.mlp.c_proj.weight", {H, C}, 0);
    add("h.0.mlp.c_proj.bias", {C}, 0);
    write_safetensors(dir.path / "model.safetensors", tensors);
    for (const char* f : {"vocab.json", "merges.txt"})
      std::filesystem::copy_file(*gpt2_vocab_dir() / f, dir.path / f);
  }
  std::string arg() const { return "--model '" + dir.path.string() + "'"; }
};

}  // namespace ctformer::test
