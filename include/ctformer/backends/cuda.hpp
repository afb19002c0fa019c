// The CUDA backend: device memory, activations and KV cache in the weights' type T (float, __half
// or __nv_bfloat16; every kernel accumulates in fp32), one stream, cuBLASLt for the GEMMs. Its ops
// are the specialisations in ctformer/ops/<op>.cuh.
//
// Needs nvcc: include it (or ctformer/ctformer.hpp) from a .cu file. Link CUDA::cudart and
// CUDA::cublasLt (the CMake target ctformer::cuda does both). (Or the CPU emulator of the tests,
// tests/cuda/emulated_backend.hpp, which defines CTFORMER_CUDA_EMULATION.)
#pragma once

#if !defined(__CUDACC__) && !defined(CTFORMER_CUDA_EMULATION)
#error \
    "ctformer/backends/cuda.hpp needs nvcc: include it from a .cu file (a .cpp file that includes ctformer/ctformer.hpp gets the CPU backend only)"
#endif

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ctformer/backends/cuda/buffer.hpp"
#include "ctformer/backends/cuda/context.cuh"
#include "ctformer/backends/cuda/decode_graphs.cuh"
#include "ctformer/backends/cuda/device.cuh"
#include "ctformer/backends/cuda/error.hpp"
#include "ctformer/backends/cuda/launch.cuh"
#include "ctformer/backends/cuda/numeric.cuh"
#include "ctformer/core/matrix_view.hpp"

namespace ctformer {

struct cuda {
  static constexpr std::string_view name = "cuda";

  // Owning device memory of n elements.
  template <class T>
  using buffer = cuda_detail::DeviceBuffer<T>;

  // Activations and the KV cache keep the weights' type; kernels accumulate in fp32.
  template <class T>
  using activation = T;

  // Decode steps padded to a few batch sizes and replayed from CUDA graphs.
  using DecodeGraphs = cuda_detail::DecodeGraphs;

  // A new device buffer holding `host` (synchronous).
  template <class T>
  static buffer<T> upload(std::span<const T> host) {
    buffer<T> b(host.size());
    if (!host.empty())
      CTFORMER_CUDA_CHECK(cudaMemcpyAsync(b.data(), host.data(), host.size_bytes(),
                                          cudaMemcpyHostToDevice, cuda_detail::stream()));
    CTFORMER_CUDA_CHECK(cudaStreamSynchronize(cuda_detail::stream()));
    return b;
  }

  // Copies `host` to device memory at `device`, ordered on the backend's stream. `host` may be
  // reused as soon as this returns.
  template <class T>
  static void write(std::span<const T> host, T* device) {
    if (host.empty()) return;
    CTFORMER_CUDA_CHECK(cudaMemcpyAsync(device, host.data(), host.size_bytes(),
                                        cudaMemcpyHostToDevice, cuda_detail::stream()));
    // A pageable source is staged before cudaMemcpyAsync returns, so `host` may change after it.
  }

  // The rows of a device matrix, copied to the host once the work queued before it is done.
  template <class T>
  static std::vector<std::remove_const_t<T>> download(MatrixView<T> m) {
    std::vector<std::remove_const_t<T>> host(static_cast<std::size_t>(m.size()));
    if (!host.empty())
      CTFORMER_CUDA_CHECK(cudaMemcpyAsync(host.data(), m.data, host.size() * sizeof(T),
                                          cudaMemcpyDeviceToHost, cuda_detail::stream()));
    CTFORMER_CUDA_CHECK(cudaStreamSynchronize(cuda_detail::stream()));
    return host;
  }
};

}  // namespace ctformer
