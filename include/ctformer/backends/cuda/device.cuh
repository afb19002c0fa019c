// Finds the GPU and checks that this program can run on it, with a message that says what to do
// when it cannot: no GPU or driver, a driver older than the runtime, an architecture the binary was
// not built for.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "ctformer/backends/cuda/error.hpp"

namespace ctformer::cuda_detail {

// An empty kernel: whether its image loads tells if the binary holds code for the GPU. (A template,
// so that every translation unit may define it.)
template <int = 0>
__global__ void probe_kernel() {}

// The architectures this translation unit was compiled for, as nvcc lists them (e.g. "750,800").
inline std::string compiled_architectures() {
#if defined(__CUDA_ARCH_LIST__)
// Variadic: with several architectures the list holds commas.
#define CTFORMER_STRINGIFY_(...) #__VA_ARGS__
#define CTFORMER_STRINGIFY(...) CTFORMER_STRINGIFY_(__VA_ARGS__)
  return CTFORMER_STRINGIFY(__CUDA_ARCH_LIST__);
#undef CTFORMER_STRINGIFY
#undef CTFORMER_STRINGIFY_
#else
  return "unknown";
#endif
}

}  // namespace ctformer::cuda_detail

namespace ctformer::cuda_device {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_capability = 0;  // 90 for sm_90
  int multiprocessors = 0;
  std::size_t total_memory = 0;
  int driver_version = 0, runtime_version = 0;
};

// Checks that device `index` exists and can run this program's kernels; throws CudaError with the
// reason and the fix otherwise.
inline DeviceInfo probe(int index = 0) {
  DeviceInfo info;
  info.index = index;
  cudaDriverGetVersion(&info.driver_version);
  cudaRuntimeGetVersion(&info.runtime_version);
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear it: the caller may go on with the CPU
    throw CudaError("no usable CUDA GPU: cudaGetDeviceCount failed: " + cuda_detail::describe(e),
                    int(e));
  }
  if (count == 0)
    throw CudaError("no usable CUDA GPU: " + cuda_detail::describe(cudaErrorNoDevice),
                    int(cudaErrorNoDevice));
  if (index < 0 || index >= count)
    throw CudaError("CUDA device " + std::to_string(index) +
                        " does not exist: " + std::to_string(count) +
                        " device(s) are visible (0 to " + std::to_string(count - 1) + ")",
                    int(cudaErrorInvalidDevice));
  cudaDeviceProp prop{};
  CTFORMER_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  info.name = prop.name;
  info.compute_capability = prop.major * 10 + prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.total_memory = prop.totalGlobalMem;
  CTFORMER_CUDA_CHECK(cudaSetDevice(index));

  cudaFuncAttributes attributes{};
  // The C function (what the template overload calls): that overload is nvcc's only, and the CPU
  // emulator of tests/cuda compiles this with g++.
  const cudaError_t image = cudaFuncGetAttributes(
      &attributes, reinterpret_cast<const void*>(&cuda_detail::probe_kernel<0>));
  if (image != cudaSuccess) {
    cudaGetLastError();
    throw CudaError("GPU " + std::to_string(index) + " (" + info.name + ", sm_" +
                        std::to_string(info.compute_capability) +
                        ") cannot run this program: it was compiled for the architectures " +
                        cuda_detail::compiled_architectures() +
                        " only: " + cuda_detail::describe(image),
                    int(image));
  }
  return info;
}

// One line for logs: "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB), driver 12.4, runtime 13.0".
inline std::string describe(const DeviceInfo& d) {
  return d.name + " (sm_" + std::to_string(d.compute_capability) + ", " +
         std::to_string(d.multiprocessors) + " SMs, " +
         std::to_string(double(d.total_memory) / double(1 << 30)).substr(0, 5) + " GiB), driver " +
         cuda_detail::version_string(d.driver_version) + ", runtime " +
         cuda_detail::version_string(d.runtime_version);
}

}  // namespace ctformer::cuda_device
