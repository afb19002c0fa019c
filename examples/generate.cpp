// The smallest program that loads a GPT-2 model directory and generates text.
//   example_generate MODEL_DIR "Once upon a time"
#include <cstdio>
#include <exception>
#include <vector>

#include <ctformer/ctformer.hpp>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR PROMPT\n", argv[0]);
    return 2;
  }
  try {
    auto model = ctformer::GPT2<ctformer::cpu, float>::from_directory(argv[1]);
    const auto tokenizer = ctformer::Gpt2Tokenizer::from_directory(argv[1]);

    const std::vector<std::vector<std::int32_t>> prompts = {tokenizer.encode(argv[2])};
    ctformer::GreedyOptions options;
    options.max_new_tokens = 40;
    options.eos_token_id = model.config().eos_token_id;
    const auto generated = ctformer::generate_greedy(model, prompts, options);

    std::printf("%s%s\n", argv[2], tokenizer.decode(generated[0]).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
