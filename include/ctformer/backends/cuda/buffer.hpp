// Owning device memory. Allocation failures say how many bytes were asked for and how many are
// free.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "ctformer/backends/cuda/error.hpp"

namespace ctformer::cuda_detail {

inline std::string mebibytes(std::size_t bytes) {
  return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB";
}

// cudaMalloc, with an out-of-memory message that gives the bytes asked for and the bytes free.
inline void* device_allocate(std::size_t bytes, const char* file, int line) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it so that the caller may recover
    std::size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    throw CudaError("out of GPU memory: cudaMalloc of " + std::to_string(bytes) + " bytes (" +
                        mebibytes(bytes) + ") failed at " + file + ":" + std::to_string(line) +
                        " with " + std::to_string(free) + " bytes (" + mebibytes(free) +
                        ") free of " + mebibytes(total) +
                        "; make the KV cache or the batch smaller, or use fp16/bf16 weights",
                    int(e));
  }
  check(e, "cudaMalloc", file, line);
  return p;
}

// n elements of T in device memory, uninitialised. Move-only.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n)
      : data_(static_cast<T*>(device_allocate(n * sizeof(T), __FILE__, __LINE__))), size_(n) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { release(); }

  T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  void release() noexcept {
    if (data_) cudaFree(data_);  // errors here (e.g. at process exit) cannot be acted on
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace ctformer::cuda_detail
