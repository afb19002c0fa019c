// Checked CUDA runtime and cuBLAS calls. Every failure becomes a ctformer::CudaError whose message
// names the call, the file and line, the error's name and text, and, for the errors that cost users
// the most time (no GPU, an old driver, a missing architecture, out of memory), what to do.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

#include "ctformer/core/error.hpp"

namespace ctformer {

// A failed CUDA runtime or cuBLAS call, or a GPU that cannot run ctformer's kernels.
class CudaError : public Error {
 public:
  CudaError(const std::string& message, int code) : Error(message), code_(code) {}
  // The cudaError_t or cublasStatus_t of the failed call (0 when the failure was not one call's).
  int code() const { return code_; }

 private:
  int code_;
};

namespace cuda_detail {

inline std::string version_string(int v) {  // 12040 -> "12.4"
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

// What to do about the errors users hit when a machine or a build does not match.
inline std::string advice(cudaError_t e) {
  switch (e) {
    case cudaErrorInsufficientDriver: {
      int driver = 0, runtime = 0;
      cudaDriverGetVersion(&driver);
      cudaRuntimeGetVersion(&runtime);
      if (driver == 0)
        return "no NVIDIA driver is loaded, so this machine has no usable GPU: install the NVIDIA "
               "driver (check with nvidia-smi), or run on the CPU (--device cpu)";
      return "the NVIDIA driver supports CUDA " + version_string(driver) +
             " but this program was built with the CUDA " + version_string(runtime) +
             " runtime: update the driver, or rebuild with a CUDA toolkit no newer than " +
             version_string(driver);
    }
    case cudaErrorNoDevice:
      return "no CUDA GPU is visible: check nvidia-smi and CUDA_VISIBLE_DEVICES, or run on the CPU "
             "(--device cpu)";
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorInvalidDeviceFunction:
      return "this program holds no kernels for this GPU's architecture: rebuild with "
             "-DCMAKE_CUDA_ARCHITECTURES=native (or the GPU's compute capability, e.g. 90 for an "
             "H100)";
    case cudaErrorMemoryAllocation:
      return "the GPU is out of memory: make the KV cache or the batch smaller, or free the GPU";
    default:
      return {};
  }
}

inline std::string describe(cudaError_t e) {
  std::string s = std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
  if (const std::string a = advice(e); !a.empty()) s += "; " + a;
  return s;
}

[[noreturn]] inline void fail(const std::string& what, const char* call, const char* file, int line,
                              int code) {
  throw CudaError(
      std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " + what, code);
}

inline void check(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess) fail(describe(e), call, file, line, int(e));
}

// cublasGetStatusName lives in libcublas, which ctformer does not otherwise need: the names here.
inline std::string status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED (out of memory)";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "CUBLAS_STATUS_LICENSE_ERROR";
    default:
      return "cublasStatus_t " + std::to_string(int(s));
  }
}

inline void check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) fail(status_name(s), call, file, line, int(s));
}

}  // namespace cuda_detail
}  // namespace ctformer

// Checks a cudaError_t or cublasStatus_t; throws ctformer::CudaError naming the call on failure.
#define CTFORMER_CUDA_CHECK(call) ::ctformer::cuda_detail::check((call), #call, __FILE__, __LINE__)

// After a kernel launch: a bad launch configuration, or a missing kernel image, shows up here.
#define CTFORMER_CUDA_CHECK_LAUNCH(kernel_name) \
  ::ctformer::cuda_detail::check(cudaGetLastError(), "launch of " kernel_name, __FILE__, __LINE__)
