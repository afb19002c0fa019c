// A transformer variant built from ctformer's layer templates, beside the GPT-2 they came from:
//   GPT-2:    x = x + attn(LayerNorm_1(x));  x = x + mlp(LayerNorm_2(x))      (PreNormBlock)
//   variant:  x = x + attn(RmsNorm(x)) + mlp(RmsNorm(x))                       (ParallelBlock)
// RMSNorm as in T5 and LLaMA, the parallel block as in GPT-J and PaLM, with GPT-2's attention, MLP,
// embeddings and tied LM head. The whole difference is the two type aliases below;
// docs/composing-variants.md explains the parts.
//
// There is no checkpoint trained for this structure, so the variant reuses a GPT-2 checkpoint's
// weights by name: the same embeddings, attention and MLP matrices; each block's ln_1.weight as
// its RMSNorm scale and ln_f.weight as the final one (ln_2 and the norms' biases are not read).
// It therefore loads, runs and generates like GPT-2, with the KV cache and the generator, but its
// predictions are not those of a trained model: compare, do not expect sense.
//
//   example_custom_variant MODEL_DIR [PROMPT]
// MODEL_DIR is a GPT-2 folder (e.g. gpt2 from `ctformer download gpt2`, or the tiny
// tests/data/models/gpt2-h16). With vocab.json and merges.txt there, PROMPT is text; without them
// the program uses token ids.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <ctformer/ctformer.hpp>
#include <ctformer/layers/parallel_block.hpp>
#include <ctformer/layers/rms_norm.hpp>

namespace ct = ctformer;

template <ct::Backend B, class T>
using ParallelRmsBlock =
    ct::ParallelBlock<ct::RmsNorm<B, T>, ct::CausalSelfAttention<B, T>, ct::Mlp<B, T>>;

// DecoderModel<B, T> with its defaults is GPT2<B, T>; here the block and the final norm differ.
template <ct::Backend B, class T>
using ParallelRmsModel = ct::DecoderModel<B, T, ParallelRmsBlock<B, T>, ct::RmsNorm<B, T>>;

// The parts meet the concepts the templates check (a part that did not would not compile).
static_assert(ct::NormLayer<ct::RmsNorm<ct::cpu, float>>);
static_assert(ct::DecoderBlock<ParallelRmsBlock<ct::cpu, float>>);

// Greedy continuation of `prompt` by any model type: the generator is a template over it too.
template <class Model>
ct::Result continue_greedily(Model& model, const std::vector<std::int32_t>& prompt,
                             const ct::Gpt2Tokenizer* tokenizer) {
  ct::GeneratorOptions options;
  options.kv_cache_bytes = std::int64_t(64) << 20;
  ct::Generator<Model> generator(model, options, tokenizer);
  ct::Request request;
  request.prompt = prompt;
  request.params.max_new_tokens = 16;
  request.params.stop_at_eos = false;
  generator.submit(request);
  return generator.run().at(0);
}

void print(const char* name, const ct::Result& r) {
  std::printf("%-8s", name);
  if (!r.text.empty()) std::printf("%s\n%8s", r.text.c_str(), "");
  std::printf("ids:");
  for (const std::int32_t t : r.tokens) std::printf(" %d", t);
  std::printf("\n");
}

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [PROMPT]\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    auto gpt2 = ct::GPT2<ct::cpu, float>::from_directory(dir);
    auto variant = ParallelRmsModel<ct::cpu, float>::from_directory(dir);

    std::optional<ct::Gpt2Tokenizer> tokenizer;
    std::vector<std::int32_t> prompt = {1, 2, 3};
    if (std::filesystem::exists(dir / "vocab.json")) {
      tokenizer = ct::Gpt2Tokenizer::from_directory(dir);
      prompt = tokenizer->encode(argc == 3 ? argv[2] : "The meaning of life is");
    }
    const ct::Gpt2Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;

    print("GPT-2", continue_greedily(gpt2, prompt, tok));
    print("variant", continue_greedily(variant, prompt, tok));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
