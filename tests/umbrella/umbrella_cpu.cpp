// A .cpp that includes the umbrella header: compiled by the C++ compiler, it sees the CPU backend
// only, and asking for CUDA at run time is refused with a clear message.
#define BOOST_TEST_MODULE umbrella
#include <boost/test/unit_test.hpp>

#include <string>

#include "ctformer/ctformer.hpp"

#if defined(__CUDACC__)
#error "umbrella_cpu.cpp must be compiled by the C++ compiler, not nvcc"
#endif

#if defined(CTFORMER_TEST_WITH_CUDA_TU)
// Defined in umbrella_cuda.cu.
std::string cuda_translation_unit_backends();
#endif

static_assert(ctformer::ComputesGpt2<ctformer::cpu, float>);

BOOST_AUTO_TEST_CASE(a_cpp_file_gets_the_cpu_backend_and_refuses_cuda_clearly) {
  try {
    ctformer::with_gpt2(ctformer::Device::cuda, ctformer::DType::f32, "unused", [](auto&) {});
    BOOST_FAIL("a C++-compiled program accepted --device cuda");
  } catch (const ctformer::Error& e) {
    BOOST_TEST(std::string(e.what()).find("compiled without CUDA") != std::string::npos, e.what());
  }
}

#if defined(CTFORMER_TEST_WITH_CUDA_TU)
BOOST_AUTO_TEST_CASE(a_cu_file_in_the_same_program_gets_both_backends) {
  BOOST_TEST(cuda_translation_unit_backends() == "cpu cuda");
}
#endif
