// The whole CUDA backend on the CPU, for tests where there is no GPU: ctformer/cuda.cuh compiled as
// C++, with
//   - the CUDA runtime calls the backend makes (emulated_runtime.cpp): device memory is host
//     memory, a stream runs its work when the host waits for it (so that a missing
//     synchronisation shows), and a stream being captured records it into a graph that
//     cudaGraphLaunch replays;
//   - cuBLASLt (emulated_cublaslt.cpp), which also checks how it is called;
//   - the CUB parts the backend uses (emulated_cub/), the block-wide ones on emulation.hpp's
//     fibers;
//   - kernel launches (cuda_detail::launch, defined below) run by emulation.hpp.
// Include it after every other header, in place of ctformer/cuda.cuh: emulation.hpp defines
// threadIdx and friends as macros. Link emulated_runtime.cpp and emulated_cublaslt.cpp, not
// CUDA::cudart or CUDA::cublasLt, and put emulated_cub/ first on the include path.
//
// Like emulation.hpp it checks the kernels' logic and the host code around them (shapes, pointers,
// strides, the scratch area, graph capture and replay), not speed, and not what only a GPU shows
// (data races, the memory model, cuBLASLt's and CUB's own code).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda/emulated_runtime.hpp"

#define CTFORMER_CUDA_EMULATION 1
#include "cuda/emulation.hpp"

#include "ctformer/cuda.cuh"

namespace ctformer::cuda_detail {

// The arguments are converted to the kernel's parameter types and kept, as a launch (or a graph
// that records it) keeps them; each thread of the grid calls the kernel with them. A pointer
// argument must be null or point into device memory, as a kernel cannot read the host's.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args&&... args) {
  std::tuple<Params...> arguments(std::forward<Args>(args)...);
  std::apply(
      [&](const auto&... argument) {
        int index = 0;
        auto check = [&](const auto& a) {
          if constexpr (std::is_pointer_v<std::decay_t<decltype(a)>>)
            if (a && !emulation::is_device_memory(a, 1))
              throw std::logic_error("emulation: kernel argument " + std::to_string(index) +
                                     " points outside device memory");
          ++index;
        };
        (check(argument), ...);
      },
      arguments);
  emulation::enqueue(stream(), [kernel, grid, block, arguments = std::move(arguments)] {
    emulation::launch({grid.x, grid.y, grid.z}, {block.x, block.y, block.z},
                      [&] { std::apply(kernel, arguments); });
  });
}

}  // namespace ctformer::cuda_detail
