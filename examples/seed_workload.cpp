// The workload this project exists for (../shared/SEED-WORKLOAD.md): 1,000 prompts "My example 0"
// ... "My example 999", greedy, max_length=50 (prompt included), stopping at <|endoftext|>, served
// with continuous batching.
//   example_seed_workload MODEL_DIR [--prompts N] [--batch-size N] [--dtype fp32|fp16|bf16]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include <ctformer/ctformer.hpp>

namespace {

// Whitespace-separated words: the seed benchmark's throughput unit.
std::size_t count_words(const std::string& text) {
  std::istringstream in(text);
  std::size_t n = 0;
  for (std::string word; in >> word;) ++n;
  return n;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, std::size_t(q * double(v.size())))];
}

}  // namespace

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
    if (has_value && std::strcmp(argv[i], "--prompts") == 0) prompts_count = std::atoi(argv[i + 1]);
    else if (has_value && std::strcmp(argv[i], "--batch-size") == 0) options.max_batch = std::atoi(argv[i + 1]);
    else if (has_value && std::strcmp(argv[i], "--dtype") == 0) dtype = argv[i + 1];
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
          ctformer::GenerationParams params;  // greedy, as gpt2's generation config
          params.max_length = 50;
          std::vector<std::string> prompts;
          for (int i = 0; i < prompts_count; ++i) {
            prompts.push_back("My example " + std::to_string(i));
            ctformer::Request request;
            request.text = prompts.back();
            request.params = params;
            generator.submit(request);
          }

          const auto start = std::chrono::steady_clock::now();
          std::size_t finished = 0;
          while (!generator.idle()) {
            for (const auto& e : generator.step()) finished += e.finished.has_value();
            std::fprintf(stderr, "\r%zu / %d requests done", finished, prompts_count);
          }
          const double seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          std::fprintf(stderr, "\n");

          std::size_t prompt_tokens = 0, generated_tokens = 0, words = 0;
          std::vector<double> ttft, itl;
          const auto results = generator.take_results();
          for (const auto& r : results) {
            prompt_tokens += r.prompt.size();
            generated_tokens += r.tokens.size();
            words += count_words(prompts[r.id - 1] + r.text);  // the pipeline's generated_text
            ttft.push_back(r.ttft_ms);
            for (std::size_t t = 1; t < r.token_times_ms.size(); ++t)
              itl.push_back(r.token_times_ms[t] - r.token_times_ms[t - 1]);
          }
          rusage usage{};
          getrusage(RUSAGE_SELF, &usage);
          std::printf("seed workload: %zu prompts, greedy, max_length 50, batch %lld, %s weights, cpu\n",
                      results.size(), static_cast<long long>(options.max_batch), dtype.c_str());
          std::printf("time              %.2f s\n", seconds);
          std::printf("prompt tokens     %zu\n", prompt_tokens);
          std::printf("generated tokens  %zu\n", generated_tokens);
          std::printf("throughput        %.1f generated tokens/s\n", generated_tokens / seconds);
          std::printf("seed's measure    %.1f words/s (whitespace words of prompt + output, as the "
                      "seed counted them; its GPU baseline: 85.1)\n",
                      words / seconds);
          std::printf("ttft              p50 %.1f ms (all requests are submitted at once)\n",
                      percentile(ttft, 0.5));
          std::printf("inter-token       p50 %.1f ms, p99 %.1f ms\n", percentile(itl, 0.5),
                      percentile(itl, 0.99));
          std::printf("peak memory       %.0f MiB\n", usage.ru_maxrss / 1024.0);
          for (std::size_t p = 0; p < std::min<std::size_t>(3, results.size()); ++p)
            std::printf("[%zu] %s%s\n", p, prompts[results[p].id - 1].c_str(), results[p].text.c_str());
          return 0;
        });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
