// GPT2<cuda, __half> against the fixtures (see gpt2_checks.cuh).
#define BOOST_TEST_MODULE cuda_gpt2_f16
#include "cuda/gpt2_checks.cuh"

CTFORMER_GPT2_TESTS(__half)
