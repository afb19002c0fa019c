// The two CPU floors of a GPT-2 decode step, measured on this machine, beside the packed projection
// kernel's own speed:
//   memory: batch 1 reads every weight once, so a token costs at least weight bytes / read
//   bandwidth
//           (bandwidth measured here with all OpenMP threads streaming a buffer the model's size);
//   compute: a large batch costs at least 2 x (weights per token) FLOPs / the kernel's FLOP rate.
//   cpu_floor_bench [--layers 12] [--embd 768] [--vocab 50257] [--repeat 5]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ctformer/ops/linear.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Best of `repeat` passes of summing `data` (every thread its own contiguous part), in bytes/s.
double read_bandwidth(const std::vector<float>& data, int repeat) {
  double best = 0, sink = 0;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = Clock::now();
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (std::size_t i = 0; i < data.size(); i += 16) {
      float lanes = 0;
      for (int j = 0; j < 16; ++j) lanes += data[i + j];
      total += lanes;
    }
    best = std::max(best, double(data.size() * sizeof(float)) / seconds_since(t0));
    sink += total;
  }
  if (sink == 12345.0) std::puts("");  // keeps the sums alive
  return best;
}

// FLOP/s of the packed kernel on one projection of the model at `rows` tokens, weights in T.
template <class T>
double kernel_rate(std::int64_t rows, std::int64_t in, std::int64_t out, int repeat) {
  std::vector<T> w(std::size_t(in * out), T(0.01f)), bias(std::size_t(out), T(0.1f));
  std::vector<float> x(std::size_t(rows * in), 0.5f), y(std::size_t(rows * out));
  const auto packed =
      ctformer::ops::Linear<ctformer::cpu>::prepare<T>(w, in, out, ctformer::WeightLayout::in_out);
  double best = 0;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = Clock::now();
    ctformer::ops::Linear<ctformer::cpu>::run<T>(
        {x.data(), rows, in}, packed, bias, ctformer::ops::Epilogue::bias, {y.data(), rows, out});
    best = std::max(best, 2.0 * double(rows * in * out) / seconds_since(t0));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t layers = 12, C = 768, V = 50257;
  int repeat = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--layers"))
      layers = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--embd"))
      C = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--vocab"))
      V = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeat"))
      repeat = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--layers N] [--embd N] [--vocab N] [--repeat N]\n", argv[0]);
      return 2;
    }
  }
  // Weights read per decode token: every block (12 C^2 + 13 C), ln_f, and the tied head (V x C).
  const double weights = double(layers) * (12.0 * C * C + 13.0 * C) + 2.0 * C + double(V) * C;
  const double flops_per_token = 2.0 * (double(layers) * 12.0 * C * C + double(V) * C);

  std::printf("threads %d, kernel %s\n", omp_get_max_threads(),
              ctformer::ops::packed::best_kernel_name());
  std::fprintf(stderr, "measuring read bandwidth over %.0f MB...\n", weights * 4 / 1e6);
  const std::vector<float> buffer(std::size_t(weights), 1.0f);
  const double bandwidth = read_bandwidth(buffer, repeat);
  std::printf("read bandwidth   %.1f GB/s (best of %d passes over %.0f MB)\n", bandwidth / 1e9,
              repeat, weights * 4 / 1e6);
  for (const auto& [name, bytes] : {std::pair{"fp32", 4.0}, {"fp16/bf16", 2.0}})
    std::printf("memory floor     %-9s %.2f ms/token at batch 1 (%.0f MB of weights)\n", name,
                weights * bytes / bandwidth * 1e3, weights * bytes / 1e6);

  std::fprintf(stderr, "measuring the packed kernel...\n");
  auto compute_floor = [&]<class T>(const char* name) {
    for (const std::int64_t rows : {64, 128, 256}) {
      const double rate = kernel_rate<T>(rows, C, 4 * C, repeat);
      std::printf(
          "compute floor    %-4s batch %3lld: kernel %.1f GFLOP/s on (%lld x %lld) x (%lld x %lld),"
          " so at most %.0f tokens/s\n",
          name, static_cast<long long>(rows), rate / 1e9, static_cast<long long>(rows),
          static_cast<long long>(C), static_cast<long long>(C), static_cast<long long>(4 * C),
          rate / flops_per_token);
    }
  };
  compute_floor.operator()<float>("fp32");
  compute_floor.operator()<ctformer::half>("fp16");
  compute_floor.operator()<ctformer::bfloat16>("bf16");
}
