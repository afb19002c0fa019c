// Decode steps replayed from CUDA graphs. A GPT-2 124M decode step at batch 1 is 64 small kernels:
// the GPU needs some 75 us for them, while launching them one by one costs the CPU several
// hundred. A graph records the step's launches once and replays them in one call.
//
// A graph replays the exact kernels, grid sizes and pointers it recorded, so a decode step is made
// to look the same every time:
//   - the batch is padded to a bucket (1, 2, 4, 8, then multiples of 8 up to kMaxBatch); the
//   padding
//     rows decode token 0 into the KV cache's padding block (PagedKvCache::padding_block);
//   - everything that changes between steps (tokens, positions, block tables, lengths) is device
//     memory that the model writes before the replay, and no kernel's launch depends on it;
//   - the memory addresses the step uses are compared with those recorded: when the model's
//     buffers or the backend's scratch area moved, the bucket's graph is recorded again.
// A bucket runs directly the first time it is seen (that run sizes the scratch area and picks the
// cuBLASLt algorithms, neither of which may happen during a capture), is captured the second time
// and replayed from then on.
//
// CTFORMER_CUDA_GRAPHS=0 in the environment, or set_enabled(false), runs every step directly.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "ctformer/backends/cuda/context.cuh"
#include "ctformer/backends/cuda/error.hpp"

namespace ctformer::cuda_detail {

class DecodeGraphs {
 public:
  // Larger batches run directly: their kernels are long enough to hide the launches.
  static constexpr std::int64_t kMaxBatch = 512;

  DecodeGraphs() {
    const char* env = std::getenv("CTFORMER_CUDA_GRAPHS");
    enabled_ = !(env && std::strcmp(env, "0") == 0);
  }

  bool enabled() const { return enabled_; }
  // Switching off drops the recorded graphs.
  void set_enabled(bool on) {
    enabled_ = on;
    if (!on) buckets_.clear();
  }
  // Why graphs were switched off after a capture failed (empty if they were not).
  const std::string& failure() const { return failure_; }
  std::int64_t captures() const { return captures_; }
  std::int64_t replays() const { return replays_; }

  // The batch a decode step of `sequences` runs as.
  std::int64_t padded_batch(std::int64_t sequences) const {
    if (!enabled_ || sequences > kMaxBatch) return sequences;
    if (sequences <= 8) return std::int64_t(std::bit_ceil(std::uint64_t(sequences)));
    return (sequences + 7) / 8 * 8;
  }

  // Runs `launch`, which queues a decode step of `batch` rows on the backend's stream, directly or
  // from the bucket's graph. `addresses` are the device buffers the step reads and writes.
  template <class F>
  void run(std::int64_t batch, std::span<const void* const> addresses, F&& launch) {
    if (!enabled_ || batch > kMaxBatch) return launch();
    Bucket& bucket = buckets_[batch];
    if (bucket.signature != signature(addresses)) {  // new, or its memory moved
      bucket = Bucket{};
      launch();
      // Taken after the run, which may have grown the scratch area: the next step is captured.
      bucket.signature = signature(addresses);
      return;
    }
    if (!bucket.graph && !capture(batch, bucket, launch)) return launch();
    CTFORMER_CUDA_CHECK(cudaGraphLaunch(bucket.graph.get(), context().stream()));
    ++replays_;
  }

 private:
  struct ExecDeleter {
    void operator()(cudaGraphExec_t g) const { cudaGraphExecDestroy(g); }
  };
  // The step's buffers and the scratch area's generation.
  static std::vector<const void*> signature(std::span<const void* const> addresses) {
    std::vector<const void*> s(addresses.begin(), addresses.end());
    s.push_back(reinterpret_cast<const void*>(context().scratch_generation()));
    return s;
  }

  struct Bucket {
    std::vector<const void*> signature;
    std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>, ExecDeleter> graph;
  };

  // Records `launch` into the bucket's graph. On failure (an API that cannot be captured, or a
  // driver without graph support) graphs are switched off with a note on stderr and false is
  // returned: nothing of the step has run, and the caller runs it directly.
  template <class F>
  bool capture(std::int64_t batch, Bucket& bucket, F& launch) {
    const cudaStream_t stream = context().stream();
    cudaGraph_t graph = nullptr;
    std::string error;
    cudaError_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    if (e == cudaSuccess) {
      try {
        launch();
      } catch (const std::exception& x) {
        error = x.what();
      } catch (...) {
        error = "an exception that is not a std::exception";
      }
      e = cudaStreamEndCapture(stream, &graph);  // ends the capture even after an exception
    }
    if (error.empty() && e != cudaSuccess) error = describe(e);
    cudaGraphExec_t exec = nullptr;
    if (error.empty()) {
      e = cudaGraphInstantiate(&exec, graph, 0);
      if (e != cudaSuccess) error = describe(e);
    }
    if (graph) cudaGraphDestroy(graph);
    if (!error.empty()) {
      (void)cudaGetLastError();  // capture errors are not sticky: clear the last one
      failure_ = "capturing a decode step of batch " + std::to_string(batch) +
                 " into a CUDA graph failed: " + error;
      std::cerr << "ctformer: " << failure_ << "; decode steps now run without graphs\n";
      set_enabled(false);
      return false;
    }
    bucket.graph.reset(exec);
    ++captures_;
    return true;
  }

  bool enabled_ = true;
  std::string failure_;
  std::int64_t captures_ = 0, replays_ = 0;
  std::map<std::int64_t, Bucket> buckets_;
};

}  // namespace ctformer::cuda_detail
