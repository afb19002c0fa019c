// Every kernel launch of the CUDA backend goes through launch(): on the backend's stream, with
// kernel arguments converted to the kernel's parameter types. Check it with
// CTFORMER_CUDA_CHECK_LAUNCH right after, as with <<<>>>.
//
// One place for launches, so that tests/cuda can run the whole backend on the CPU: compiled as C++
// with CTFORMER_CUDA_EMULATION defined (tests/cuda/emulated_backend.hpp), it is only declared
// here, and the emulator defines it.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "ctformer/backends/cuda/context.cuh"

namespace ctformer::cuda_detail {

#if defined(CTFORMER_CUDA_EMULATION)
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args&&... args);
#else
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args&&... args) {
  // (clang-format would split the >>>)
  // clang-format off
  kernel<<<grid, block, 0, stream()>>>(std::forward<Args>(args)...);
  // clang-format on
}
#endif

}  // namespace ctformer::cuda_detail
