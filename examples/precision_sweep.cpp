// The same model and prompts with weights in fp32, fp16 and bf16: speed, and how far logits and
// greedy tokens move away from fp32 (docs/precision.md). On the CPU the weights are stored in the
// dtype and everything is computed in fp32; built by nvcc (from a .cu copy of this file, linked
// with ctformer::cuda) on a machine with a usable GPU, the CUDA backend's fp32/fp16/bf16 runs too,
// and is compared with the CPU's fp32.
//   example_precision_sweep MODEL_DIR [--prompts N] [--max-new-tokens N]
// Prompts are "My example 0", "My example 1", ... when MODEL_DIR has vocab.json and merges.txt;
// otherwise random token ids (8 to 15 of them, a fixed seed), so that ids-only test models work.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <ctformer/ctformer.hpp>

namespace {

namespace fs = std::filesystem;

struct Outcome {
  std::string device, dtype;
  double seconds = 0;
  std::size_t generated = 0;
  std::vector<std::vector<std::int32_t>> tokens;  // greedy continuation of each prompt
  std::vector<std::vector<float>> logits;         // every position of prompt + fp32's tokens
};

// Logits of every position of `tokens` (one sequence), as host floats.
template <class Model>
std::vector<float> every_token_logits(Model& model, const std::vector<std::int32_t>& tokens) {
  auto cache = model.make_cache(std::int64_t(tokens.size()));
  const ctformer::SequenceStep step{cache.add_sequence(), tokens, ctformer::LogitsFor::every_token};
  const auto logits = model.forward({&step, 1}, cache);
  using B = typename Model::backend;
  if constexpr (std::is_same_v<B, ctformer::cpu>) {
    return {logits.data, logits.data + logits.size()};
  } else {
    const auto host = B::download(logits);  // device memory, in the activation type
    std::vector<float> out(host.size());
    for (std::size_t i = 0; i < host.size(); ++i) out[i] = static_cast<float>(host[i]);
    return out;
  }
}

// Greedy decoding of every prompt at once (max_new_tokens each, not stopping at end-of-text so
// that all runs have the same length), timed; then, when `teacher` is given, the logits of each
// prompt followed by the teacher's tokens.
template <class Model>
Outcome sweep(Model& model, const std::vector<std::vector<std::int32_t>>& prompts,
              std::int64_t max_new_tokens, const Outcome* teacher) {
  ctformer::GenerationParams params;  // greedy
  params.max_new_tokens = max_new_tokens;
  params.max_length = std::int64_t(1) << 40;
  params.stop_at_eos = false;
  ctformer::GeneratorOptions options;
  options.kv_cache_bytes = std::int64_t(256) << 20;
  ctformer::Generator generator(model, options);
  auto submit_all = [&](const ctformer::GenerationParams& p) {
    for (const auto& prompt : prompts) {
      ctformer::Request request;
      request.prompt = prompt;
      request.params = p;
      generator.submit(request);
    }
  };
  ctformer::GenerationParams warmup = params;  // first-step allocations out of the timing
  warmup.max_new_tokens = 2;
  submit_all(warmup);
  generator.run();

  Outcome o;
  submit_all(params);
  const auto start = std::chrono::steady_clock::now();
  const auto results = generator.run();
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& r : results) {
    o.generated += r.tokens.size();
    o.tokens.push_back(r.tokens);
  }
  const auto& forced = teacher ? teacher->tokens : o.tokens;
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    std::vector<std::int32_t> sequence = prompts[p];
    sequence.insert(sequence.end(), forced[p].begin(), forced[p].end());
    o.logits.push_back(every_token_logits(model, sequence));
  }
  return o;
}

// max |got - want| / max |want|, as tests/support/reference.hpp defines the relative error.
double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double max_diff = 0, max_ref = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max(max_diff, double(std::abs(got[i] - want[i])));
    max_ref = std::max(max_ref, double(std::abs(want[i])));
  }
  return std::isnan(max_diff) ? INFINITY : max_diff / max_ref;
}

std::vector<std::vector<std::int32_t>> make_prompts(const fs::path& dir, int count,
                                                    std::int64_t vocab_size, bool& from_text) {
  std::vector<std::vector<std::int32_t>> prompts;
  from_text = fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt");
  if (from_text) {
    const auto tokenizer = ctformer::Gpt2Tokenizer::from_directory(dir);
    for (int i = 0; i < count; ++i)
      prompts.push_back(tokenizer.encode("My example " + std::to_string(i)));
    return prompts;
  }
  std::mt19937 rng(2024);
  std::uniform_int_distribution<std::int32_t> id(0, std::int32_t(vocab_size - 1));
  std::uniform_int_distribution<int> length(8, 15);
  for (int i = 0; i < count; ++i) {
    std::vector<std::int32_t> prompt(static_cast<std::size_t>(length(rng)));
    for (auto& t : prompt) t = id(rng);
    prompts.push_back(prompt);
  }
  return prompts;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0) {
    std::fprintf(stderr,
                 "usage: %s MODEL_DIR [--prompts N] [--max-new-tokens N]\n"
                 "Runs N prompts (default 8) greedily for --max-new-tokens (default 32) in fp32, "
                 "fp16 and bf16 and compares them with fp32.\n",
                 argv[0]);
    return 2;
  }
  int prompt_count = 8;
  std::int64_t max_new_tokens = 32;
  for (int i = 2; i < argc; i += 2) {
    const bool has_value = i + 1 < argc;
    if (has_value && std::strcmp(argv[i], "--prompts") == 0)
      prompt_count = std::atoi(argv[i + 1]);
    else if (has_value && std::strcmp(argv[i], "--max-new-tokens") == 0)
      max_new_tokens = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option or missing value: %s (see --help)\n", argv[i]);
      return 2;
    }
  }
  if (prompt_count <= 0 || max_new_tokens <= 0) {
    std::fprintf(stderr, "--prompts and --max-new-tokens must be positive\n");
    return 2;
  }
  try {
    const fs::path dir = argv[1];
    ctformer::check_model_directory(dir, ctformer::NeedTokenizer::no);
    const auto config = ctformer::Gpt2Config::from_file(dir / "config.json");
    bool from_text = false;
    const auto prompts = make_prompts(dir, prompt_count, config.vocab_size, from_text);
    std::size_t longest = 0;
    for (const auto& p : prompts) longest = std::max(longest, p.size());
    max_new_tokens =
        std::min<std::int64_t>(max_new_tokens, config.n_positions - std::int64_t(longest));

    std::vector<ctformer::Device> devices = {ctformer::Device::cpu};
#if defined(__CUDACC__)
    try {
      const auto gpu = ctformer::cuda_device::probe();
      std::printf("gpu: %s\n", ctformer::cuda_device::describe(gpu).c_str());
      devices.push_back(ctformer::Device::cuda);
    } catch (const ctformer::CudaError& e) {
      std::printf("cuda: not run: %s\n", e.what());
    }
#endif

    std::printf(
        "%s: %d layers, n_embd %lld, vocabulary %lld; %zu prompts (%s), %lld greedy tokens "
        "each\n",
        dir.string().c_str(), int(config.n_layer), static_cast<long long>(config.n_embd),
        static_cast<long long>(config.vocab_size), prompts.size(),
        from_text ? "\"My example N\"" : "random token ids",
        static_cast<long long>(max_new_tokens));
    std::vector<Outcome> outcomes;
    for (const ctformer::Device device : devices)
      for (const auto& d : ctformer::kWeightDTypes) {
        const Outcome* reference = outcomes.empty() ? nullptr : &outcomes.front();
        Outcome o = ctformer::with_gpt2(device, d.dtype, dir, [&](auto& model) {
          return sweep(model, prompts, max_new_tokens, reference);
        });
        o.device = device == ctformer::Device::cpu ? "cpu" : "cuda";
        o.dtype = std::string(d.name);
        outcomes.push_back(std::move(o));
      }

    const Outcome& ref = outcomes.front();  // cpu fp32
    std::printf(
        "\n| device | dtype | tokens/s | logits: max rel. error vs cpu fp32 | prompts with "
        "identical tokens | first differing position | identical tokens |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    for (const Outcome& o : outcomes) {
      double worst = 0;
      std::size_t same_prompts = 0, same_tokens = 0, total_tokens = 0;
      std::int64_t first_diff = -1;  // earliest over the prompts; -1: none
      for (std::size_t p = 0; p < prompts.size(); ++p) {
        worst = std::max(worst, relative_error(o.logits[p], ref.logits[p]));
        const auto& a = o.tokens[p];
        const auto& b = ref.tokens[p];
        const std::size_t n = std::min(a.size(), b.size());
        std::int64_t diff = -1;
        for (std::size_t t = 0; t < n; ++t) {
          same_tokens += a[t] == b[t];
          if (a[t] != b[t] && diff < 0) diff = std::int64_t(t);
        }
        total_tokens += std::max(a.size(), b.size());
        if (diff < 0 && a.size() == b.size()) ++same_prompts;
        if (diff >= 0 && (first_diff < 0 || diff < first_diff)) first_diff = diff;
      }
      const std::string first = first_diff < 0 ? "none" : std::to_string(first_diff);
      std::printf("| %s | %s | %.1f | %.2e | %zu / %zu | %s | %.1f%% |\n", o.device.c_str(),
                  o.dtype.c_str(), double(o.generated) / o.seconds, worst, same_prompts,
                  prompts.size(), first.c_str(),
                  100.0 * double(same_tokens) / double(std::max<std::size_t>(1, total_tokens)));
    }
    std::printf(
        "\nfirst differing position: the earliest generated position (0 = the first new "
        "token) where any prompt's greedy tokens differ from cpu fp32's.\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
