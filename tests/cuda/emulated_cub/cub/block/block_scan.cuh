// cub::BlockScan for the CPU emulation of the CUDA backend (tests/cuda/emulated_backend.hpp):
// the same interface and contract (the storage may be reused only after a __syncthreads, which
// the caller writes), each thread summing the inputs of the threads before it.
#pragma once

namespace cub {

template <class T, int kBlockThreads>
class BlockScan {
 public:
  struct TempStorage {
    T values[kBlockThreads];
  };
  explicit BlockScan(TempStorage& storage) : storage_(storage) {}

  void InclusiveSum(T input, T& inclusive, T& aggregate) {
    storage_.values[threadIdx.x] = input;
    __syncthreads();
    inclusive = aggregate = T{};
    for (int i = 0; i < kBlockThreads; ++i) {
      aggregate += storage_.values[i];
      if (i == int(threadIdx.x)) inclusive = aggregate;
    }
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
