// Loads a GPT-2 model folder and generates 8 tokens greedily after the token ids 1 2 3: enough to
// show that the installed headers, their dependencies and the model folder all work.
//   consumer MODEL_DIR
#include <cstdio>
#include <exception>

#include <ctformer/ctformer.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  try {
    auto model = ctformer::GPT2<ctformer::cpu, float>::from_directory(argv[1]);
    ctformer::Generator generator(model);
    ctformer::Request request;
    request.prompt = {1, 2, 3};
    request.params.max_new_tokens = 8;
    request.params.stop_at_eos = false;
    generator.submit(request);
    const ctformer::Result result = generator.run().at(0);
    std::printf("generated %zu tokens:", result.tokens.size());
    for (const auto token : result.tokens) std::printf(" %d", token);
    std::printf("\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
