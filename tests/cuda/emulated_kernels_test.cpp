// CUDA kernels run on the CPU by emulation.hpp, against the CPU reference ops, in every precision,
// with outputs poisoned with NaN:
// - attention (ops/attention_kernels.cuh): the keys and values a step appends to a paged cache,
//   prefill attention over sequences with and without cached keys, and decode attention split 1 to
//   32 ways, combined by the last split to arrive; every head size the CUDA backend supports; cache
//   rows the sequences do not own poisoned with NaN;
// - LayerNorm and RMSNorm (ops/layer_norm_kernels.cuh), out of place and in place;
// - the small-batch projection (ops/linear_kernels.cuh's gemv_kernel) with each epilogue and with
//   the norm before it, the transpose that prepares its weights, and the GELU kernel.
//
// This needs no GPU, so it runs everywhere; it checks the kernels' indexing, masking, split
// partition and online softmax, not their speed or their memory safety on a real GPU (the
// `cuda_kernels_*` tests and compute-sanitizer do that where there is one). The launch shapes below
// follow the ops' (ops/attention.cuh, ops/layer_norm.cuh).
#define BOOST_TEST_MODULE cuda_emulated_kernels
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "ctformer/ops/attention.hpp"
#include "ctformer/ops/layer_norm.hpp"
#include "ctformer/ops/linear.hpp"
#include "ctformer/ops/rms_norm.hpp"
#include "cuda/paged_step.hpp"
#include "cuda/precision.hpp"

// Last, in this order: emulation.hpp defines threadIdx and friends as macros, for the kernels.
#include "cuda/emulation.hpp"

#include "ctformer/ops/attention_kernels.cuh"
#include "ctformer/ops/layer_norm_kernels.cuh"
#include "ctformer/ops/linear_kernels.cuh"

namespace ctformer::test {
namespace {

namespace kernels = ops::cuda_kernels;

// The sequences of one step: how many positions each has cached and how many it adds.
struct StepShape {
  std::vector<std::int64_t> past, rows;
};

// PagedAttention with `splits` splits of each query's keys (1: no combine), as
// PagedAttention<cuda>::launch runs it; the kernels' cache and output against the CPU op's.
template <class T, int D, int kWarps, int kRowsPerWarp>
void check_attention(const StepShape& shape, std::int64_t n_head, int splits, std::mt19937& rng) {
  using Shape = kernels::AttentionShape<D, kWarps, kRowsPerWarp>;
  const std::int64_t C = n_head * D;
  const PagedStep f = PagedStep::create<T>(shape.past, shape.rows, C, 16, rng);
  const std::string what = std::string(cuda_detail::dtype_name<T>()) + " D=" + std::to_string(D) +
                           " heads=" + std::to_string(n_head) +
                           " splits=" + std::to_string(splits) + " rows=" + std::to_string(f.N);
  const float scale = 1.0f / std::sqrt(float(D));

  // The reference, on the same rounded values.
  std::vector<float> want_keys = f.keys, want_values = f.values, want(std::size_t(f.N * C));
  const KvLayerView<float> want_cache{
      {want_keys.data(), f.cache_rows(), C}, {want_values.data(), f.cache_rows(), C}, f.block_size};
  ops::PagedAttention<cpu>::run({f.qkv.data(), f.N, 3 * C}, f.step(), want_cache, n_head, scale,
                                {want.data(), f.N, C});

  std::vector<T> qkv = narrowed<T>(f.qkv), keys = narrowed<T>(f.keys),
                 values = narrowed<T>(f.values);
  std::vector<T> out(std::size_t(f.N * C), static_cast<T>(std::numeric_limits<float>::quiet_NaN()));
  std::vector<float> partial(std::size_t(f.N * n_head * splits * (D + 2)),
                             std::numeric_limits<float>::quiet_NaN());
  const auto query_blocks = unsigned((f.max_new_rows + Shape::kRows - 1) / Shape::kRows);
  // Zero, as Context::arrival_counters hands them out; the kernel must leave them zero.
  std::vector<unsigned> arrivals(f.slices.size() * query_blocks * std::size_t(n_head), 0);
  const auto S = unsigned(f.slices.size());

  const kernels::AttentionParams<T> params{qkv.data(),
                                           f.slices.data(),
                                           keys.data(),
                                           values.data(),
                                           out.data(),
                                           splits > 1 ? partial.data() : nullptr,
                                           splits > 1 ? arrivals.data() : nullptr,
                                           C,
                                           f.block_size,
                                           int(n_head),
                                           splits,
                                           scale * 1.4426950408889634f};
  emulation::launch({S, query_blocks, unsigned(n_head * splits)}, {unsigned(Shape::kThreads)},
                    [&] { kernels::attention_kernel<T, D, Shape>(params); });
  BOOST_TEST(std::ranges::count(arrivals, 0u) == std::ptrdiff_t(arrivals.size()),
             what << ": arrival counters left non-zero");

  // The step's keys and values are copied exactly, and every row it does not own keeps its NaN.
  BOOST_TEST(same_cache(widened(keys), want_keys),
             what << ": the cache's keys differ from the CPU's");
  BOOST_TEST(same_cache(widened(values), want_values),
             what << ": the cache's values differ from the CPU's");
  const double err = error_relative_to_scale(widened(out), want);
  BOOST_TEST_MESSAGE(what << ": error " << err);
  BOOST_TEST(err <= kernel_tolerance<T>(),
             what << ": error " << err << " > " << kernel_tolerance<T>());
}

// A prefill step: a fresh prompt longer than a block of queries (16), one that continues a cached
// sequence across a key tile (32), long caches with a few and with many new tokens, and one
// decoding row.
const StepShape kPrefill{{0, 20, 64, 150, 3}, {37, 5, 16, 40, 1}};
// A decode step at lengths on either side of key tiles (32) and split minimums (64).
const StepShape kDecode{{0, 30, 31, 32, 63, 64, 199, 256}, {1, 1, 1, 1, 1, 1, 1, 1}};

// Both launch shapes of PagedAttention<cuda>: 4 warps of 4 queries for prefill, 1 warp of 1 query
// for decode.
template <class T, int D>
void check_head_size(std::mt19937& rng) {
  check_attention<T, D, 4, 4>(kPrefill, 3, 1, rng);
  for (const int splits : {1, 2, 5, 32}) check_attention<T, D, 1, 1>(kDecode, 3, splits, rng);
}

template <class T>
void check_precision() {
  std::mt19937 rng(20261130);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (check_head_size<T, kCudaHeadSizes[I]>(rng), ...);
  }
  (std::make_index_sequence<std::size(kCudaHeadSizes)>{});
}

// LayerNorm (kCentered) or RMSNorm over rows of x with a non-zero mean, as launch_row_norm runs
// the kernel, out of place and in place (out aliasing x, as the layers run it).
template <class T, bool kCentered>
void check_row_norm(std::int64_t N, std::int64_t C, std::mt19937& rng) {
  auto x = random_values<T>(std::size_t(N * C), rng, 3.0f);
  for (std::int64_t i = 0; i < N * C; i += C) x[std::size_t(i)] += 5.0f;
  const auto gamma = random_values<T>(std::size_t(C), rng);
  const auto beta = random_values<T>(std::size_t(C), rng);
  std::vector<float> want(std::size_t(N * C));
  if constexpr (kCentered)
    ops::LayerNorm<cpu>::run<float>({x.data(), N, C}, gamma, beta, 1e-5f, {want.data(), N, C});
  else
    ops::RmsNorm<cpu>::run<float>({x.data(), N, C}, gamma, 1e-5f, {want.data(), N, C});

  const std::vector<T> x_t = narrowed<T>(x), gamma_t = narrowed<T>(gamma),
                       beta_t = narrowed<T>(beta);
  const auto blocks = unsigned((N + kernels::kRowNormWarps - 1) / kernels::kRowNormWarps);
  const std::string what = std::string(cuda_detail::dtype_name<T>()) +
                           (kCentered ? " layer_norm " : " rms_norm ") + std::to_string(N) + "x" +
                           std::to_string(C);
  const T nan = static_cast<T>(std::numeric_limits<float>::quiet_NaN());
  for (const bool in_place : {false, true}) {
    std::vector<T> out = in_place ? x_t : std::vector<T>(std::size_t(N * C), nan);
    const T* in = in_place ? out.data() : x_t.data();
    emulation::launch({blocks}, {unsigned(kernels::kRowNormWarps * 32)}, [&] {
      kernels::row_norm_kernel<T, kCentered>(in, gamma_t.data(), beta_t.data(), 1e-5f, N, C,
                                             out.data());
    });
    const double err = error_relative_to_scale(widened(out), want);
    BOOST_TEST_MESSAGE(what << (in_place ? " in place" : "") << ": error " << err);
    BOOST_TEST(err <= kernel_tolerance<T>(), what << (in_place ? " in place" : "") << ": error "
                                                  << err << " > " << kernel_tolerance<T>());
  }
}

template <class T>
void check_row_norms() {
  std::mt19937 rng(20261130);
  for (const auto& [N, C] :
       {std::pair<std::int64_t, std::int64_t>{1, 768}, {33, 100}, {5, 31}, {3, 1600}}) {
    check_row_norm<T, true>(N, C, rng);
    check_row_norm<T, false>(N, C, rng);
  }
}

// A weight as a checkpoint stores it, (K, M), transposed by transpose_kernel as
// Linear<cuda>::prepare launches it; then x (N, K), with no norm, LayerNorm or RMSNorm, times it by
// gemv_kernel, with the parameters Linear<cuda>::run makes (gemv_params), each epilogue and each
// way of sharing a row between warps, against the CPU reference on the checkpoint's layout. The
// output is poisoned with NaN, or holds the residual for Epilogue::bias_residual.
template <class T, int kRows>
void check_gemv(std::int64_t N, std::int64_t K, std::int64_t M, std::mt19937& rng) {
  auto x = random_values<T>(std::size_t(N * K), rng, 3.0f);
  for (std::int64_t i = 0; i < N * K; i += K) x[std::size_t(i)] += 5.0f;  // rows of non-zero mean
  const auto w = random_values<T>(std::size_t(K * M), rng, 0.05f);
  const auto bias = random_values<T>(std::size_t(M), rng);
  const auto residual = random_values<T>(std::size_t(N * M), rng);
  const std::string shape = std::string(cuda_detail::dtype_name<T>()) +
                            " gemv N=" + std::to_string(N) + " K=" + std::to_string(K) +
                            " M=" + std::to_string(M);

  const std::vector<T> w_in_out = narrowed<T>(w);
  std::vector<T> w_out_in(w_in_out.size(), static_cast<T>(std::numeric_limits<float>::quiet_NaN()));
  emulation::launch({unsigned((M + kernels::kTransposeTile - 1) / kernels::kTransposeTile),
                     unsigned((K + kernels::kTransposeTile - 1) / kernels::kTransposeTile)},
                    {unsigned(kernels::kTransposeTile), unsigned(kernels::kTransposeRowsPerPass)},
                    [&] { kernels::transpose_kernel<T>(w_in_out.data(), K, M, w_out_in.data()); });
  bool transposed = true;
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t m = 0; m < M; ++m)
      transposed = transposed && static_cast<float>(w_out_in[std::size_t(m * K + k)]) ==
                                     static_cast<float>(w_in_out[std::size_t(k * M + m)]);
  BOOST_TEST(transposed, shape << ": transpose_kernel did not transpose the weight");

  const auto gamma = random_values<T>(std::size_t(K), rng);
  const auto beta = random_values<T>(std::size_t(K), rng);
  const std::vector<T> x_t = narrowed<T>(x), bias_t = narrowed<T>(bias),
                       gamma_t = narrowed<T>(gamma), beta_t = narrowed<T>(beta);
  // No norm, LayerNorm and RMSNorm applied to x as the kernel reads it; the reference runs the
  // CPU norm first.
  enum class Norm { none, layer, rms };
  for (const Norm norm : {Norm::none, Norm::layer, Norm::rms}) {
    std::vector<float> normed = x;
    if (norm == Norm::layer)
      ops::LayerNorm<cpu>::run<float>({x.data(), N, K}, gamma, beta, 1e-5f, {normed.data(), N, K});
    if (norm == Norm::rms)
      ops::RmsNorm<cpu>::run<float>({x.data(), N, K}, gamma, 1e-5f, {normed.data(), N, K});
    for (const ops::Epilogue epilogue : {ops::Epilogue::bias, ops::Epilogue::bias_gelu,
                                         ops::Epilogue::bias_residual, ops::Epilogue::none}) {
      const bool adds = epilogue == ops::Epilogue::bias_residual;
      std::vector<float> want = adds ? residual : std::vector<float>(std::size_t(N * M));
      ops::Linear<cpu>::run<float>({normed.data(), N, K}, {w.data(), K, M}, WeightLayout::in_out,
                                   bias, epilogue, {want.data(), N, M});
      // The split the op picks for this K, and the others, so that every way of sharing a row
      // between warps runs.
      for (const int split : {1, 2, 4}) {
        std::vector<T> out =
            adds ? narrowed<T>(residual)
                 : std::vector<T>(std::size_t(N * M),
                                  static_cast<T>(std::numeric_limits<float>::quiet_NaN()));
        auto params = kernels::gemv_params<T>(
            x_t.data(), w_out_in.data(), epilogue == ops::Epilogue::none ? nullptr : bias_t.data(),
            out.data(), N, K, M, epilogue, norm == Norm::none ? nullptr : gamma_t.data(),
            norm == Norm::layer ? beta_t.data() : nullptr, 1e-5f);
        const bool ops_split = params.warps_per_column == split;
        params.warps_per_column = split;
        // Capped at 3 blocks on every other run, so that blocks also take several groups of
        // columns, as the LM head's do.
        const std::int64_t max_blocks = split == 2 ? 3 : 1 << 20;
        emulation::launch({kernels::gemv_blocks(params, max_blocks)},
                          {unsigned(kernels::kGemvWarps * 32)},
                          [&] { kernels::gemv_kernel<T, kRows>(params); });
        const char* norm_name[] = {"", " layer_norm", " rms_norm"};
        const std::string what = shape + norm_name[int(norm)] + " epilogue " +
                                 std::to_string(int(epilogue)) + " warps per column " +
                                 std::to_string(split) + (ops_split ? " (the op's)" : "") +
                                 (split == 2 ? ", at most 3 blocks" : "");
        // The residual is rounded to T on the GPU before the add and not on the CPU: one more
        // rounding of the same size, as in the GPU test.
        const double tolerance = (adds ? 2 : 1) * kernel_tolerance<T>();
        const double err = error_relative_to_scale(widened(out), want);
        BOOST_TEST_MESSAGE(what << ": error " << err);
        BOOST_TEST(err <= tolerance, what << ": error " << err << " > " << tolerance);
      }
    }
  }
}

// Every row count the op launches (1, 2, 4, 8 rows, and fewer rows than it is compiled for), K
// as in GPT-2 (768, 3072: several rounds of loads per lane) and smaller than one round of
// a warp's loads, and M not a multiple of the warps per block.
template <class T>
void check_gemvs() {
  std::mt19937 rng(20261130);
  check_gemv<T, 1>(1, 768, 37, rng);
  check_gemv<T, 2>(2, 3072, 10, rng);
  check_gemv<T, 4>(3, 64, 70, rng);
  check_gemv<T, 4>(4, 1024, 6, rng);
  check_gemv<T, 8>(5, 40, 33, rng);
  check_gemv<T, 8>(8, 264, 9, rng);
}

// GPT-2's GELU (transformers' gelu_new: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))), in
// double, against gelu_kernel in place over more elements than its grid has threads (it strides).
template <class T>
void check_gelu() {
  std::mt19937 rng(20261130);
  const std::int64_t n = 3 * kernels::kGeluThreads + 17;
  const auto x = random_values<T>(std::size_t(n), rng, 3.0f);
  std::vector<float> want(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    want[i] =
        float(0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
  }
  std::vector<T> y = narrowed<T>(x);
  emulation::launch({2}, {unsigned(kernels::kGeluThreads)},
                    [&] { kernels::gelu_kernel<T>(y.data(), n); });
  const double err = error_relative_to_scale(widened(y), want);
  BOOST_TEST_MESSAGE(cuda_detail::dtype_name<T>() << " gelu: error " << err);
  BOOST_TEST(err <= kernel_tolerance<T>());
}

}  // namespace

BOOST_AUTO_TEST_CASE(gelu_every_precision) {
  check_gelu<float>();
  check_gelu<__half>();
  check_gelu<__nv_bfloat16>();
}

BOOST_AUTO_TEST_CASE(gemv_fp32) {
  check_gemvs<float>();
}
BOOST_AUTO_TEST_CASE(gemv_fp16) {
  check_gemvs<__half>();
}
BOOST_AUTO_TEST_CASE(gemv_bf16) {
  check_gemvs<__nv_bfloat16>();
}

BOOST_AUTO_TEST_CASE(row_norm_fp32) {
  check_row_norms<float>();
}
BOOST_AUTO_TEST_CASE(row_norm_fp16) {
  check_row_norms<__half>();
}
BOOST_AUTO_TEST_CASE(row_norm_bf16) {
  check_row_norms<__nv_bfloat16>();
}

BOOST_AUTO_TEST_CASE(attention_fp32) {
  check_precision<float>();
}
BOOST_AUTO_TEST_CASE(attention_fp16) {
  check_precision<__half>();
}
BOOST_AUTO_TEST_CASE(attention_bf16) {
  check_precision<__nv_bfloat16>();
}

// The emulator itself: a shuffle that only some lanes of a warp reach is an error, as it is
// undefined on a GPU.
void divergent_shuffle_kernel(float* out) {
  if (threadIdx.x % 32 < 16) out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

BOOST_AUTO_TEST_CASE(emulator_rejects_a_divergent_shuffle) {
  std::vector<float> out(64);
  BOOST_CHECK_EXCEPTION(
      emulation::launch({1}, {64}, [&] { divergent_shuffle_kernel(out.data()); }), std::logic_error,
      [](const std::logic_error& e) {
        return std::string(e.what()).find("warp 0: 16 of its 32 lanes reached a shuffle") !=
               std::string::npos;
      });
}

// Lanes at two different shuffles would exchange values on the emulator; on a GPU that is
// undefined, so it is an error.
void mismatched_shuffle_kernel(float* out) {
  if (threadIdx.x % 2 == 0)
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
  else
    out[threadIdx.x] = __shfl_sync(0xffffffffu, 2.0f, 0);
}

BOOST_AUTO_TEST_CASE(emulator_rejects_lanes_at_different_shuffles) {
  std::vector<float> out(32);
  BOOST_CHECK_EXCEPTION(
      emulation::launch({1}, {32}, [&] { mismatched_shuffle_kernel(out.data()); }),
      std::logic_error, [](const std::logic_error& e) {
        return std::string(e.what()).find("lane 1 is at __shfl_sync") != std::string::npos;
      });
}

// An exception in a kernel's code (here: a shuffle over part of a warp, which the emulator does
// not model) reaches the caller of launch(), instead of unwinding off the fiber's stack.
void partial_mask_kernel(float* out) {
  out[threadIdx.x] = __shfl_sync(0x0000ffffu, 1.0f, 0);
}

BOOST_AUTO_TEST_CASE(emulator_passes_on_a_kernel_exception) {
  std::vector<float> out(32);
  BOOST_CHECK_EXCEPTION(emulation::launch({1}, {32}, [&] { partial_mask_kernel(out.data()); }),
                        std::logic_error, [](const std::logic_error& e) {
                          return std::string(e.what()).find("only full-warp shuffles") !=
                                 std::string::npos;
                        });
}

}  // namespace ctformer::test
