// The one place where a model's runtime choices (device, weight dtype) become template arguments.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/models/gpt2.hpp"

#if defined(__CUDACC__)
#include "ctformer/cuda.cuh"
#endif

namespace ctformer {

enum class Device { cpu, cuda };

struct WeightDTypeName {
  std::string_view name;
  DType dtype;
};
inline constexpr WeightDTypeName kWeightDTypes[] = {
    {"fp32", DType::f32}, {"fp16", DType::f16}, {"bf16", DType::bf16}};

inline DType parse_weight_dtype(std::string_view name) {
  for (const auto& d : kWeightDTypes)
    if (d.name == name) return d.dtype;
  throw InputError("unsupported dtype '" + std::string(name) + "': supported are fp32, fp16, bf16");
}

inline Device parse_device(std::string_view name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  throw InputError("unknown device '" + std::string(name) + "': supported are cpu, cuda");
}

// Loads the GPT-2 in `dir` with weights stored as `dtype` on `device`, and calls f(model). On CUDA
// the model's head size is checked (against kCudaHeadSizes), and the GPU probed, before any weight
// is loaded.
template <class F>
decltype(auto) with_gpt2(Device device, DType dtype, const std::filesystem::path& dir, F&& f) {
  if (device == Device::cuda) {
#if defined(__CUDACC__)
    cuda_detail::check_head_size(Gpt2Config::from_file(dir / "config.json").head_dim());
    // Probe the GPU before the first cudaMalloc: without one, the error then says "no usable CUDA
    // GPU" and why, instead of naming whichever allocation of the weights failed first.
    cuda_detail::context();
    switch (dtype) {
      case DType::f16: {
        auto model = GPT2<cuda, __half>::from_directory(dir);
        return f(model);
      }
      case DType::bf16: {
        auto model = GPT2<cuda, __nv_bfloat16>::from_directory(dir);
        return f(model);
      }
      case DType::f32: {
        auto model = GPT2<cuda, float>::from_directory(dir);
        return f(model);
      }
    }
#else
    throw Error(
        "this program was compiled without CUDA (by a C++ compiler, not nvcc), so --device cuda is "
        "not available; use --device cpu, or build from a .cu file with CUDA enabled");
#endif
  }
  switch (dtype) {
    case DType::f16: {
      auto model = GPT2<cpu, half>::from_directory(dir);
      return f(model);
    }
    case DType::bf16: {
      auto model = GPT2<cpu, bfloat16>::from_directory(dir);
      return f(model);
    }
    case DType::f32:
      break;
  }
  auto model = GPT2<cpu, float>::from_directory(dir);
  return f(model);
}

}  // namespace ctformer
