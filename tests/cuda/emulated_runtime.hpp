// What the emulated CUDA runtime (emulated_runtime.cpp) offers the other emulated parts of the CUDA
// backend (emulated_backend.hpp): its kernel launches, cuBLASLt and CUB.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <functional>

namespace ctformer::emulation {

// Queues `work` as the next operation of `stream`: it runs when the host next waits for the stream
// (or for the device), or, while the stream captures, at each replay of the graph.
void enqueue(cudaStream_t stream, std::function<void()> work);

// Whether [p, p + bytes) lies within one live allocation of cudaMalloc.
bool is_device_memory(const void* p, std::size_t bytes);

// Whether the emulated cuBLASLt offers no algorithm for the GELU epilogue, as some GPUs' cuBLASLt
// may not (ops/linear.cuh then runs a bias GEMM and its own GELU kernel).
void set_refuse_gelu_epilogue(bool refuse);

}  // namespace ctformer::emulation
