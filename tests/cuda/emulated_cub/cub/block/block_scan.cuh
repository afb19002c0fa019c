// cub::BlockScan for the CPU emulation of the CUDA backend (tests/cuda/emulated_runtime.hpp):
// the same interface and contract (the storage may be reused after a __syncthreads), each thread
// summing the inputs of the threads before it.
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
    __syncthreads();  // every thread has read the inputs before any may write the storage again
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
