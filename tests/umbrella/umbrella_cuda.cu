// A .cu that includes the umbrella header: compiled by nvcc, it sees both backends. Nothing here
// touches a GPU.
#include <string>

#include "ctformer/ctformer.hpp"

#if !defined(__CUDACC__)
#error "umbrella_cuda.cu must be compiled by nvcc"
#endif

static_assert(ctformer::ComputesGpt2<ctformer::cpu, float>);
static_assert(ctformer::ComputesGpt2<ctformer::cuda, float>);
static_assert(ctformer::ComputesGpt2<ctformer::cuda, __half>);
static_assert(ctformer::ComputesGpt2<ctformer::cuda, __nv_bfloat16>);

std::string cuda_translation_unit_backends() {
  return std::string(ctformer::cpu::name) + " " + std::string(ctformer::cuda::name);
}
