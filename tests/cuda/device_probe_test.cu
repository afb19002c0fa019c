// The messages for the errors that cost users the most time. Runs with or without a GPU: without
// one (the development machines) the real probe must fail with a message that names the CUDA error
// and says what to do; with one it must succeed.
#define BOOST_TEST_MODULE cuda_device_probe
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>

#include "ctformer/ctformer.hpp"

using namespace ctformer;

namespace {
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

BOOST_AUTO_TEST_CASE(the_probe_succeeds_or_names_the_error_and_the_fix) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  cudaGetLastError();
  try {
    const auto device = cuda_device::probe();
    BOOST_TEST_MESSAGE("GPU: " << cuda_device::describe(device));
    BOOST_TEST(int(e) == int(cudaSuccess));
    BOOST_TEST(contains(cuda_device::describe(device), "sm_"));
  } catch (const CudaError& error) {
    const std::string m = error.what();
    BOOST_TEST_MESSAGE("probe: " << m);
    if (const char* v = std::getenv("CTFORMER_REQUIRE_GPU"); v && std::string(v) == "1")
      BOOST_ERROR("CTFORMER_REQUIRE_GPU=1 but the probe failed: " << m);
    BOOST_TEST((contains(m, "no usable CUDA GPU") || contains(m, "cannot run this program")), m);
    if (e != cudaSuccess) {
      BOOST_TEST(contains(m, "cudaGetDeviceCount"), m);
      BOOST_TEST(contains(m, cudaGetErrorName(e)), m);  // e.g. cudaErrorInsufficientDriver
      BOOST_TEST(error.code() == int(e));
    }
    BOOST_TEST((contains(m, "install the NVIDIA driver") || contains(m, "update the driver") ||
                contains(m, "nvidia-smi") || contains(m, "CMAKE_CUDA_ARCHITECTURES")),
               m);
  }
}

BOOST_AUTO_TEST_CASE(each_setup_error_says_what_to_do) {
  using cuda_detail::describe;
  BOOST_TEST(contains(describe(cudaErrorNoDevice), "cudaErrorNoDevice"));
  BOOST_TEST(contains(describe(cudaErrorNoDevice), "CUDA_VISIBLE_DEVICES"));
  const std::string old_driver = describe(cudaErrorInsufficientDriver);
  BOOST_TEST((contains(old_driver, "install the NVIDIA driver") ||
              contains(old_driver, "update the driver")),
             old_driver);
  BOOST_TEST(contains(describe(cudaErrorNoKernelImageForDevice), "CMAKE_CUDA_ARCHITECTURES"));
  BOOST_TEST(contains(describe(cudaErrorMemoryAllocation), "out of memory"));
}

BOOST_AUTO_TEST_CASE(a_failed_call_names_the_call_the_file_and_the_line) {
  try {
    CTFORMER_CUDA_CHECK(cudaErrorInvalidValue);
    BOOST_FAIL("no exception");
  } catch (const CudaError& e) {
    const std::string m = e.what();
    BOOST_TEST(contains(m, "cudaErrorInvalidValue failed at"), m);
    BOOST_TEST(contains(m, "device_probe_test.cu:"), m);
    BOOST_TEST(contains(m, "invalid argument"), m);
    BOOST_TEST(e.code() == int(cudaErrorInvalidValue));
  }
  try {
    CTFORMER_CUDA_CHECK(CUBLAS_STATUS_NOT_SUPPORTED);
    BOOST_FAIL("no exception");
  } catch (const CudaError& e) {
    BOOST_TEST(contains(e.what(), "CUBLAS_STATUS_NOT_SUPPORTED"), e.what());
  }
}

BOOST_AUTO_TEST_CASE(an_unsupported_head_size_lists_the_supported_ones) {
  try {
    cuda_detail::check_head_size(48);
    BOOST_FAIL("head size 48 accepted");
  } catch (const ConfigError& e) {
    BOOST_TEST(contains(e.what(), "head size 48"), e.what());
    BOOST_TEST(contains(e.what(), "16, 32, 64, 80, 96, 128"), e.what());
  }
  for (const int d : kCudaHeadSizes) BOOST_CHECK_NO_THROW(cuda_detail::check_head_size(d));
}
