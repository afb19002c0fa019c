// The workload this project exists for (../shared/SEED-WORKLOAD.md): 1,000 prompts "My example 0"
// ... "My example 999", greedy, max_length=50 (prompt included), stopping at <|endoftext|>.
//   example_seed_workload MODEL_DIR [--prompts N] [--batch-size N] [--dtype fp32|fp16|bf16]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include <ctformer/ctformer.hpp>
#include <ctformer/io/model_directory.hpp>
#include <ctformer/models/dispatch.hpp>

namespace {

// Whitespace-separated words: the seed benchmark's throughput unit.
std::size_t count_words(const std::string& text) {
  std::istringstream in(text);
  std::size_t n = 0;
  for (std::string word; in >> word;) ++n;
  return n;
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
  ctformer::GreedyOptions options;
  options.max_new_tokens = 50;
  options.max_length = 50;
  std::string dtype = "fp32";
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--prompts") == 0) prompts_count = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--batch-size") == 0) options.max_batch = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--dtype") == 0) dtype = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  try {
    ctformer::check_model_directory(argv[1], ctformer::NeedTokenizer::yes);
    const auto tokenizer = ctformer::Gpt2Tokenizer::from_directory(argv[1]);
    std::vector<std::string> prompts;
    std::vector<std::vector<std::int32_t>> ids;
    for (int i = 0; i < prompts_count; ++i) {
      prompts.push_back("My example " + std::to_string(i));
      ids.push_back(tokenizer.encode(prompts.back()));
    }

    ctformer::with_gpt2(
        ctformer::Device::cpu, ctformer::parse_weight_dtype(dtype), argv[1], [&](auto& model) {
          options.eos_token_id = model.config().eos_token_id;
          std::size_t done_tokens = 0;
          options.on_token = [&](std::size_t, std::int32_t) {
            if (++done_tokens % 2000 == 0) std::fprintf(stderr, "\r%zu tokens", done_tokens);
          };
          const auto start = std::chrono::steady_clock::now();
          const auto outputs = ctformer::generate_greedy(model, ids, options);
          const double seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          std::fprintf(stderr, "\r");

          std::size_t prompt_tokens = 0, generated_tokens = 0, words = 0;
          std::vector<std::string> texts;
          for (std::size_t p = 0; p < outputs.size(); ++p) {
            prompt_tokens += ids[p].size();
            generated_tokens += outputs[p].size();
            auto text_ids = outputs[p];
            if (ctformer::finish_reason(outputs[p], options) == ctformer::FinishReason::stop)
              text_ids.pop_back();  // as the pipeline's skip_special_tokens
            texts.push_back(prompts[p] + ctformer::to_valid_utf8(tokenizer.decode(text_ids)));
            words += count_words(texts.back());
          }
          std::printf("seed workload: %zu prompts, greedy, max_length %lld, batch %lld, %s weights\n",
                      outputs.size(), static_cast<long long>(*options.max_length),
                      static_cast<long long>(options.max_batch), dtype.c_str());
          std::printf("time            %.2f s\n", seconds);
          std::printf("prompt tokens   %zu\n", prompt_tokens);
          std::printf("generated       %zu tokens\n", generated_tokens);
          std::printf("throughput      %.1f generated tokens/s\n", generated_tokens / seconds);
          std::printf("seed's measure  %.1f words/s (whitespace words of prompt + output, as the "
                      "seed counted them; its baseline: 85.1)\n",
                      words / seconds);
          for (std::size_t p = 0; p < std::min<std::size_t>(3, texts.size()); ++p)
            std::printf("[%zu] %s\n", p, texts[p].c_str());
          return 0;
        });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
