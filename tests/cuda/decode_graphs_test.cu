// ctformer::cuda::DecodeGraphs on a GPU (see decode_graphs_checks.cuh).
#define BOOST_TEST_MODULE cuda_decode_graphs
#include "cuda/decode_graphs_checks.cuh"

using RequireGpu = ctformer::test::RequireGpu;
BOOST_TEST_GLOBAL_FIXTURE(RequireGpu);
CTFORMER_DECODE_GRAPHS_TEST_CASES
