// The CPU backend: host memory, Eigen for the matrix work, float activations whatever the weights'
// storage type. It is the reference every other backend is tested against.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

namespace ctformer {

struct cpu {
  static constexpr std::string_view name = "cpu";

  // Owning storage of n elements.
  template <class T>
  using buffer = std::vector<T>;

  // Activations and the KV cache are float on the CPU, and every sum is accumulated in float: fp16
  // weights are widened as they are used, and bf16 projections multiply bf16 weights by their input
  // rounded to bf16 (ops/packed_matmul.hpp), so that this backend is the fp32-accumulating
  // reference for the GPU's precisions.
  template <class T>
  using activation = float;

  template <class T>
  static buffer<T> upload(std::span<const T> host) {
    return buffer<T>(host.begin(), host.end());
  }

  // Copies `host` into backend memory at `dst` (here: host memory too).
  template <class T>
  static void write(std::span<const T> host, T* dst) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (!host.empty()) std::memcpy(dst, host.data(), host.size_bytes());  // creates the objects
  }

  // The CPU has no launch cost to save: a decode step runs as its ops are called. (The CUDA backend
  // replays decode steps from graphs: backends/cuda/decode_graphs.cuh.)
  struct DecodeGraphs {
    // Decode batches padded to a multiple of this, as the CUDA backend pads them: 1 (no padding)
    // unless a test sets it, to check the padding on the CPU reference.
    std::int64_t pad_to_multiple = 1;
    std::int64_t padded_batch(std::int64_t sequences) const {
      const std::int64_t m = std::max<std::int64_t>(pad_to_multiple, 1);
      return (sequences + m - 1) / m * m;
    }
    template <class F>
    void run(std::int64_t /*batch*/, std::span<const void* const> /*addresses*/, F&& launch) {
      launch();
    }
  };
};

// The weight storage types the CPU backend supports.
using half = Eigen::half;
using bfloat16 = Eigen::bfloat16;

}  // namespace ctformer
