// `ctformer bench`: the seed workload (or prompts from a file) through the generator, timed, with
// throughput, latency percentiles and peak memory, as text or one JSON object.
#pragma once

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "arguments.hpp"
#include "ctformer/ctformer.hpp"
#include "ctformer/generation/workload.hpp"
#include "hub/hub.hpp"
#include "progress_bar.hpp"
#include "prompt_file.hpp"

namespace ctformer::cli {

inline constexpr const char* kBenchUsage =
    "usage: ctformer bench --model DIR|NAME [--workload seed | --prompts F] [--json]\n"
    "                      [--batch-size N] [--dtype fp32|fp16|bf16] [--device cpu|cuda]\n"
    "                      [--max-length N]\n"
    "\n"
    "Runs a batch of prompts through the generator (continuous batching) and reports the time,\n"
    "prompt and generated token counts, generated tokens/s, time to first token, inter-token\n"
    "latency percentiles and peak memory. Every prompt is submitted at once, decoded greedily and\n"
    "stops at end-of-text or max_length. DIR and NAME as for `ctformer generate`.\n"
    "  --workload seed      the seed workload (default): 1,000 prompts \"My example 0\" ...\n"
    "                       \"My example 999\", greedy, max_length 50\n"
    "  --prompts F          the prompts of file F instead, one per line\n"
    "  --max-length N       prompt + generated tokens per request (default 50)\n"
    "  --batch-size N       sequences decoded together (default 64)\n"
    "  --dtype D            weights in fp32 (default), fp16 or bf16 (see docs/precision.md)\n"
    "  --device D           cpu (default), or cuda (a CUDA build of ctformer and a GPU)\n"
    "  --json               print one JSON object (docs/cli.md) instead of the text summary\n"
    "A progress bar is drawn on stderr when it is a terminal.";

inline int bench_main(int argc, char** argv) {
  Arguments args(argc, argv, kBenchUsage);
  if (args.printed_help()) return 0;
  const auto model_dir = args.value("--model");
  const auto workload = args.value("--workload");
  const auto prompt_file = args.value("--prompts");
  const auto max_length = args.number<std::int64_t>("--max-length");
  GeneratorOptions options;
  options.max_batch = args.number<std::int64_t>("--batch-size").value_or(64);
  const std::string dtype_name = args.value("--dtype").value_or("fp32");
  const std::string device_name = args.value("--device").value_or("cpu");
  const bool json = args.flag("--json");
  args.finish();
  if (!model_dir) args.fail("--model DIR|NAME is required");
  if (workload && prompt_file) args.fail("give --workload or --prompts, not both");
  if (workload && *workload != "seed")
    args.fail("unknown workload '" + *workload + "'; the only one is 'seed' (or give --prompts F)");
  if (options.max_batch <= 0) args.fail("--batch-size must be positive");
  if (max_length && *max_length <= 0) args.fail("--max-length must be positive");
  const DType dtype = parse_weight_dtype(dtype_name);
  const Device device = parse_device(device_name);

  std::vector<std::string> prompts;
  if (prompt_file) {
    std::ifstream in(*prompt_file);
    if (!in) throw FileError("cannot open prompt file '" + *prompt_file + "'");
    prompts = read_prompt_lines(in, "prompt file '" + *prompt_file + "'");
  } else {
    prompts = seed_workload_prompts();
  }
  const GenerationParams params = seed_workload_params(max_length.value_or(kSeedWorkloadMaxLength));

  const std::filesystem::path model_path = resolve_model(*model_dir);
  check_model_directory(model_path, NeedTokenizer::yes);
  const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::from_directory(model_path);

  return with_gpt2(device, dtype, model_path, [&](auto& model) {
    Generator generator(model, options, &tokenizer);
    WorkloadRun run;
    {
      CountProgress progress("bench", "requests");
      run = run_workload(generator, prompts, params, [&](std::size_t done, std::size_t total) {
        progress.update(done, total);
      });
    }
    const WorkloadSummary& s = run.summary;
    const std::string workload_name = prompt_file ? "prompts" : "seed";
    // Which projection kernel ran, on the CPU: the speed depends on it (docs/performance.md).
    const nlohmann::json cpu_kernel =
        device_name == "cpu" ? nlohmann::json(ops::packed::best_kernel_name()) : nullptr;
    if (json) {
      const nlohmann::json out = {{"model", model_path.string()},
                                  {"workload", workload_name},
                                  {"device", device_name},
                                  {"dtype", dtype_name},
                                  {"cpu_kernel", cpu_kernel},
                                  {"batch_size", options.max_batch},
                                  {"max_length", params.max_length},
                                  {"requests", s.requests},
                                  {"prompt_tokens", s.prompt_tokens},
                                  {"generated_tokens", s.generated_tokens},
                                  {"seconds", s.seconds},
                                  {"tokens_per_second", s.tokens_per_second()},
                                  {"words_per_second", s.words_per_second()},
                                  {"ttft_ms_p50", s.ttft_ms_p50},
                                  {"ttft_ms_p99", s.ttft_ms_p99},
                                  {"itl_ms_p50", s.itl_ms_p50},
                                  {"itl_ms_p99", s.itl_ms_p99},
                                  {"peak_memory_bytes", s.peak_memory_bytes}};
      std::cout << out.dump(2) << '\n';
      return 0;
    }
    const std::string device =
        cpu_kernel.is_null() ? device_name : "cpu (" + cpu_kernel.get<std::string>() + " kernel)";
    std::printf("%s: %zu prompts, greedy, max_length %lld, batch %lld, %s weights, %s\n",
                prompt_file ? ("prompts of " + *prompt_file).c_str() : "seed workload", s.requests,
                static_cast<long long>(params.max_length),
                static_cast<long long>(options.max_batch), dtype_name.c_str(), device.c_str());
    std::printf("time              %.2f s\n", s.seconds);
    std::printf("prompt tokens     %zu\n", s.prompt_tokens);
    std::printf("generated tokens  %zu\n", s.generated_tokens);
    std::printf("throughput        %.1f generated tokens/s (%.1f words/s of prompt + output)\n",
                s.tokens_per_second(), s.words_per_second());
    std::printf("ttft              p50 %.1f ms, p99 %.1f ms (all requests are submitted at once)\n",
                s.ttft_ms_p50, s.ttft_ms_p99);
    std::printf("inter-token       p50 %.1f ms, p99 %.1f ms\n", s.itl_ms_p50, s.itl_ms_p99);
    std::printf("peak memory       %s (resident, whole process)\n",
                format_bytes(double(s.peak_memory_bytes)).c_str());
    return 0;
  });
}

}  // namespace ctformer::cli
