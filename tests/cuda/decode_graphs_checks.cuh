// ctformer::cuda::DecodeGraphs on its own, with a one-kernel "step" that counts its runs in device
// memory: a bucket runs directly, then is captured and replayed; moved memory means a direct run
// and a new capture, as does a moved scratch area; a step that cannot be captured switches graphs
// off and still runs. The model-level check (graphs give the logits of direct steps) is in
// gpt2_checks.cuh. Included by decode_graphs_test.cu (on a GPU) and emulated_backend_test.cpp.
#pragma once

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>

#include "cuda/cuda_test_support.cuh"

namespace ctformer::test {

// A template, so that every translation unit may define it.
template <int = 0>
__global__ void count_run(int* counter) {
  ++*counter;
}

struct Counter {
  ctformer::cuda::buffer<int> device{1};
  Counter() {
    CTFORMER_CUDA_CHECK(cudaMemsetAsync(device.data(), 0, sizeof(int), cuda_detail::stream()));
  }
  void launch() {
    cuda_detail::launch(count_run<>, 1, 1, device.data());
    CTFORMER_CUDA_CHECK_LAUNCH("count_run");
  }
  int value() const {
    return ctformer::cuda::download(MatrixView<const int>{device.data(), 1, 1})[0];
  }
};

inline void direct_then_captured_then_replayed() {
  ctformer::cuda::DecodeGraphs graphs;
  graphs.set_enabled(true);
  Counter counter;
  const void* const first[] = {counter.device.data()};
  const void* const moved[] = {counter.device.data(), &graphs};
  auto launch = [&] { counter.launch(); };
  graphs.run(4, first, launch);  // direct
  BOOST_TEST(counter.value() == 1);
  BOOST_TEST(graphs.captures() == 0);
  graphs.run(4, first, launch);  // captured, then replayed
  graphs.run(4, first, launch);  // replayed
  BOOST_TEST(counter.value() == 3);
  BOOST_TEST(graphs.captures() == 1);
  BOOST_TEST(graphs.replays() == 2);
  graphs.run(4, moved, launch);  // other memory: direct again
  graphs.run(4, moved, launch);  // captured anew
  BOOST_TEST(counter.value() == 5);
  BOOST_TEST(graphs.captures() == 2);
  graphs.run(8, moved, launch);  // another bucket: direct
  BOOST_TEST(counter.value() == 6);
  graphs.run(600, moved, launch);  // beyond the largest bucket: always direct
  graphs.run(600, moved, launch);
  BOOST_TEST(counter.value() == 8);
  BOOST_TEST(graphs.captures() == 2);
  BOOST_TEST(graphs.failure().empty());
}

inline void a_step_that_cannot_be_captured_runs_directly_and_switches_graphs_off() {
  ctformer::cuda::DecodeGraphs graphs;
  graphs.set_enabled(true);
  Counter counter;
  const void* const addresses[] = {counter.device.data()};
  // Synchronising the stream is not allowed while it is being captured.
  auto launch = [&] {
    counter.launch();
    CTFORMER_CUDA_CHECK(cudaStreamSynchronize(cuda_detail::stream()));
  };
  graphs.run(2, addresses, launch);  // direct
  graphs.run(2, addresses, launch);  // the capture fails; the step runs directly
  BOOST_TEST(counter.value() == 2);
  BOOST_TEST(!graphs.enabled());
  BOOST_TEST(graphs.failure().find("batch 2") != std::string::npos, graphs.failure());
  graphs.run(2, addresses, launch);  // graphs are off
  BOOST_TEST(counter.value() == 3);
  BOOST_TEST(graphs.captures() == 0);
  // The backend's stream works normally afterwards.
  CTFORMER_CUDA_CHECK(cudaStreamSynchronize(cuda_detail::stream()));
}

inline void a_moved_scratch_area_means_a_new_capture() {
  // Ops keep temporaries (attention's split partials) in the context's scratch area; when it grows
  // it moves, and a graph that recorded the old address must not be replayed.
  ctformer::cuda::DecodeGraphs graphs;
  graphs.set_enabled(true);
  Counter counter;
  const void* const addresses[] = {counter.device.data()};
  auto launch = [&] { counter.launch(); };
  graphs.run(1, addresses, launch);  // direct
  graphs.run(1, addresses, launch);  // captured, replayed
  BOOST_TEST(graphs.captures() == 1);
  cuda_detail::Context& context = cuda_detail::context();
  const std::uint64_t generation = context.scratch_generation();
  context.scratch(std::size_t(64) << 20);  // more than this program has asked for
  BOOST_TEST(context.scratch_generation() != generation);
  graphs.run(1, addresses, launch);  // the signature changed: direct
  BOOST_TEST(graphs.captures() == 1);
  BOOST_TEST(graphs.replays() == 1);
  graphs.run(1, addresses, launch);  // captured anew
  BOOST_TEST(graphs.captures() == 2);
  BOOST_TEST(counter.value() == 4);
}

}  // namespace ctformer::test

#define CTFORMER_DECODE_GRAPHS_TEST_CASES                                                      \
  BOOST_AUTO_TEST_CASE(direct_then_captured_then_replayed) {                                   \
    ctformer::test::direct_then_captured_then_replayed();                                      \
  }                                                                                            \
  BOOST_AUTO_TEST_CASE(a_step_that_cannot_be_captured_runs_directly_and_switches_graphs_off) { \
    ctformer::test::a_step_that_cannot_be_captured_runs_directly_and_switches_graphs_off();    \
  }                                                                                            \
  BOOST_AUTO_TEST_CASE(a_moved_scratch_area_means_a_new_capture) {                             \
    ctformer::test::a_moved_scratch_area_means_a_new_capture();                                \
  }
