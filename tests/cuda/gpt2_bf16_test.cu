// GPT2<cuda, __nv_bfloat16> against the fixtures (see gpt2_checks.cuh).
#define BOOST_TEST_MODULE cuda_gpt2_bf16
#include "cuda/gpt2_checks.cuh"

CTFORMER_GPT2_TESTS(__nv_bfloat16)
