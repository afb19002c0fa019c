// The CUDA backend's tests, in every precision, run on the CPU by emulated_backend.hpp: each op
// against the CPU reference (kernel_checks.cuh), the decode graphs' capture and replay
// (decode_graphs_checks.cuh), and the model (gpt2_checks.cuh: logits and greedy tokens against
// Hugging Face transformers, logits against the CPU reference, decode steps replayed from CUDA
// graphs against direct ones, a generator against the CPU's). The whole backend, host code and
// kernels: the same source a GPU runs, and the same checks as the GPU test programs. This needs no
// GPU, so it runs everywhere, under ASan and UBSan too (scripts/sanitize.sh); what it cannot check
// is in emulated_backend.hpp.
#define BOOST_TEST_MODULE cuda_emulated_backend
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "ctformer/ctformer.hpp"
#include "cuda/precision.hpp"
#include "support/decode_script.hpp"
#include "support/mixed_requests.hpp"
#include "support/reference.hpp"
#include "support/test_support.hpp"

// Last: emulated_backend.hpp defines threadIdx and friends as macros, for the kernels.
#include "cuda/emulated_backend.hpp"

#include "cuda/decode_graphs_checks.cuh"
#include "cuda/gpt2_checks.cuh"
#include "cuda/kernel_checks.cuh"

// The kernel checks' quick shapes unless CTFORMER_TEST_QUICK=0 asks for the full ones (minutes
// more: the emulator runs a GEMV over GPT-2's 50,257-token vocabulary one GPU thread at a time).
struct QuickShapes {
  QuickShapes() { setenv("CTFORMER_TEST_QUICK", "1", /*overwrite=*/0); }
};
BOOST_TEST_GLOBAL_FIXTURE(QuickShapes);

CTFORMER_DECODE_GRAPHS_TEST_CASES

// Where cuBLASLt offers no algorithm for its GELU epilogue, Linear<cuda> runs a bias GEMM and then
// its own GELU kernel.
BOOST_AUTO_TEST_CASE(linear_where_cublaslt_has_no_gelu_epilogue) {
  struct RefuseGelu {
    RefuseGelu() { set(true); }
    ~RefuseGelu() { set(false); }
    static void set(bool refuse) {
      ctformer::emulation::set_refuse_gelu_epilogue(refuse);
      ctformer::cuda_detail::context().gemm_choices().clear();  // chosen with or without it
    }
  } refuse;
  // The fallback is a path, not a shape: the quick shapes take it (in GEMMs of 5 rows, and of 1
  // with the GEMV off), and the full ones took a minute and a half more.
  struct QuickHere {
    std::string was = std::getenv("CTFORMER_TEST_QUICK") ? std::getenv("CTFORMER_TEST_QUICK") : "1";
    QuickHere() { setenv("CTFORMER_TEST_QUICK", "1", 1); }
    ~QuickHere() { setenv("CTFORMER_TEST_QUICK", was.c_str(), 1); }
  } quick;
  std::mt19937 rng(9);
  ctformer::test::check_linear<float>(rng);
  ctformer::test::check_linear<__nv_bfloat16>(rng);
}

BOOST_AUTO_TEST_SUITE(fp32)
CTFORMER_KERNEL_TEST_CASES(float)
CTFORMER_GPT2_TEST_CASES(float)
BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(fp16)
CTFORMER_KERNEL_TEST_CASES(__half)
CTFORMER_GPT2_TEST_CASES(__half)
BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bf16)
CTFORMER_KERNEL_TEST_CASES(__nv_bfloat16)
CTFORMER_GPT2_TEST_CASES(__nv_bfloat16)
BOOST_AUTO_TEST_SUITE_END()
