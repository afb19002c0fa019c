// The per-process state of the CUDA backend, created once on first use: the device (probed, with a
// clear error if it cannot run ctformer), one stream that every op runs on, the cuBLASLt handle and
// workspace, the GEMM algorithms chosen so far, and a scratch area for ops' temporaries.
// Not thread-safe: drive a model from one thread at a time.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>

#include "ctformer/backends/cuda/buffer.hpp"
#include "ctformer/backends/cuda/device.cuh"
#include "ctformer/backends/cuda/error.hpp"

namespace ctformer::cuda_detail {

class Context {
 public:
  // The context for device 0 ($CUDA_VISIBLE_DEVICES picks which GPU that is).
  static Context& get() {
    static Context context(0);
    return context;
  }

  const cuda_device::DeviceInfo& device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  cublasLtHandle_t blas() const { return blas_; }
  void* blas_workspace() const { return blas_workspace_.data(); }
  std::size_t blas_workspace_bytes() const { return blas_workspace_.size(); }

  // Device memory for one op's temporaries, valid until the next call (take all an op needs in one
  // call). It grows when an op needs more than any before it, so that after the first steps of a
  // given shape no call allocates.
  void* scratch(std::size_t bytes) {
    if (bytes > scratch_.size()) {
      CTFORMER_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old area may still be in use
      ++scratch_generation_;  // before the free: the area is gone even if the allocation fails
      scratch_ = {};
      scratch_ = DeviceBuffer<std::byte>(bytes + bytes / 2);
    }
    return scratch_.data();
  }
  // n counters in device memory that are zero between launches: a kernel that counts with them
  // (decode attention's arrivals of splits) leaves them zero. Grows like scratch(), and moves only
  // then.
  unsigned* arrival_counters(std::size_t n) {
    if (n > arrival_counters_.size()) {
      CTFORMER_CUDA_CHECK(cudaStreamSynchronize(stream_));
      ++scratch_generation_;
      arrival_counters_ = {};
      arrival_counters_ = DeviceBuffer<unsigned>(n + n / 2);
      CTFORMER_CUDA_CHECK(cudaMemsetAsync(arrival_counters_.data(), 0,
                                          arrival_counters_.size() * sizeof(unsigned), stream_));
    }
    return arrival_counters_.data();
  }

  // Changes whenever scratch() or arrival_counters() moves: a CUDA graph that recorded the old
  // address is stale.
  std::uint64_t scratch_generation() const { return scratch_generation_; }

  // The cuBLASLt algorithm chosen for each GEMM (see ops/linear.cuh), by what the choice depends
  // on: the problem, and the operands' alignment.
  struct GemmChoice {
    bool found = false;
    cublasLtMatmulAlgo_t algo{};
  };
  struct GemmKey {
    int type = 0, epilogue = 0;
    bool transpose_a = false, beta = false;
    std::int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldd = 0;
    std::uint32_t align_a = 0, align_b = 0, align_d = 0, align_bias = 0;
    auto operator<=>(const GemmKey&) const = default;
  };
  std::map<GemmKey, GemmChoice>& gemm_choices() { return gemm_choices_; }

  // Whether projections of few rows run as ctformer's gemv_kernel (ops/linear.cuh) rather than
  // cuBLASLt: on unless CTFORMER_CUDA_GEMV=0, so that a benchmark can compare the two. CUDA graphs
  // recorded before a switch keep the kernels they recorded.
  bool use_gemv() const { return use_gemv_; }
  void set_use_gemv(bool on) { use_gemv_ = on; }
  // Whether the GEMV applies the norm before a projection itself (ops::NormedRows), rather than
  // after a norm kernel: on unless CTFORMER_CUDA_FUSE_NORMS=0, for the benchmark to compare.
  bool fuse_norms() const { return fuse_norms_; }
  void set_fuse_norms(bool on) { fuse_norms_ = on; }

  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context() {
    // Called at exit, possibly after the driver began shutting down: errors are ignored.
    if (blas_) cublasLtDestroy(blas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

 private:
  explicit Context(int index) : device_(cuda_device::probe(index)) {
    CTFORMER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CTFORMER_CUDA_CHECK(cublasLtCreate(&blas_));
    blas_workspace_ = DeviceBuffer<std::byte>(kBlasWorkspaceBytes);
    auto off = [](const char* name) {
      const char* value = std::getenv(name);
      return value && std::strcmp(value, "0") == 0;
    };
    use_gemv_ = !off("CTFORMER_CUDA_GEMV");
    fuse_norms_ = !off("CTFORMER_CUDA_FUSE_NORMS");
  }

  // cuBLAS recommends 32 MiB on Hopper, less elsewhere; one allocation for the process.
  static constexpr std::size_t kBlasWorkspaceBytes = std::size_t(32) << 20;

  cuda_device::DeviceInfo device_;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t blas_ = nullptr;
  DeviceBuffer<std::byte> blas_workspace_;
  DeviceBuffer<std::byte> scratch_;
  DeviceBuffer<unsigned> arrival_counters_;
  std::uint64_t scratch_generation_ = 0;
  std::map<GemmKey, GemmChoice> gemm_choices_;
  bool use_gemv_ = true;
  bool fuse_norms_ = true;
};

inline Context& context() {
  return Context::get();
}
inline cudaStream_t stream() {
  return Context::get().stream();
}

}  // namespace ctformer::cuda_detail
