// The seed workload's shape on the GPU: GPT-2 124M (random weights, written here as a safetensors
// file: no download), a batch of short prompts prefilled together, then greedy decode steps.
//   gpt2_cuda_bench [--batch N] [--prompt-tokens N] [--decode-steps N] [--dtype fp32|fp16|bf16]
// Prints prefill and decode tokens/s and decode step times per precision, with and without CUDA
// graphs, and at batches of up to kGemvMaxRows also with the norms run as kernels of their own
// rather than inside ctformer's GEMV, and with cuBLASLt in place of the GEMV for the projections
// (ops/linear.cuh). Exits 77 (skipped) without a usable GPU.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nvtx3/nvToolsExt.h>
#include <nlohmann/json.hpp>

#include "ctformer/ctformer.hpp"

using namespace ctformer;

namespace {

// Hugging Face names and shapes of GPT-2 124M, with random fp16 weights (LayerNorm weights 1).
void write_random_gpt2(const std::filesystem::path& dir) {
  const std::int64_t L = 12, C = 768, V = 50257, P = 1024;
  std::filesystem::create_directories(dir);
  nlohmann::json config = {{"model_type", "gpt2"},
                           {"vocab_size", V},
                           {"n_positions", P},
                           {"n_embd", C},
                           {"n_layer", L},
                           {"n_head", 12},
                           {"activation_function", "gelu_new"}};
  std::ofstream(dir / "config.json") << config.dump(2);
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> tensors = {{"wte.weight", {V, C}},
                                                                            {"wpe.weight", {P, C}}};
  for (std::int64_t l = 0; l < L; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    for (const auto& [name, shape] : std::vector<std::pair<std::string, std::vector<std::int64_t>>>{
             {"ln_1.weight", {C}},
             {"ln_1.bias", {C}},
             {"attn.c_attn.weight", {C, 3 * C}},
             {"attn.c_attn.bias", {3 * C}},
             {"attn.c_proj.weight", {C, C}},
             {"attn.c_proj.bias", {C}},
             {"ln_2.weight", {C}},
             {"ln_2.bias", {C}},
             {"mlp.c_fc.weight", {C, 4 * C}},
             {"mlp.c_fc.bias", {4 * C}},
             {"mlp.c_proj.weight", {4 * C, C}},
             {"mlp.c_proj.bias", {C}}})
      tensors.push_back({h + name, shape});
  }
  tensors.push_back({"ln_f.weight", {C}});
  tensors.push_back({"ln_f.bias", {C}});
  nlohmann::json header = nlohmann::json::object();
  std::vector<std::uint16_t> data;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (const auto& [name, shape] : tensors) {
    std::int64_t n = 1;
    for (const std::int64_t d : shape) n *= d;
    const std::size_t begin = data.size() * 2;
    const bool ones = name.find("ln_") != std::string::npos && name.ends_with("weight");
    for (std::int64_t i = 0; i < n; ++i) {
      const __half h = __float2half(ones ? 1.0f : normal(rng));
      data.push_back(*reinterpret_cast<const std::uint16_t*>(&h));
    }
    header[name] = {{"dtype", "F16"}, {"shape", shape}, {"data_offsets", {begin, data.size() * 2}}};
  }
  const std::string h = header.dump();
  std::ofstream out(dir / "model.safetensors", std::ios::binary);
  const std::uint64_t length = h.size();
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << h;
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * 2));
}

struct Shape {
  std::int64_t batch, prompt_tokens;
};

// Prefill of `batch` prompts together, then greedy decode steps (each ending with the argmax copied
// to the host, as a generator needs it), with the decode steps run directly and from CUDA graphs,
// and from graphs with the norms unfused, then with every projection through cuBLASLt where the
// GEMV would have run.
template <class T>
void run(const std::filesystem::path& dir, const std::vector<Shape>& shapes,
         std::int64_t decode_steps) {
  auto model = GPT2<ctformer::cuda, T>::from_directory(dir);
  using clock = std::chrono::steady_clock;
  auto seconds = [](clock::time_point a) {
    return std::chrono::duration<double>(clock::now() - a).count();
  };
  struct Mode {
    bool graphs, gemv, fused;
  };
  for (const auto [batch, prompt_tokens] : shapes)
    for (const auto [graphs, gemv, fused] : {Mode{false, true, true}, Mode{true, true, true},
                                             Mode{true, true, false}, Mode{true, false, false}}) {
      if (!(gemv && fused) && batch > ops::cuda_kernels::kGemvMaxRows) continue;  // the same
      cuda_detail::context().set_use_gemv(gemv);
      cuda_detail::context().set_fuse_norms(fused);
      model.decode_graphs().set_enabled(false);  // drops graphs recorded in another mode
      model.decode_graphs().set_enabled(graphs);
      for (int round = 0; round < 2; ++round) {  // round 0 warms up (allocations, heuristics)
        auto cache = model.make_cache(batch * (prompt_tokens + decode_steps));
        std::vector<std::vector<std::int32_t>> prompts(static_cast<std::size_t>(batch));
        std::vector<SequenceStep> steps;
        for (std::int64_t b = 0; b < batch; ++b) {
          for (std::int64_t t = 0; t < prompt_tokens; ++t)
            prompts[b].push_back(std::int32_t((b * 131 + t * 17) % 50257));
          steps.push_back({cache.add_sequence(), prompts[b]});
        }
        std::vector<std::int32_t> next(static_cast<std::size_t>(batch));
        auto start = clock::now();
        ops::Argmax<ctformer::cuda>::run(model.forward(steps, cache), next);
        const double prefill = seconds(start);
        std::vector<double> step_ms;
        // What tools/gpu-check.sh profiles (Nsight Compute's --nvtx-include decode-direct/).
        if (round == 1)
          nvtxRangePushA(!graphs  ? "decode-direct"
                         : !gemv  ? "decode-cublaslt"
                         : !fused ? "decode-unfused-norms"
                                  : "decode-graphs");
        for (std::int64_t s = 0; s < decode_steps; ++s) {
          for (std::int64_t b = 0; b < batch; ++b)
            steps[b].tokens = std::span<const std::int32_t>(next.data() + b, 1);
          start = clock::now();
          ops::Argmax<ctformer::cuda>::run(model.forward(steps, cache), next);
          step_ms.push_back(seconds(start) * 1e3);
        }
        if (round == 0) continue;
        nvtxRangePop();
        double total = 0;
        for (const double ms : step_ms) total += ms;
        std::sort(step_ms.begin(), step_ms.end());
        std::printf(
            "%-5s batch %3lld prompt %4lld graphs %-3s gemv %-3s: prefill %9.0f tokens/s (%.2f "
            "ms), "
            "decode %8.0f tokens/s (p50 %.3f ms/step, mean %.3f)\n",
            std::string(cuda_detail::dtype_name<T>()).c_str(), (long long)batch,
            (long long)prompt_tokens, graphs ? "on" : "off",
            batch > ops::cuda_kernels::kGemvMaxRows ? "-"
            : gemv                                  ? "on"
                                                    : "off",
            double(batch * prompt_tokens) / prefill, prefill * 1e3,
            double(batch * decode_steps) / (total / 1e3), step_ms[step_ms.size() / 2],
            total / double(decode_steps));
      }
    }
  if (!model.decode_graphs().failure().empty())
    std::printf("CUDA graphs failed: %s\n", model.decode_graphs().failure().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // Batch 1 (latency) and 256 (throughput) as issue 4 asks, 64 as the seed workload runs, and 8
  // long prompts for decode over a long cache. --batch / --prompt-tokens pick one instead.
  std::vector<Shape> shapes = {{1, 4}, {64, 4}, {256, 4}, {8, 512}};
  std::int64_t batch = 0, prompt_tokens = 4, decode_steps = 46;  // seed: max_length 50
  std::string dtype = "all";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--batch")
      batch = std::stoll(argv[i + 1]);
    else if (flag == "--prompt-tokens")
      prompt_tokens = std::stoll(argv[i + 1]);
    else if (flag == "--decode-steps")
      decode_steps = std::stoll(argv[i + 1]);
    else if (flag == "--dtype")
      dtype = argv[i + 1];
    else {
      std::cerr << "unknown option " << flag << "\n";
      return 2;
    }
  }
  try {
    std::cout << "GPU: " << cuda_device::describe(cuda_detail::context().device()) << "\n";
  } catch (const CudaError& e) {
    std::cout << "SKIPPED: " << e.what() << "\n";
    return 77;
  }
  try {
    const auto dir = std::filesystem::temp_directory_path() / "ctformer-bench-gpt2-124m";
    if (!std::filesystem::exists(dir / "model.safetensors")) write_random_gpt2(dir);
    if (batch > 0) shapes = {{batch, prompt_tokens}};
    if (dtype == "all" || dtype == "fp16") run<__half>(dir, shapes, decode_steps);
    if (dtype == "all" || dtype == "bf16") run<__nv_bfloat16>(dir, shapes, decode_steps);
    if (dtype == "all" || dtype == "fp32") run<float>(dir, shapes, decode_steps);
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
