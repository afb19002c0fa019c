// The CUDA kernels in f32 against the CPU reference (see kernel_checks.cuh).
#define BOOST_TEST_MODULE cuda_kernels_f32
#include "cuda/kernel_checks.cuh"

CTFORMER_KERNEL_TESTS(float)
