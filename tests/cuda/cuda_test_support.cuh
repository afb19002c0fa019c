// Shared by the CUDA test programs: the skip-without-GPU fixture, host <-> device copies in any
// precision, NaN poisoning, random inputs, and the error measure with its per-precision tolerances.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "ctformer/ctformer.hpp"
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

// Values as the GPU will hold them: rounded to T, returned as float for the CPU reference.
template <class T>
std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = static_cast<float>(static_cast<T>(x));
  return v;
}

template <class T>
std::vector<float> random_values(std::size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return rounded<T>(std::move(v));
}

template <class T>
cuda::buffer<T> to_device(const std::vector<float>& host) {
  std::vector<T> converted(host.size());
  for (std::size_t i = 0; i < host.size(); ++i) converted[i] = static_cast<T>(host[i]);
  return cuda::upload(std::span<const T>(converted));
}

template <class E>
cuda::buffer<E> to_device_exact(const std::vector<E>& host) {
  return cuda::upload(std::span<const E>(host));
}

template <class T>
std::vector<float> to_host(const T* device, std::size_t n) {
  const auto raw = cuda::download(MatrixView<const T>{device, std::int64_t(n), 1});
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(raw[i]);
  return out;
}

// n elements of NaN (all bits set is a NaN in fp32, fp16 and bf16): an element a kernel fails to
// write makes the comparison fail.
template <class T>
cuda::buffer<T> poisoned(std::size_t n) {
  cuda::buffer<T> b(n);
  CTFORMER_CUDA_CHECK(cudaMemsetAsync(b.data(), 0xff, n * sizeof(T), cuda_detail::stream()));
  return b;
}

// max |got - want| / max |want|; infinite when any element is NaN.
inline double error_relative_to_scale(const std::vector<float>& got,
                                      const std::vector<float>& want) {
  double max_diff = 0, max_ref = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(got[i]) || std::isnan(want[i])) return INFINITY;
    max_diff = std::max(max_diff, double(std::abs(got[i] - want[i])));
    max_ref = std::max(max_ref, double(std::abs(want[i])));
  }
  return max_ref == 0 ? max_diff : max_diff / max_ref;
}

// Per-kernel tolerance (error relative to the output's scale). The inputs are rounded to T before
// the CPU reference sees them, so the kernels differ from it by fp32 accumulation order and by the
// rounding of their output to T: half an ulp relative, 2^-11 (fp16) or 2^-8 (bf16), of the largest
// element, which the bounds below double for the accumulation order and exp2f.
template <class T>
constexpr double kernel_tolerance() {
  if constexpr (std::is_same_v<T, float>)
    return 1e-5;
  else if constexpr (std::is_same_v<T, __half>)
    return 1e-3;
  else
    return 8e-3;
}

// Quick mode (CTFORMER_TEST_QUICK=1, used under compute-sanitizer): fewer and smaller shapes.
inline bool quick() {
  const char* q = std::getenv("CTFORMER_TEST_QUICK");
  return q && *q && std::string(q) != "0";
}

}  // namespace ctformer::test
