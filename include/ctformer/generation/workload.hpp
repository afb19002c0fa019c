// A timed batch of prompts through a Generator, and its summary: the seed workload (1,000 prompts
// "My example 0" ... "My example 999", greedy, max_length 50, stopping at <|endoftext|>), or any
// list of prompts with the same parameters. Shared by `ctformer bench` and
// examples/seed_workload.cpp, so that both measure the same thing the same way.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "ctformer/core/error.hpp"
#include "ctformer/generation/generation_params.hpp"
#include "ctformer/generation/generator.hpp"

namespace ctformer {

inline constexpr std::size_t kSeedWorkloadPrompts = 1000;
inline constexpr std::int64_t kSeedWorkloadMaxLength = 50;

// "My example 0", ..., "My example <count - 1>".
inline std::vector<std::string> seed_workload_prompts(std::size_t count = kSeedWorkloadPrompts) {
  std::vector<std::string> prompts;
  prompts.reserve(count);
  for (std::size_t i = 0; i < count; ++i) prompts.push_back("My example " + std::to_string(i));
  return prompts;
}

// Greedy, max_length 50 (prompt included), stop at end-of-text: the seed's pipeline settings.
inline GenerationParams seed_workload_params(std::int64_t max_length = kSeedWorkloadMaxLength) {
  GenerationParams params;  // greedy by default, as gpt2's generation config
  params.max_length = max_length;
  return params;
}

// The value at quantile q (0..1) of v, nearest rank from below; 0 for an empty v.
inline double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(q * double(v.size()));
  return v[std::min(v.size() - 1, rank)];
}

// The process's peak resident memory so far (getrusage's ru_maxrss), in bytes.
inline std::int64_t peak_resident_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return std::int64_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

// Whitespace-separated words: the unit of the seed benchmark's throughput.
inline std::size_t count_words(const std::string& text) {
  std::istringstream in(text);
  std::size_t n = 0;
  for (std::string word; in >> word;) ++n;
  return n;
}

struct WorkloadSummary {
  std::size_t requests = 0;
  std::size_t prompt_tokens = 0;     // as the tokenizer encoded the prompts
  std::size_t generated_tokens = 0;  // end-of-text tokens included
  std::size_t words = 0;             // whitespace words of prompt + generated text, as the seed
  double seconds = 0;                // wall time from the first step to the last
  double ttft_ms_p50 = 0, ttft_ms_p99 = 0;  // submission to first token
  double itl_ms_p50 = 0, itl_ms_p99 = 0;    // between consecutive tokens of a request
  std::int64_t peak_memory_bytes = 0;       // peak resident memory of the process

  double tokens_per_second() const { return seconds > 0 ? double(generated_tokens) / seconds : 0; }
  double words_per_second() const { return seconds > 0 ? double(words) / seconds : 0; }
};

// Figures over `results` (one per prompt, in the same order) that took `seconds`.
inline WorkloadSummary summarize_workload(const std::vector<std::string>& prompts,
                                          const std::vector<Result>& results, double seconds) {
  WorkloadSummary s;
  s.requests = results.size();
  s.seconds = seconds;
  std::vector<double> ttft, itl;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    s.prompt_tokens += r.prompt.size();
    s.generated_tokens += r.tokens.size();
    s.words += count_words((i < prompts.size() ? prompts[i] : std::string()) + r.text);
    if (!r.token_times_ms.empty()) ttft.push_back(r.ttft_ms);
    for (std::size_t t = 1; t < r.token_times_ms.size(); ++t)
      itl.push_back(r.token_times_ms[t] - r.token_times_ms[t - 1]);
  }
  s.ttft_ms_p50 = percentile(ttft, 0.5);
  s.ttft_ms_p99 = percentile(ttft, 0.99);
  s.itl_ms_p50 = percentile(itl, 0.5);
  s.itl_ms_p99 = percentile(itl, 0.99);
  s.peak_memory_bytes = peak_resident_bytes();
  return s;
}

struct WorkloadRun {
  std::vector<Result> results;  // one per prompt, in prompt order
  WorkloadSummary summary;
};

// Submits every prompt at once (text, encoded by the generator's tokenizer) with `params`, steps
// the generator until all have finished, and times it. `on_progress(finished, total)` is called
// after every step. A prompt the generator refuses throws InputError naming it ("prompt 3: ...").
// The generator must be idle and have no unclaimed results.
template <class Model>
WorkloadRun run_workload(Generator<Model>& generator, const std::vector<std::string>& prompts,
                         const GenerationParams& params,
                         const std::function<void(std::size_t, std::size_t)>& on_progress = {}) {
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    Request request;
    request.text = prompts[p];
    request.params = params;
    try {
      generator.submit(std::move(request));
    } catch (const InputError& e) {
      throw InputError("prompt " + std::to_string(p + 1) + ": " + e.what());
    }
  }
  const auto start = std::chrono::steady_clock::now();
  std::size_t finished = 0;
  while (!generator.idle()) {
    for (const TokenEvent& e : generator.step()) finished += e.finished.has_value();
    if (on_progress) on_progress(finished, prompts.size());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WorkloadRun run;
  run.results = generator.take_results();  // in submission order
  run.summary = summarize_workload(prompts, run.results, seconds);
  return run;
}

}  // namespace ctformer
