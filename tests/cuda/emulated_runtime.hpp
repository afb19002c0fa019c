// The whole CUDA backend on the CPU, for tests where there is no GPU: ctformer/cuda.cuh compiled as
// C++, with
//   - the CUDA runtime calls the backend makes (emulated_runtime.cpp): device memory is host
//     memory, every stream runs its work at once, and a stream being captured records it into a
//     graph that cudaGraphLaunch replays;
//   - cuBLASLt (emulated_cublaslt.cpp), which also checks how it is called;
//   - the CUB parts the backend uses (emulated_cub/), the block-wide ones on emulation.hpp's
//   fibers;
//   - kernel launches (cuda_detail::launch, defined below) run by emulation.hpp.
// Include it after every other header, in place of ctformer/cuda.cuh: emulation.hpp defines
// threadIdx and friends as macros. Link emulated_runtime.cpp and emulated_cublaslt.cpp, not
// CUDA::cudart or CUDA::cublasLt, and put emulated_cub/ first on the include path.
//
// Like emulation.hpp it checks the kernels' logic and the host code around them (shapes, pointers,
// strides, the scratch area, graph capture and replay), not speed, and not what only a GPU shows
// (data races, the memory model, cuBLASLt's and CUB's own code).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <tuple>
#include <utility>

namespace ctformer::emulation {

// Runs `work` as the next operation of `stream`: now, or at each replay of the graph the stream is
// capturing.
void enqueue(cudaStream_t stream, std::function<void()> work);

// Whether [p, p + bytes) lies within one live allocation of cudaMalloc.
bool is_device_memory(const void* p, std::size_t bytes);

}  // namespace ctformer::emulation

#define CTFORMER_CUDA_EMULATION 1
#include "cuda/emulation.hpp"

#include "ctformer/cuda.cuh"

namespace ctformer::cuda_detail {

// The arguments are converted to the kernel's parameter types and kept, as a launch (or a graph
// that records it) keeps them; each thread of the grid calls the kernel with them.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args&&... args) {
  emulation::enqueue(stream(), [kernel, grid, block,
                                arguments = std::tuple<Params...>(std::forward<Args>(args)...)] {
    emulation::launch({grid.x, grid.y, grid.z}, {block.x, block.y, block.z},
                      [&] { std::apply(kernel, arguments); });
  });
}

}  // namespace ctformer::cuda_detail
