// One-layer GPT-2 models with random weights, written at test time (too big, or too many, to
// commit): for tests that need a model with a given vocabulary.
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

struct RandomGpt2Shape {
  std::int64_t vocab_size = 0, n_positions = 0, n_embd = 16, n_inner = 64;
  std::int32_t eos_token_id = 0;
};

// config.json and model.safetensors (F32, unprefixed names, N(0, 0.5) weights, LayerNorm scales
// around 1) of a one-layer, two-head GPT-2 of `shape`, into `dir`.
inline void write_random_gpt2(const std::filesystem::path& dir, const RandomGpt2Shape& shape,
                              unsigned seed) {
  const std::int64_t V = shape.vocab_size, P = shape.n_positions, C = shape.n_embd,
                     H = shape.n_inner;
  const nlohmann::json config = {{"model_type", "gpt2"},
                                 {"vocab_size", V},
                                 {"n_positions", P},
                                 {"n_embd", C},
                                 {"n_layer", 1},
                                 {"n_head", 2},
                                 {"n_inner", H},
                                 {"bos_token_id", shape.eos_token_id},
                                 {"eos_token_id", shape.eos_token_id}};
  std::ofstream(dir / "config.json") << config.dump();
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<RawTensor> tensors;
  auto add = [&](const std::string& name, std::vector<std::int64_t> dims, float base) {
    std::int64_t n = 1;
    for (auto d : dims) n *= d;
    std::vector<float> values(static_cast<std::size_t>(n));
    for (float& v : values) v = base + normal(rng);
    std::vector<std::byte> bytes(values.size() * 4);
    std::memcpy(bytes.data(), values.data(), bytes.size());
    tensors.push_back({name, "F32", dims, std::move(bytes)});
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
  write_safetensors(dir / "model.safetensors", tensors);
}

// GPT-2's full 50,257-token vocabulary with tiny width (C = 16, 64 positions) and the real
// vocab.json / merges.txt: for tests of text in and out. Needs gpt2_vocab_dir().
struct TinyFullVocabModel {
  TempDir dir{"tiny-full-vocab"};
  TinyFullVocabModel() {
    write_random_gpt2(dir.path, {.vocab_size = 50257, .n_positions = 64, .eos_token_id = 50256}, 7);
    for (const char* f : {"vocab.json", "merges.txt"})
      std::filesystem::copy_file(*gpt2_vocab_dir() / f, dir.path / f);
  }
  std::string arg() const { return "--model '" + dir.path.string() + "'"; }

  // One per test program, written on first use.
  static const TinyFullVocabModel& shared() {
    static const TinyFullVocabModel model;
    return model;
  }
};

// A random one-layer GPT-2 with the small byte-level BPE vocabulary committed for the fuzz targets
// (tests/fuzz/data: 1,070 tokens, <|endoftext|> last), so that these tests run without GPT-2's own
// vocabulary files.
struct SmallVocabModel {
  static constexpr std::int64_t kVocab = 1070;
  TempDir dir;
  SmallVocabModel(std::int64_t n_positions, std::int64_t n_embd)
      : dir("small-vocab-model-" + std::to_string(n_positions) + "x" + std::to_string(n_embd)) {
    write_random_gpt2(dir.path,
                      {.vocab_size = kVocab,
                       .n_positions = n_positions,
                       .n_embd = n_embd,
                       .n_inner = 4 * n_embd,
                       .eos_token_id = kVocab - 1},
                      7);
    for (const char* f : {"vocab.json", "merges.txt"})
      std::filesystem::copy_file(std::filesystem::path(CTFORMER_SOURCE_DIR) / "tests/fuzz/data" / f,
                                 dir.path / f);
  }
  std::string arg() const { return "--model '" + dir.path.string() + "'"; }

  // One per test program, written on first use: 64 positions.
  static const SmallVocabModel& tiny() {
    static const SmallVocabModel model(64, 16);
    return model;
  }
};

}  // namespace ctformer::test
