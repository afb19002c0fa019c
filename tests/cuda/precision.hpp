// What the CUDA tests compare with: random inputs rounded to the precision the GPU holds them in,
// the error measure, and its per-precision tolerances. Host code only, so that the emulated kernel
// tests (compiled as C++, emulation.hpp) use the same measure as the GPU ones.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

namespace ctformer::test {

// Values as the GPU will hold them: rounded to T, returned as float for the CPU reference.
template <class T>
std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = static_cast<float>(static_cast<T>(x));
  return v;
}

// v converted to T, as the GPU holds it, and back to float for comparing.
template <class T>
std::vector<T> narrowed(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<T>(v[i]);
  return out;
}

template <class T>
std::vector<float> widened(const std::vector<T>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i]);
  return out;
}

template <class T>
std::vector<float> random_values(std::size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return rounded<T>(std::move(v));
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

}  // namespace ctformer::test
