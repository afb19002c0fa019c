// The CUDA runtime calls of the CUDA backend, on the CPU (see emulated_backend.hpp). Strict where a
// GPU would be: a copy or memset outside a live allocation, a copy whose direction does not match
// where its pointers are, freeing what was not allocated, and what a stream capture forbids
// (synchronising, allocating or freeing while a stream captures, copying from host memory into a
// graph)
// each fail with the error the runtime would give and a line on stderr that says what was wrong.
// New and freed allocations hold all-ones bytes (NaN in every float type), so reading memory
// nothing wrote, or memory freed, shows in the results.
//
// Asynchronous as a GPU is: work queued on a stream (kernels, copies, memsets, GEMMs, graph
// launches) runs only when the host waits for it, at cudaStreamSynchronize, cudaStreamDestroy or
// cudaFree (which waits for the whole device, as the real one does). So host code that reads what
// a copy to the host brings before it has synchronised reads all-ones bytes: the destination is
// filled with them when the copy is queued. A copy from the host takes its bytes when it is
// queued, as the runtime stages pageable memory. Built with AddressSanitizer, device memory is
// poisoned except while queued work runs, so that host code that touches it directly (which a
// GPU's memory would not allow) is reported where it does.
#include "cuda/emulated_runtime.hpp"

#include <cuda_runtime.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ctformer::emulation {
namespace {

struct Stream {
  std::vector<std::function<void()>> queued;  // run at the next synchronisation
  bool capturing = false, invalidated = false;
  std::vector<std::function<void()>> recorded;  // while capturing, for the graph
};
struct Graph {
  std::vector<std::function<void()>> work;
};

constexpr std::size_t kMemoryBytes = std::size_t(8) << 30;  // what the "GPU" has
constexpr std::size_t kAlignment = 256;                     // as cudaMalloc's

std::map<const std::byte*, std::size_t>& allocations() {
  static std::map<const std::byte*, std::size_t> a;
  return a;
}
std::size_t& allocated_bytes() {
  static std::size_t bytes = 0;
  return bytes;
}
std::vector<Stream*>& capturing_streams() {
  static std::vector<Stream*> streams;
  return streams;
}
thread_local cudaError_t last_error = cudaSuccess;

cudaError_t fail(cudaError_t e, const char* call, const char* why) {
  std::fprintf(stderr, "emulated %s: %s\n", call, why);
  last_error = e;
  return e;
}

std::set<Stream*>& created_streams() {
  static std::set<Stream*> streams;
  return streams;
}

Stream& stream_of(cudaStream_t s) {
  static Stream legacy;
  return s ? *reinterpret_cast<Stream*>(s) : legacy;
}

// Whether host code may touch device memory; only the queued work's run opens it. Without
// AddressSanitizer nothing checks.
void set_device_memory_open(bool open) {
#if defined(__SANITIZE_ADDRESS__)
  for (const auto& [p, bytes] : allocations())
    if (open)
      ASAN_UNPOISON_MEMORY_REGION(p, bytes);
    else
      ASAN_POISON_MEMORY_REGION(p, bytes);
#else
  (void)open;
#endif
}

// Runs what the stream has queued, in order. An exception in it (a kernel that the emulator
// refused, say) fails the call that waited, as a kernel's fault fails the next synchronising call.
cudaError_t run_queued(Stream& s, const char* call) {
  const std::vector<std::function<void()>> work = std::exchange(s.queued, {});
  set_device_memory_open(true);
  std::string error;
  try {
    for (const auto& w : work) w();
  } catch (const std::exception& e) {
    error = e.what();
  }
  set_device_memory_open(false);
  return error.empty() ? cudaSuccess : fail(cudaErrorLaunchFailure, call, error.c_str());
}

cudaError_t run_all_queued(const char* call) {
  cudaError_t first = run_queued(stream_of(nullptr), call);
  for (Stream* s : created_streams())
    if (const cudaError_t e = run_queued(*s, call); first == cudaSuccess) first = e;
  return first;
}

// A capture that met an operation it cannot record ends in cudaErrorStreamCaptureInvalidated.
cudaError_t refuse_in_capture(const char* call) {
  for (Stream* s : capturing_streams()) s->invalidated = true;
  return fail(cudaErrorStreamCaptureUnsupported, call, "not allowed while a stream captures");
}

}  // namespace

void enqueue(cudaStream_t stream, std::function<void()> work) {
  Stream& s = stream_of(stream);
  (s.capturing ? s.recorded : s.queued).push_back(std::move(work));
}

bool is_device_memory(const void* p, std::size_t bytes) {
  const auto* b = static_cast<const std::byte*>(p);
  auto it = allocations().upper_bound(b);
  if (it == allocations().begin()) return false;
  --it;
  return b >= it->first && b + bytes <= it->first + it->second;
}

}  // namespace ctformer::emulation

namespace em = ctformer::emulation;

cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  *p = nullptr;
  if (!em::capturing_streams().empty()) return em::refuse_in_capture("cudaMalloc");
  if (bytes == 0) return cudaSuccess;
  if (bytes > em::kMemoryBytes - em::allocated_bytes())
    return em::fail(cudaErrorMemoryAllocation, "cudaMalloc", "out of emulated GPU memory");
  auto* b = static_cast<std::byte*>(::operator new(bytes, std::align_val_t(em::kAlignment)));
  std::memset(b, 0xff, bytes);
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(b, bytes);
#endif
  em::allocations()[b] = bytes;
  em::allocated_bytes() += bytes;
  *p = b;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!em::capturing_streams().empty()) return em::refuse_in_capture("cudaFree");
  if (!p) return cudaSuccess;
  const auto it = em::allocations().find(static_cast<const std::byte*>(p));
  if (it == em::allocations().end())
    return em::fail(cudaErrorInvalidValue, "cudaFree", "not a pointer that cudaMalloc returned");
  const cudaError_t queued = em::run_all_queued("cudaFree");
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(p, it->second);
#endif
  std::memset(p, 0xff, it->second);  // a graph that still reads it reads NaN
  em::allocated_bytes() -= it->second;
  em::allocations().erase(it);
  ::operator delete(p, std::align_val_t(em::kAlignment));
  return queued;
}

cudaError_t cudaMemGetInfo(std::size_t* free, std::size_t* total) {
  *total = em::kMemoryBytes;
  *free = em::kMemoryBytes - em::allocated_bytes();
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const bool device_dst = em::is_device_memory(dst, count),
             device_src = em::is_device_memory(src, count);
  const bool to_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool from_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind != cudaMemcpyDefault && (to_device != device_dst || from_device != device_src))
    return em::fail(cudaErrorInvalidValue, "cudaMemcpyAsync",
                    "the direction does not match where the pointers are (or a range runs past "
                    "the end of its allocation)");
  if (em::stream_of(stream).capturing && !(device_dst && device_src))
    return em::refuse_in_capture("cudaMemcpyAsync from or to host memory");
  if (device_src) {
    // Until the stream is synchronised the destination holds nothing it can be read for.
    if (!device_dst) std::memset(dst, 0xff, count);
    em::enqueue(stream, [=] { std::memcpy(dst, src, count); });
  } else {
    auto staged = std::make_shared<std::vector<std::byte>>(
        static_cast<const std::byte*>(src), static_cast<const std::byte*>(src) + count);
    em::enqueue(stream, [=] { std::memcpy(dst, staged->data(), count); });
  }
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, std::size_t count, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (!em::is_device_memory(p, count))
    return em::fail(cudaErrorInvalidValue, "cudaMemsetAsync",
                    "the range is not within one allocation of cudaMalloc");
  em::enqueue(stream, [=] { std::memset(p, value, count); });
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  auto* s = new em::Stream;
  em::created_streams().insert(s);
  *stream = reinterpret_cast<cudaStream_t>(s);
  return cudaSuccess;
}

// Work still queued completes first, as the runtime's does.
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  auto* s = reinterpret_cast<em::Stream*>(stream);
  const cudaError_t queued = em::run_queued(*s, "cudaStreamDestroy");
  em::created_streams().erase(s);
  delete s;
  return queued;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  em::Stream& s = em::stream_of(stream);
  if (s.capturing) {
    s.invalidated = true;
    return em::fail(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize",
                    "the stream is capturing a graph");
  }
  return em::run_queued(s, "cudaStreamSynchronize");
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  em::Stream& s = em::stream_of(stream);
  if (s.capturing)
    return em::fail(cudaErrorIllegalState, "cudaStreamBeginCapture", "already capturing");
  s.capturing = true;
  s.invalidated = false;
  em::capturing_streams().push_back(&s);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  em::Stream& s = em::stream_of(stream);
  *graph = nullptr;
  if (!s.capturing)
    return em::fail(cudaErrorIllegalState, "cudaStreamEndCapture", "the stream is not capturing");
  std::erase(em::capturing_streams(), &s);
  s.capturing = false;
  std::vector<std::function<void()>> recorded = std::exchange(s.recorded, {});
  if (s.invalidated) {
    em::last_error = cudaErrorStreamCaptureInvalidated;
    return cudaErrorStreamCaptureInvalidated;
  }
  *graph = reinterpret_cast<cudaGraph_t>(new em::Graph{std::move(recorded)});
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  *exec = reinterpret_cast<cudaGraphExec_t>(new em::Graph(*reinterpret_cast<em::Graph*>(graph)));
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  for (const auto& work : reinterpret_cast<em::Graph*>(exec)->work) em::enqueue(stream, work);
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete reinterpret_cast<em::Graph*>(exec);
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete reinterpret_cast<em::Graph*>(graph);
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  return std::exchange(em::last_error, cudaSuccess);
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorIllegalState:
      return "cudaErrorIllegalState";
    case cudaErrorStreamCaptureUnsupported:
      return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated:
      return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    default:
      return "cudaError (emulated: unnamed)";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess ? "no error" : "an error of the emulated CUDA runtime";
}

cudaError_t cudaDriverGetVersion(int* version) {
  *version = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

// Few multiprocessors, so that kernels whose grid is capped by their number (the GEMV's) loop over
// several column groups per block.
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0)
    return em::fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties", "device 0 only");
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof(prop->name), "CPU emulation");
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 2;
  prop->totalGlobalMem = em::kMemoryBytes;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess
                     : em::fail(cudaErrorInvalidDevice, "cudaSetDevice", "device 0 only");
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, const void*) {
  *attributes = cudaFuncAttributes{};
  return cudaSuccess;
}
