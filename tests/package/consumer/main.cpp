#include <cstdio>

#include <ctformer/ctformer.hpp>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto model = ctformer::GPT2<ctformer::cpu, float>::from_directory(argv[1]);
  ctformer::Generator generator(model);
  ctformer::Request request;
  request.prompt = {1, 2, 3};
  request.params.max_new_tokens = 8;
  request.params.stop_at_eos = false;
  generator.submit(request);
  std::printf("generated %zu tokens\n", generator.run().at(0).tokens.size());
}
