// The one place where a model's runtime choices (device, weight dtype) become template arguments.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "ctformer/backends/cpu.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/models/gpt2.hpp"

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

// Loads the GPT-2 in `dir` with weights stored as `dtype` on `device`, and calls f(model).
template <class F>
decltype(auto) with_gpt2(Device device, DType dtype, const std::filesystem::path& dir, F&& f) {
  if (device == Device::cuda)
    throw Error(
        "the CUDA backend is not part of this build yet (see the project's CUDA backend issue); "
        "use --device cpu");
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
