// Shared by the CUDA test programs: the skip-without-GPU fixture, host <-> device copies in any
// precision and NaN poisoning (random inputs and the error measure: cuda/precision.hpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "ctformer/ctformer.hpp"
#include "cuda/precision.hpp"
#include "support/test_support.hpp"

namespace ctformer::test {

// A global fixture: the program is reported as skipped, with the reason, when no GPU can run it.
struct RequireGpu {
  RequireGpu() {
    try {
      const auto device = cuda_detail::context().device();
      std::cout << "GPU: " << cuda_device::describe(device) << std::endl;
    } catch (const CudaError& e) {
      const std::string reason = e.what();  // "no usable CUDA GPU: ..."
      if (gpu_required()) {
        std::cout << "FAILED (CTFORMER_REQUIRE_GPU=1): " << reason << std::endl;
        std::exit(1);
      }
      skip_program(reason + " (the CUDA tests cannot run)");
    }
  }
};

template <class T>
cuda::buffer<T> to_device(const std::vector<float>& host) {
  const std::vector<T> converted = narrowed<T>(host);
  return cuda::upload(std::span<const T>(converted));
}

template <class E>
cuda::buffer<E> to_device_exact(const std::vector<E>& host) {
  return cuda::upload(std::span<const E>(host));
}

template <class T>
std::vector<float> to_host(const T* device, std::size_t n) {
  return widened(cuda::download(MatrixView<const T>{device, std::int64_t(n), 1}));
}

// n elements of NaN (all bits set is a NaN in fp32, fp16 and bf16): an element a kernel fails to
// write makes the comparison fail.
template <class T>
cuda::buffer<T> poisoned(std::size_t n) {
  cuda::buffer<T> b(n);
  CTFORMER_CUDA_CHECK(cudaMemsetAsync(b.data(), 0xff, n * sizeof(T), cuda_detail::stream()));
  return b;
}

// Quick mode (CTFORMER_TEST_QUICK=1, used under compute-sanitizer): fewer and smaller shapes.
inline bool quick() {
  const char* q = std::getenv("CTFORMER_TEST_QUICK");
  return q && *q && std::string(q) != "0";
}

}  // namespace ctformer::test
