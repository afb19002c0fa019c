// The CUDA kernels in bf16 against the CPU reference (see kernel_checks.cuh).
#define BOOST_TEST_MODULE cuda_kernels_bf16
#include "cuda/kernel_checks.cuh"

CTFORMER_KERNEL_TESTS(__nv_bfloat16)
