#include <cstdio>
#include <vector>

#include <ctformer/ctformer.hpp>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto model = ctformer::GPT2<ctformer::cpu, float>::from_directory(argv[1]);
  const std::vector<std::vector<std::int32_t>> prompts = {{1, 2, 3}};
  ctformer::GreedyOptions options;
  options.max_new_tokens = 8;
  const auto out = ctformer::generate_greedy(model, prompts, options);
  std::printf("generated %zu tokens\n", out[0].size());
}
