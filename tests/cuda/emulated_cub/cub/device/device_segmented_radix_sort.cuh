// cub::DeviceSegmentedRadixSort::SortPairsDescending for the CPU emulation of the CUDA backend
// (tests/cuda/emulated_backend.hpp), float keys over all their bits: the same contract (a first
// call with no storage asks how much temporary storage it needs; the sort is stable and orders keys
// by their radix order: -0 equal to +0, NaN by its bits), run as work of the stream. It checks
// that the storage it asked for was given, and that every array is device memory, and overwrites
// the temporary storage, as CUB would.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <vector>

#include "cuda/emulated_runtime.hpp"

namespace cub {

struct DeviceSegmentedRadixSort {
  template <class Value, class Offset>
  static cudaError_t SortPairsDescending(void* temp, std::size_t& temp_bytes, const float* keys_in,
                                         float* keys_out, const Value* values_in, Value* values_out,
                                         std::int64_t items, std::int64_t segments,
                                         const Offset* begin, const Offset* end, int begin_bit,
                                         int end_bit, cudaStream_t stream) {
    using ctformer::emulation::is_device_memory;
    const std::size_t needed = std::size_t(items) * (sizeof(float) + sizeof(Value)) + 256;
    if (!temp) {
      temp_bytes = needed;
      return cudaSuccess;
    }
    const std::size_t keys = std::size_t(items) * sizeof(float),
                      values = std::size_t(items) * sizeof(Value),
                      offsets = std::size_t(segments) * sizeof(Offset);
    if (temp_bytes < needed || begin_bit != 0 || end_bit != 32 ||
        !is_device_memory(temp, temp_bytes) || !is_device_memory(keys_in, keys) ||
        !is_device_memory(keys_out, keys) || !is_device_memory(values_in, values) ||
        !is_device_memory(values_out, values) || !is_device_memory(begin, offsets) ||
        !is_device_memory(end, offsets)) {
      std::fprintf(stderr,
                   "emulated cub::DeviceSegmentedRadixSort::SortPairsDescending: temporary "
                   "storage smaller than asked for, an array outside device memory, or not all "
                   "32 bits\n");
      return cudaErrorInvalidValue;
    }
    ctformer::emulation::enqueue(stream, [=] {
      std::memset(temp, 0xa5, temp_bytes);  // CUB works in it: what else is there is lost
      auto radix = [](float key) {
        const auto bits = std::bit_cast<std::uint32_t>(key == 0.0f ? 0.0f : key);  // -0 is +0
        return bits & 0x80000000u ? ~bits : bits ^ 0x80000000u;
      };
      for (std::int64_t s = 0; s < segments; ++s) {
        std::vector<std::int64_t> order(std::size_t(end[s] - begin[s]));
        std::iota(order.begin(), order.end(), std::int64_t(begin[s]));
        std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
          return radix(keys_in[a]) > radix(keys_in[b]);
        });
        for (std::size_t i = 0; i < order.size(); ++i) {
          keys_out[begin[s] + std::int64_t(i)] = keys_in[order[i]];
          values_out[begin[s] + std::int64_t(i)] = values_in[order[i]];
        }
      }
    });
    return cudaSuccess;
  }
};

}  // namespace cub
