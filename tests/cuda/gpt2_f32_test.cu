// GPT2<cuda, float> against the fixtures (see gpt2_checks.cuh).
#define BOOST_TEST_MODULE cuda_gpt2_f32
#include "cuda/gpt2_checks.cuh"

CTFORMER_GPT2_TESTS(float)
