// cub::BlockReduce for the CPU emulation of the CUDA backend (tests/cuda/emulated_backend.hpp):
// the same interface and contract (the result is valid in thread 0 only; the storage may be
// reused after a __syncthreads), computed by thread 0 in thread order.
#pragma once

#include <cstring>

namespace cub {

template <class T, int kBlockThreads>
class BlockReduce {
 public:
  struct TempStorage {
    T values[kBlockThreads];
  };
  explicit BlockReduce(TempStorage& storage) : storage_(storage) {}

  template <class Op>
  T Reduce(T value, Op op) {
    storage_.values[threadIdx.x] = value;
    __syncthreads();
    if (threadIdx.x != 0) {  // undefined in CUB: garbage, so that a caller who uses it fails
      T garbage;
      std::memset(static_cast<void*>(&garbage), 0xa5, sizeof(T));
      return garbage;
    }
    T result = storage_.values[0];
    for (int i = 1; i < kBlockThreads; ++i) result = op(result, storage_.values[i]);
    return result;
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
