// Each CUDA op against the CPU (Eigen) reference op, on fresh random inputs and odd shapes, with
// the output poisoned with NaN before each run. Included by kernels_<precision>_test.cu, which sets
// T.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_test_support.cuh"
#include "cuda/paged_step.hpp"

namespace ctformer::test {

template <class T>
void check(const std::vector<float>& got, const std::vector<float>& want, const std::string& what,
           double tolerance = kernel_tolerance<T>()) {
  const double err = error_relative_to_scale(got, want);
  BOOST_TEST_MESSAGE(cuda_detail::dtype_name<T>() << " " << what << ": error " << err);
  BOOST_TEST(err <= tolerance, cuda_detail::dtype_name<T>()
                                   << " " << what << ": error " << err << " > " << tolerance);
}

template <class T>
void check_embedding(std::mt19937& rng) {
  for (const std::int64_t N : {1, 7, 33, 1024}) {
    const std::int64_t V = 101, P = 1024, C = 77;
    const auto wte = random_values<T>(V * C, rng), wpe = random_values<T>(P * C, rng);
    std::vector<std::int32_t> tokens(N), positions(N);
    for (auto& t : tokens) t = std::int32_t(rng() % V);
    for (auto& p : positions) p = std::int32_t(rng() % P);
    std::vector<float> want(N * C);
    ops::Embedding<cpu>::run<float>(tokens, positions, {wte.data(), V, C}, {wpe.data(), P, C},
                                    {want.data(), N, C});
    const auto d_wte = to_device<T>(wte), d_wpe = to_device<T>(wpe);
    const auto d_tokens = to_device_exact(tokens), d_positions = to_device_exact(positions);
    auto out = poisoned<T>(N * C);
    ops::Embedding<cuda>::run<T>({d_tokens.data(), d_tokens.size()},
                                 {d_positions.data(), d_positions.size()}, {d_wte.data(), V, C},
                                 {d_wpe.data(), P, C}, {out.data(), N, C});
    check<T>(to_host(out.data(), N * C), want, "embedding N=" + std::to_string(N));
  }
}

template <class T>
void check_layer_norm(std::mt19937& rng) {
  for (const auto& [N, C] :
       {std::pair<std::int64_t, std::int64_t>{1, 768}, {33, 100}, {5, 31}, {1024, 64}, {3, 1600}}) {
    auto x = random_values<T>(N * C, rng, 3.0f);
    for (std::int64_t i = 0; i < N * C; i += C) x[i] += 5.0f;  // a non-zero mean
    const auto gamma = random_values<T>(C, rng), beta = random_values<T>(C, rng);
    std::vector<float> want(N * C);
    ops::LayerNorm<cpu>::run<float>({x.data(), N, C}, gamma, beta, 1e-5f, {want.data(), N, C});
    const auto d_x = to_device<T>(x), d_gamma = to_device<T>(gamma), d_beta = to_device<T>(beta);
    auto out = poisoned<T>(N * C);
    ops::LayerNorm<cuda>::run<T>({d_x.data(), N, C}, {d_gamma.data(), std::size_t(C)},
                                 {d_beta.data(), std::size_t(C)}, 1e-5f, {out.data(), N, C});
    check<T>(to_host(out.data(), N * C), want,
             "layer_norm " + std::to_string(N) + "x" + std::to_string(C));
    // In place, as GPT-2's ln_f runs.
    auto inplace = to_device<T>(x);
    ops::LayerNorm<cuda>::run<T>({inplace.data(), N, C}, {d_gamma.data(), std::size_t(C)},
                                 {d_beta.data(), std::size_t(C)}, 1e-5f, {inplace.data(), N, C});
    check<T>(to_host(inplace.data(), N * C), want, "layer_norm in place");
  }
}

// RMSNorm, and the custom variant it makes possible composing on CUDA (a compile-time check).
template <class T>
void check_rms_norm(std::mt19937& rng) {
  using Variant =
      DecoderModel<cuda, T,
                   ParallelBlock<RmsNorm<cuda, T>, CausalSelfAttention<cuda, T>, Mlp<cuda, T>>,
                   RmsNorm<cuda, T>>;
  static_assert(sizeof(Variant) > 0);
  for (const auto& [N, C] :
       {std::pair<std::int64_t, std::int64_t>{1, 768}, {33, 100}, {5, 31}, {3, 1600}}) {
    auto x = random_values<T>(N * C, rng, 3.0f);
    const auto gamma = random_values<T>(C, rng);
    std::vector<float> want(N * C);
    ops::RmsNorm<cpu>::run<float>({x.data(), N, C}, gamma, 1e-5f, {want.data(), N, C});
    auto inout = to_device<T>(x);  // in place, as the layer may run it
    const auto d_gamma = to_device<T>(gamma);
    ops::RmsNorm<cuda>::run<T>({inout.data(), N, C}, {d_gamma.data(), std::size_t(C)}, 1e-5f,
                               {inout.data(), N, C});
    check<T>(to_host(inout.data(), N * C), want,
             "rms_norm " + std::to_string(N) + "x" + std::to_string(C));
  }
}

template <class T>
void check_linear(std::mt19937& rng) {
  struct Shape {
    std::int64_t N, K, M;
  };
  const std::vector<Shape> shapes =
      quick() ? std::vector<Shape>{{5, 64, 96}, {1, 100, 37}}
              : std::vector<Shape>{{1, 768, 2304},  {33, 100, 37},  {7, 64, 3072}, {130, 256, 320},
                                   {1, 768, 50257}, {4, 3072, 768}, {3, 40, 24}};
  for (const Shape& s : shapes)
    for (const WeightLayout layout : {WeightLayout::in_out, WeightLayout::out_in})
      for (const ops::Epilogue epilogue : {ops::Epilogue::bias, ops::Epilogue::bias_gelu,
                                           ops::Epilogue::bias_residual, ops::Epilogue::none}) {
        const auto x = random_values<T>(s.N * s.K, rng);
        const auto w = random_values<T>(s.K * s.M, rng, 0.05f);
        const auto bias = random_values<T>(s.M, rng);
        const auto residual = random_values<T>(s.N * s.M, rng);
        const MatrixView<const float> w_view = layout == WeightLayout::in_out
                                                   ? MatrixView<const float>{w.data(), s.K, s.M}
                                                   : MatrixView<const float>{w.data(), s.M, s.K};
        std::vector<float> want = residual;
        ops::Linear<cpu>::run<float>({x.data(), s.N, s.K}, w_view, layout, bias, epilogue,
                                     {want.data(), s.N, s.M});
        const auto d_x = to_device<T>(x), d_bias = to_device<T>(bias);
        // As stored (cuBLASLt reads either layout), and as Linear<cuda>::prepare keeps it: (out,
        // in), transposed by transpose_kernel if stored (in, out).
        const auto d_w = to_device<T>(w);
        const auto prepared =
            ops::Linear<cuda>::prepare(to_device<T>(w), w_view.rows, w_view.cols, layout);
        // Up to kGemvMaxRows rows an (out, in) weight goes to gemv_kernel unless it is switched
        // off; then cuBLASLt runs.
        for (const bool gemv : {true, false})
          for (const bool as_prepared : {false, true}) {
            cuda_detail::context().set_use_gemv(gemv);
            auto out = epilogue == ops::Epilogue::bias_residual ? to_device<T>(residual)
                                                                : poisoned<T>(s.N * s.M);
            const std::span<const T> d_b{d_bias.data(), std::size_t(s.M)};
            if (as_prepared) {
              // A prepared weight of a few rows whose width is whole 16-byte pieces is the GEMV's
              // (cudaMalloc'd buffers are aligned), unless it is switched off.
              const bool want_gemv =
                  gemv && s.N <= ops::cuda_kernels::kGemvMaxRows && s.K * sizeof(T) % 16 == 0;
              BOOST_TEST(ops::Linear<cuda>::runs_as_gemv<T>({d_x.data(), s.N, s.K}, prepared.view(),
                                                            WeightLayout::out_in) == want_gemv);
              ops::Linear<cuda>::run<T>({d_x.data(), s.N, s.K}, prepared, d_b, epilogue,
                                        {out.data(), s.N, s.M});
            } else
              ops::Linear<cuda>::run<T>({d_x.data(), s.N, s.K},
                                        {d_w.data(), w_view.rows, w_view.cols}, layout, d_b,
                                        epilogue, {out.data(), s.N, s.M});
            // The residual is rounded to T before the add on the GPU and not on the CPU: one more
            // rounding of the same size.
            check<T>(to_host(out.data(), s.N * s.M), want,
                     "linear N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
                         " M=" + std::to_string(s.M) + " layout " + std::to_string(int(layout)) +
                         " epilogue " + std::to_string(int(epilogue)) + " gemv " +
                         std::to_string(gemv) + (as_prepared ? " prepared" : ""),
                     epilogue == ops::Epilogue::bias_residual ? 2 * kernel_tolerance<T>()
                                                              : kernel_tolerance<T>());
          }
        cuda_detail::context().set_use_gemv(true);
      }
  // Operands one element into their buffers: x and out are then only 2-byte aligned in fp16/bf16
  // (4 in fp32) while their widths are multiples of 16, so only the alignment preferences given to
  // cuBLASLt's heuristic keep it from choosing an algorithm that needs more.
  const std::int64_t N = 3, K = 64, M = 96;
  const auto x = random_values<T>(N * K + 1, rng);
  const auto w = random_values<T>(K * M, rng, 0.05f);
  const auto bias = random_values<T>(M, rng);
  std::vector<float> want(std::size_t(N * M));
  ops::Linear<cpu>::run<float>({x.data() + 1, N, K}, {w.data(), K, M}, WeightLayout::in_out, bias,
                               ops::Epilogue::bias_gelu, {want.data(), N, M});
  const auto d_x = to_device<T>(x), d_w = to_device<T>(w), d_bias = to_device<T>(bias);
  auto out = poisoned<T>(N * M + 1);
  ops::Linear<cuda>::run<T>({d_x.data() + 1, N, K}, {d_w.data(), K, M}, WeightLayout::in_out,
                            {d_bias.data(), std::size_t(M)}, ops::Epilogue::bias_gelu,
                            {out.data() + 1, N, M});
  check<T>(to_host(out.data() + 1, N * M), want,
           "linear on operands one element into their buffers");
}

// A projection of normalised rows (ops::NormedRows), as each pre-norm branch and the LM head run
// it: LayerNorm and RMSNorm, at a few rows (inside the GEMV, unless it is switched off) and at
// many (the norm kernel into `normed`, then cuBLASLt).
template <class T>
void check_normed_linear(std::mt19937& rng) {
  const std::int64_t K = 768, M = 200;
  for (const std::int64_t N : {1, 5, 33})
    for (const bool layer_norm : {true, false})
      for (const bool gemv : {true, false}) {
        auto x = random_values<T>(N * K, rng, 3.0f);
        for (std::int64_t i = 0; i < N * K; i += K) x[i] += 5.0f;  // rows of non-zero mean
        const auto gamma = random_values<T>(K, rng), beta = random_values<T>(K, rng);
        const auto w = random_values<T>(M * K, rng, 0.05f), bias = random_values<T>(M, rng);
        std::vector<float> normed(N * K), want(N * M);
        if (layer_norm)
          ops::LayerNorm<cpu>::run<float>({x.data(), N, K}, gamma, beta, 1e-5f,
                                          {normed.data(), N, K});
        else
          ops::RmsNorm<cpu>::run<float>({x.data(), N, K}, gamma, 1e-5f, {normed.data(), N, K});
        ops::Linear<cpu>::run<float>({normed.data(), N, K}, {w.data(), M, K}, WeightLayout::out_in,
                                     bias, ops::Epilogue::bias_gelu, {want.data(), N, M});

        const auto d_x = to_device<T>(x), d_gamma = to_device<T>(gamma),
                   d_beta = to_device<T>(beta), d_bias = to_device<T>(bias);
        auto d_normed = poisoned<T>(N * K), out = poisoned<T>(N * M);
        const auto weight = ops::Linear<cuda>::prepare(to_device<T>(w), M, K, WeightLayout::out_in);
        const ops::RowNorm<T> norm{
            {d_gamma.data(), std::size_t(K)},
            layer_norm ? std::span<const T>(d_beta.data(), std::size_t(K)) : std::span<const T>(),
            1e-5f};
        cuda_detail::context().set_use_gemv(gemv);
        ops::Linear<cuda>::run<T>(
            ops::NormedRows<T, T>({d_x.data(), N, K}, norm, {d_normed.data(), N, K}), weight,
            {d_bias.data(), std::size_t(M)}, ops::Epilogue::bias_gelu, {out.data(), N, M});
        cuda_detail::context().set_use_gemv(true);
        // Fused, the norm is never written out; run on its own, it is the CPU's.
        const auto normed_out = to_host(d_normed.data(), N * K);
        if (gemv && N <= ops::cuda_kernels::kGemvMaxRows)
          BOOST_TEST(std::ranges::all_of(normed_out, [](float v) { return std::isnan(v); }),
                     "the GEMV did not apply the norm itself at N=" << N);
        else
          check<T>(normed_out, normed, "the norm before a projection N=" + std::to_string(N));
        // The GEMV does not round the normalised rows to T before the product; the norm kernel
        // does: one more rounding of the size of the output's.
        check<T>(to_host(out.data(), N * M), want,
                 std::string(layer_norm ? "layer_norm" : "rms_norm") +
                     " then linear N=" + std::to_string(N) + " gemv " + std::to_string(gemv),
                 2 * kernel_tolerance<T>());
      }
}

// A ragged step over a paged cache with shuffled blocks (cuda/paged_step.hpp): PagedAttention,
// which appends the step's keys and values, then attends.
template <class T>
void check_attention_case(std::mt19937& rng, int D, std::int64_t n_head, std::int64_t block_size,
                          const std::vector<std::int64_t>& past,
                          const std::vector<std::int64_t>& rows) {
  const std::int64_t C = D * n_head;
  const PagedStep host = PagedStep::create<T>(past, rows, C, block_size, rng, 2.0f);
  const std::int64_t N = host.N, cache_rows = host.cache_rows();
  std::vector<std::int32_t> tables;  // concatenated, for the device
  for (const auto& table : host.tables) tables.insert(tables.end(), table.begin(), table.end());
  const auto d_tables = to_device_exact(tables);
  std::vector<SequenceSlice> device_slices = host.slices;
  std::size_t at = 0;
  for (std::size_t s = 0; s < device_slices.size(); ++s) {
    device_slices[s].block_table = d_tables.data() + at;
    at += host.tables[s].size();
  }
  const auto d_slices = to_device_exact(device_slices);

  const auto d_keys = to_device<T>(host.keys), d_values = to_device<T>(host.values);
  const auto d_qkv = to_device<T>(host.qkv);
  std::vector<float> keys = host.keys, values = host.values, want(N * C);
  const KvLayerView<float> cpu_cache{
      {keys.data(), cache_rows, C}, {values.data(), cache_rows, C}, block_size};
  const KvLayerView<T> gpu_cache{
      {d_keys.data(), cache_rows, C}, {d_values.data(), cache_rows, C}, block_size};
  const float scale = 1.0f / std::sqrt(float(D));
  ops::PagedAttention<cpu>::run({host.qkv.data(), N, 3 * C}, host.step(), cpu_cache, n_head, scale,
                                {want.data(), N, C});
  auto out = poisoned<T>(N * C);
  const StepSlices device_step{{d_slices.data(), d_slices.size()}, host.max_new_rows};
  ops::PagedAttention<cuda>::run<T>({d_qkv.data(), N, 3 * C}, device_step, gpu_cache, n_head, scale,
                                    {out.data(), N, C});
  std::int64_t max_length = 0;
  for (const SequenceSlice& s : host.slices)
    max_length = std::max(max_length, s.past_length + s.num_rows);
  const std::string what = "attention D=" + std::to_string(D) + " heads=" + std::to_string(n_head) +
                           " S=" + std::to_string(past.size()) +
                           " max_rows=" + std::to_string(host.max_new_rows) +
                           " max_length=" + std::to_string(max_length);
  check<T>(to_host(out.data(), N * C), want, what);
  // The step's keys and values are copied exactly, and the rows no sequence owns keep their NaN.
  BOOST_TEST(same_cache(to_host(d_keys.data(), cache_rows * C), keys),
             cuda_detail::dtype_name<T>()
                 << " " << what << ": the cache's keys differ from the CPU's");
  BOOST_TEST(same_cache(to_host(d_values.data(), cache_rows * C), values),
             cuda_detail::dtype_name<T>()
                 << " " << what << ": the cache's values differ from the CPU's");
}

template <class T>
void check_attention(std::mt19937& rng) {
  std::uniform_int_distribution<std::int64_t> length(0, 1023);
  for (const int D : kCudaHeadSizes) {
    check_attention_case<T>(rng, D, 3, 7, {0, 50, 129}, {1, 20, 3});  // mixed prefill and decode
    std::vector<std::int64_t> past(quick() ? 3 : 33), ones(past.size(), 1);
    for (auto& p : past) p = length(rng);
    check_attention_case<T>(rng, D, 2, 16, past, ones);   // decode, a batch of 33
    check_attention_case<T>(rng, D, 2, 16, {1023}, {1});  // decode, split along the sequence
    // Decode lengths on the edges of a tile (32 keys) and of a split (kMinKeysPerSplit = 64),
    // the first token of a sequence among them (all but one of its splits have no keys).
    const std::vector<std::int64_t> edges = {0, 31, 32, 63, 64, 65, 256, 257, 1023};
    check_attention_case<T>(rng, D, 2, 16, edges, std::vector<std::int64_t>(edges.size(), 1));
  }
  {  // A decode batch that fills the GPU without splitting: one block per sequence and head.
    const std::int64_t n_head = 4, S = cuda_detail::ceil_div(
                                       2 * cuda_detail::context().device().multiprocessors, n_head);
    std::vector<std::int64_t> past(static_cast<std::size_t>(S)), ones(past.size(), 1);
    for (auto& p : past) p = length(rng);
    check_attention_case<T>(rng, 64, n_head, 16, past, ones);
  }
  if (!quick()) {
    check_attention_case<T>(rng, 64, 2, 16, {0}, {1024});  // a 1024 prefill
    check_attention_case<T>(rng, 80, 3, 7, {0, 5, 40, 0, 300}, {1, 17, 33, 100, 7});  // ragged
    check_attention_case<T>(rng, 128, 1, 5, {1000}, {24});  // a chunk at the end of the context
  }
}

template <class T>
void check_rows_and_argmax(std::mt19937& rng) {
  for (const auto& [M, V] : {std::pair<std::int64_t, std::int64_t>{1, 50257}, {33, 320}, {5, 7}}) {
    auto logits = random_values<T>(M * V, rng);
    for (std::int64_t i = 0; i < M; ++i) {  // a tie for the max: the lower index must win
      const std::int64_t a = i * V + std::int64_t(rng() % V), b = i * V + std::int64_t(rng() % V);
      logits[a] = logits[b] = 100.0f;
      if (i % 4 == 1)  // NaNs outrank every number: the first NaN must win, whatever the order
        logits[i * V + std::int64_t(rng() % V)] = logits[i * V + std::int64_t(rng() % V)] =
            std::numeric_limits<float>::quiet_NaN();
    }
    std::vector<std::int32_t> want(M), got(M, -1);
    ops::Argmax<cpu>::run({logits.data(), M, V}, want);
    const auto d_logits = to_device<T>(logits);
    ops::Argmax<cuda>::run<T>({d_logits.data(), M, V}, got);
    BOOST_TEST(got == want, boost::test_tools::per_element());

    // GatherRows: M rows out of a matrix without NaNs (an unwritten element must show), in a
    // scrambled order.
    const auto source = random_values<T>(M * V, rng);
    std::vector<std::int64_t> rows(M);
    for (auto& r : rows) r = std::int64_t(rng() % M);
    std::vector<float> gathered(M * V);
    ops::GatherRows<cpu>::run({source.data(), M, V}, rows, {gathered.data(), M, V});
    const auto d_source = to_device<T>(source);
    const auto d_rows = to_device_exact(rows);
    auto out = poisoned<T>(M * V);
    ops::GatherRows<cuda>::run<T>({d_source.data(), M, V}, {d_rows.data(), d_rows.size()},
                                  {out.data(), M, V});
    check<T>(to_host(out.data(), M * V), gathered, "gather_rows", 0.0);
  }
}

template <class T>
void check_sampling(std::mt19937& rng) {
  const std::int64_t M = 33, V = 1000;
  const std::vector<std::int32_t> history = {1, 5, 5, 999, 42};
  // A logit bias, a ban, a bias and penalties on a repeated token, and a penalty alone.
  const std::vector<ops::TokenBias> biases = {
      {7, 2.0f, 0.5f}, {42, -INFINITY, 0.0f}, {5, 1.5f, 0.3f}, {998, 0.0f, -1.0f}};
  std::vector<ops::TokenBias> banned(static_cast<std::size_t>(V));
  for (std::int64_t t = 0; t < V; ++t) banned[std::size_t(t)] = {std::int32_t(t), -INFINITY, 0.0f};
  std::vector<ops::SamplingRow> rows(M);
  for (std::int64_t i = 0; i < M; ++i) {
    ops::SamplingRow& r = rows[i];
    r.temperature = i % 4 == 0 ? 0.0f : 0.5f + 0.1f * float(i % 7);
    r.top_k = i % 3 == 0 ? 0 : std::int32_t(1 + i * 7 % 300);
    r.top_p = i % 5 == 0 ? 1.0f : 0.3f + 0.02f * float(i);
    r.repetition_penalty = i % 3 == 1 ? 1.0f : 1.3f;  // greedy rows (i % 4 == 0) get both
    r.seed = 1234 + std::uint64_t(i);
    r.draw = std::uint64_t(i * 3);
    r.history = history;
    r.min_p = i % 6 == 2 ? 0.02f * float(i) : 0.0f;
    if (i % 2 == 0) r.biases = biases;
  }
  rows[M - 2].biases = banned;  // every token banned (a sampled row and a greedy one): token 0
  rows[M - 1].biases = banned;
  // Scores that overflow over the temperature, and NaN logits: both tie as the most likely.
  const std::vector<ops::TokenBias> huge = {{3, 3e38f, 0.0f}, {9, 3e38f, 0.0f}};
  rows[M - 3].biases = huge;
  auto logits = random_values<T>(M * V, rng, 3.0f);
  logits[std::size_t((M - 4) * V + 4)] = logits[std::size_t((M - 4) * V + 11)] = NAN;
  std::vector<std::int32_t> want(M), got(M, -1);
  ops::Sample<cpu>::run({logits.data(), M, V}, rows, want);
  const auto d_logits = to_device<T>(logits);
  ops::Sample<cuda>::run<T>({d_logits.data(), M, V}, rows, got);
  // Both backends draw the same uniform number from the same probabilities (the logits are the same
  // T values); they differ only in the order of a double-precision sum, so any disagreement is a
  // bug, not rounding, unless a draw falls within ~1e-15 of a boundary.
  BOOST_TEST(got == want, boost::test_tools::per_element());
  BOOST_TEST(want[std::size_t(M - 2)] == 0);
  BOOST_TEST(want[std::size_t(M - 1)] == 0);
  BOOST_TEST((want[std::size_t(M - 3)] == 3 || want[std::size_t(M - 3)] == 9));
  BOOST_TEST((want[std::size_t(M - 4)] == 4 || want[std::size_t(M - 4)] == 11));

  // A batch that only decodes greedily (no sort, no CUB temporary storage) over GPT-2's vocabulary,
  // one row with a penalty.
  const std::int64_t greedy_rows = 3, vocab = 50257;
  const auto greedy_logits = random_values<T>(greedy_rows * vocab, rng, 3.0f);
  std::vector<ops::SamplingRow> greedy(greedy_rows);
  greedy[1].repetition_penalty = 1.3f;
  greedy[1].history = history;
  greedy[2].biases = biases;
  std::vector<std::int32_t> greedy_want(greedy_rows), greedy_got(greedy_rows, -1);
  ops::Sample<cpu>::run({greedy_logits.data(), greedy_rows, vocab}, greedy, greedy_want);
  const auto d_greedy_logits = to_device<T>(greedy_logits);
  ops::Sample<cuda>::run<T>({d_greedy_logits.data(), greedy_rows, vocab}, greedy, greedy_got);
  BOOST_TEST(greedy_got == greedy_want, boost::test_tools::per_element());
}

// Log-probabilities of rows of logits: queries with no alternatives (the GPU kernel), and with the
// most likely tokens (the rows copied to the host), mixed and repeating rows, against the CPU op on
// the same T values. Both sum the exponentials in double, in another order: 1e-5 of a logprob.
template <class T>
void check_logprobs(std::mt19937& rng) {
  for (const auto& [M, V] : {std::pair<std::int64_t, std::int64_t>{7, 50257}, {33, 320}, {3, 5}}) {
    const auto logits = random_values<T>(M * V, rng, 3.0f);
    std::vector<ops::LogprobQuery> queries;
    for (std::int64_t i = 0; i < 2 * M; ++i)
      queries.push_back({std::int64_t(rng() % M), std::int32_t(rng() % V),
                         i % 3 == 0 ? std::int32_t(1 + rng() % std::min<std::int64_t>(V, 6)) : 0});
    queries.push_back({M - 1, std::int32_t(V - 1), std::int32_t(V)});  // the whole distribution
    const TokenLogprobs unwritten{-1, std::numeric_limits<float>::quiet_NaN(), {}};
    std::vector<TokenLogprobs> want(queries.size()), got(queries.size(), unwritten);
    ops::Logprobs<cpu>::run({logits.data(), M, V}, queries, want);
    const auto d_logits = to_device<T>(logits);
    ops::Logprobs<cuda>::run<T>({d_logits.data(), M, V}, queries, got);
    for (std::size_t q = 0; q < queries.size(); ++q) {
      BOOST_TEST_CONTEXT("rows " << M << ", vocabulary " << V << ", query " << q << " (row "
                                 << queries[q].row << ", top " << queries[q].top << ")") {
        BOOST_TEST(got[q].token == want[q].token);
        BOOST_TEST(std::abs(got[q].logprob - want[q].logprob) <= 1e-5f,
                   got[q].logprob << " against " << want[q].logprob);
        BOOST_TEST_REQUIRE(got[q].top.size() == want[q].top.size());
        for (std::size_t k = 0; k < want[q].top.size(); ++k) {
          BOOST_TEST(got[q].top[k].token == want[q].top[k].token);
          BOOST_TEST(got[q].top[k].logprob == want[q].top[k].logprob);
        }
      }
    }
  }
}

template <class T>
void check_out_of_memory_message() {
  try {
    cuda::buffer<T> huge(std::size_t(1) << 50);
    BOOST_FAIL("allocated a petabyte");
  } catch (const CudaError& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find("out of GPU memory") != std::string::npos, m);
    BOOST_TEST(
        m.find(std::to_string((std::size_t(1) << 50) * sizeof(T)) + " bytes") != std::string::npos,
        m);
    BOOST_TEST(m.find("free") != std::string::npos, m);
  }
  cuda::buffer<T> small(16);  // the failure was not sticky
  BOOST_TEST(small.size() == 16u);
}

}  // namespace ctformer::test

using RequireGpu = ctformer::test::RequireGpu;

// The test cases of one precision. A GPU test program adds the fixture that skips it without a
// GPU (CTFORMER_KERNEL_TESTS); emulated_backend_test.cpp runs them on the CPU.
#define CTFORMER_KERNEL_TEST_CASES(T)                              \
  BOOST_AUTO_TEST_CASE(embedding) {                                \
    std::mt19937 rng(1);                                           \
    ctformer::test::check_embedding<T>(rng);                       \
  }                                                                \
  BOOST_AUTO_TEST_CASE(layer_norm) {                               \
    std::mt19937 rng(2);                                           \
    ctformer::test::check_layer_norm<T>(rng);                      \
  }                                                                \
  BOOST_AUTO_TEST_CASE(rms_norm) {                                 \
    std::mt19937 rng(7);                                           \
    ctformer::test::check_rms_norm<T>(rng);                        \
  }                                                                \
  BOOST_AUTO_TEST_CASE(linear_with_each_epilogue_and_layout) {     \
    std::mt19937 rng(3);                                           \
    ctformer::test::check_linear<T>(rng);                          \
  }                                                                \
  BOOST_AUTO_TEST_CASE(norm_then_linear) {                         \
    std::mt19937 rng(8);                                           \
    ctformer::test::check_normed_linear<T>(rng);                   \
  }                                                                \
  BOOST_AUTO_TEST_CASE(paged_attention_for_every_head_size) {      \
    std::mt19937 rng(4);                                           \
    ctformer::test::check_attention<T>(rng);                       \
  }                                                                \
  BOOST_AUTO_TEST_CASE(gather_rows_and_argmax) {                   \
    std::mt19937 rng(5);                                           \
    ctformer::test::check_rows_and_argmax<T>(rng);                 \
  }                                                                \
  BOOST_AUTO_TEST_CASE(sampling_matches_the_cpu) {                 \
    std::mt19937 rng(6);                                           \
    ctformer::test::check_sampling<T>(rng);                        \
  }                                                                \
  BOOST_AUTO_TEST_CASE(logprobs_match_the_cpu) {                   \
    std::mt19937 rng(9);                                           \
    ctformer::test::check_logprobs<T>(rng);                        \
  }                                                                \
  BOOST_AUTO_TEST_CASE(out_of_memory_names_bytes_asked_and_free) { \
    ctformer::test::check_out_of_memory_message<T>();              \
  }

#define CTFORMER_KERNEL_TESTS(T)         \
  BOOST_TEST_GLOBAL_FIXTURE(RequireGpu); \
  CTFORMER_KERNEL_TEST_CASES(T)
