// The workload this project exists for (../shared/SEED-WORKLOAD.md): 1,000 prompts "My example 0"
// ... "My example 999", greedy, max_length=50 (prompt included), stopping at <|endoftext|>, served
// with continuous batching.
//   example_seed_workload MODEL_DIR [--prompts N] [--batch-size N] [--dtype fp32|fp16|bf16]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <ctformer/ctformer.hpp>
#include <ctformer/generation/workload.hpp>

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr,
                 "usage: %s MODEL_DIR [--prompts N] [--batch-size N] [--dtype fp32|fp16|bf16]\n"
                 "MODEL_DIR is a Hugging Face GPT-2 folder (config.json, model.safetensors, "
                 "vocab.json, merges.txt).\n",
                 argv[0]);
    return 2;
  }
  int prompts_count = 1000;
  ctformer::GeneratorOptions options;
  std::string dtype = "fp32";
  for (int i = 2; i < argc; i += 2) {
    const bool has_value = i + 1 < argc;
    if (has_value && std::strcmp(argv[i], "--prompts") == 0)
      prompts_count = std::atoi(argv[i + 1]);
    else if (has_value && std::strcmp(argv[i], "--batch-size") == 0)
      options.max_batch = std::atoi(argv[i + 1]);
    else if (has_value && std::strcmp(argv[i], "--dtype") == 0)
      dtype = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown option or missing value: %s (see --help)\n", argv[i]);
      return 2;
    }
  }
  try {
    ctformer::check_model_directory(argv[1], ctformer::NeedTokenizer::yes);
    const auto tokenizer = ctformer::Gpt2Tokenizer::from_directory(argv[1]);
    return ctformer::with_gpt2(
        ctformer::Device::cpu, ctformer::parse_weight_dtype(dtype), argv[1], [&](auto& model) {
          ctformer::Generator generator(model, options, &tokenizer);
          const std::vector<std::string> prompts =
              ctformer::seed_workload_prompts(static_cast<std::size_t>(prompts_count));
          const ctformer::WorkloadRun run = ctformer::run_workload(
              generator, prompts, ctformer::seed_workload_params(),
              [&](std::size_t finished, std::size_t total) {
                std::fprintf(stderr, "\r%zu / %zu requests done", finished, total);
              });
          std::fprintf(stderr, "\n");
          const auto& results = run.results;
          const ctformer::WorkloadSummary& s = run.summary;
          std::printf(
              "seed workload: %zu prompts, greedy, max_length 50, batch %lld, %s weights, cpu\n",
              results.size(), static_cast<long long>(options.max_batch), dtype.c_str());
          std::printf("time              %.2f s\n", s.seconds);
          std::printf("prompt tokens     %zu\n", s.prompt_tokens);
          std::printf("generated tokens  %zu\n", s.generated_tokens);
          std::printf("throughput        %.1f generated tokens/s\n", s.tokens_per_second());
          std::printf(
              "seed's measure    %.1f words/s (whitespace words of prompt + output, as the "
              "seed counted them; its GPU baseline: 85.1)\n",
              s.words_per_second());
          std::printf("ttft              p50 %.1f ms (all requests are submitted at once)\n",
                      s.ttft_ms_p50);
          std::printf("inter-token       p50 %.1f ms, p99 %.1f ms\n", s.itl_ms_p50, s.itl_ms_p99);
          std::printf("peak memory       %.0f MiB\n", double(s.peak_memory_bytes) / (1 << 20));
          for (std::size_t p = 0; p < std::min<std::size_t>(3, results.size()); ++p)
            std::printf("[%zu] %s%s\n", p, prompts[p].c_str(), results[p].text.c_str());
          return 0;
        });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
