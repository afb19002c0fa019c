// Counter-based random numbers: the n-th draw of a seed is a pure function of (seed, n), so a
// request samples the same tokens whatever else shares its batch, after preemption, and on any
// backend (the functions are usable in CUDA device code).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define CTFORMER_HOST_DEVICE __host__ __device__
#else
#define CTFORMER_HOST_DEVICE
#endif

namespace ctformer {

// SplitMix64's finaliser: a bijective mix with full avalanche.
CTFORMER_HOST_DEVICE constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A uniform float in [0, 1) with 24 random bits: draw `counter` of stream `seed`.
CTFORMER_HOST_DEVICE constexpr float uniform_float(std::uint64_t seed, std::uint64_t counter) {
  const std::uint64_t bits = mix64(mix64(seed + 0x9e3779b97f4a7c15ull) ^ counter);
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
}

}  // namespace ctformer
