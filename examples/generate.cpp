// The smallest program that loads a GPT-2 model directory and generates text, streaming it.
//   example_generate MODEL_DIR "Once upon a time"
#include <cstdio>
#include <exception>

#include <ctformer/ctformer.hpp>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL_DIR PROMPT\n", argv[0]);
    return 2;
  }
  try {
    auto model = ctformer::GPT2<ctformer::cpu, float>::from_directory(argv[1]);
    const auto tokenizer = ctformer::Gpt2Tokenizer::from_directory(argv[1]);
    ctformer::Generator generator(model, {}, &tokenizer);

    ctformer::Request request;
    request.text = argv[2];
    request.params.max_new_tokens = 40;
    request.on_event = [](const ctformer::TokenEvent& e) {
      std::fputs(e.text.c_str(), stdout);
      std::fflush(stdout);
    };
    std::fputs(argv[2], stdout);
    generator.submit(request);
    generator.run();
    std::fputs("\n", stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
