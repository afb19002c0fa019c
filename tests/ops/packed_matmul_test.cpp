// The CPU's packed projection kernel (ops/packed_matmul.hpp) against Eigen's product on the same
// weights (ops::Linear<cpu>'s reference path): every epilogue, both checkpoint layouts, float, half
// and bfloat16 storage, every kernel, over shapes that are not multiples of the 12 x 32 tile (and
// odd input counts, which leave half a bf16 pair).
#define BOOST_TEST_MODULE packed_matmul
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ctformer/core/random.hpp"
#include "ctformer/ops/linear.hpp"

using namespace ctformer;
using ops::Epilogue;
using ops::packed::Kernel;

namespace {

struct Shape {
  std::int64_t M, K, N;
};

template <class T>
std::vector<T> random_values(std::uint64_t seed, std::int64_t n) {
  std::vector<T> out(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = T(2.0f * uniform_float(seed, i) - 1.0f);
  return out;
}

template <class T>
void check(const Shape& s, WeightLayout layout, Epilogue epilogue, Kernel kernel) {
  const std::vector<float> x = random_values<float>(1, s.M * s.K);
  const std::vector<T> w = random_values<T>(2, s.K * s.N);
  const std::vector<T> bias = random_values<T>(3, s.N);
  const std::vector<float> residual = random_values<float>(4, s.M * s.N);
  const std::int64_t rows = layout == WeightLayout::in_out ? s.K : s.N;
  const std::int64_t cols = layout == WeightLayout::in_out ? s.N : s.K;
  const std::span<const T> b = epilogue == Epilogue::none ? std::span<const T>{} : bias;

  // Poisoned, so that an element the kernel does not write fails (except where it adds to it).
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> want(std::size_t(s.M * s.N), nan), got = want;
  if (epilogue == Epilogue::bias_residual) want = got = residual;

  // A bf16 projection's contract: x rounded to bf16 (the pairs VDPBF16PS takes), on every kernel.
  std::vector<float> x_as_taken = x;
  if constexpr (std::is_same_v<T, bfloat16>)
    for (float& v : x_as_taken) v = static_cast<float>(bfloat16(v));
  ops::Linear<cpu>::run<T>({x_as_taken.data(), s.M, s.K}, {w.data(), rows, cols}, layout, b,
                           epilogue, {want.data(), s.M, s.N});
  const auto packed = ops::Linear<cpu>::prepare<T>(w, rows, cols, layout);
  ops::packed::matmul<T>({x.data(), s.M, s.K}, packed, b, epilogue, {got.data(), s.M, s.N}, kernel);

  // Both sum K float products in different orders. With |x|, |w| <= 1 the partial sums are about
  // sqrt(K)/3 and K roundings of that size add up like a random walk: about K/3 ulps of 1 in all.
  // K ulps of 1 (9e-5 at K = 768) leaves room for both orders without hiding a wrong term (>=
  // 1e-3).
  const float tolerance = float(s.K) * std::numeric_limits<float>::epsilon();
  float worst = 0.0f;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const float err = std::abs(got[i] - want[i]) / (1.0f + std::abs(want[i]));
    if (!(err <= tolerance)) {  // catches NaN
      BOOST_ERROR(ops::packed::kernel_name(kernel)
                  << " kernel, M " << s.M << " K " << s.K << " N " << s.N << " element " << i
                  << ": packed " << got[i] << ", Eigen " << want[i]);
      return;
    }
    worst = std::max(worst, err);
  }
  BOOST_TEST(worst <= tolerance);
  BOOST_TEST_MESSAGE(ops::packed::kernel_name(kernel)
                     << ", M " << s.M << " K " << s.K << " N " << s.N << ": worst " << worst
                     << " (bound " << tolerance << ")");
}

template <class T>
void check_all(Kernel kernel) {
  for (const Shape& s :
       {Shape{1, 1, 1}, Shape{1, 7, 33}, Shape{5, 64, 31}, Shape{12, 96, 64}, Shape{13, 33, 65},
        Shape{25, 768, 100}, Shape{33, 130, 97}, Shape{64, 300, 257}})
    for (const WeightLayout layout : {WeightLayout::in_out, WeightLayout::out_in})
      for (const Epilogue e :
           {Epilogue::bias, Epilogue::bias_gelu, Epilogue::bias_residual, Epilogue::none})
        check<T>(s, layout, e, kernel);
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_kernel_this_cpu_runs_matches_eigen) {
  // avx512_bf16 is the kernel CPUs with AVX512_BF16 run; avx512 is what CPUs with AVX-512F alone
  // run (bf16 by FMAs), avx2 what CPUs without AVX-512 run; neon_bf16 and neon the same on AArch64
  // with and without the BF16 extension. Every kernel this CPU can run is checked.
  BOOST_TEST_MESSAGE("best kernel here: " << ops::packed::best_kernel_name());
  for (const Kernel kernel : ops::packed::kKernels) {
    if (!ops::packed::cpu_runs(kernel)) {
      BOOST_TEST_MESSAGE("kernel " << ops::packed::kernel_name(kernel)
                                   << ": not checked, this CPU lacks its instructions");
      continue;
    }
    check_all<float>(kernel);
    check_all<half>(kernel);
    check_all<bfloat16>(kernel);
  }
}

template <class T>
void check_reads_back() {
  // The embedding reads tokens out of the packed LM head: W(k, n) must be the stored value. An odd
  // C leaves half of bf16's last pair as padding.
  const std::int64_t V = 70, C = 9;
  const std::vector<T> wte = random_values<T>(5, V * C);
  const auto packed = ops::Linear<cpu>::prepare<T>(wte, V, C, WeightLayout::out_in);
  BOOST_TEST(packed.in() == C);
  BOOST_TEST(packed.out() == V);
  for (std::int64_t t = 0; t < V; ++t)
    for (std::int64_t c = 0; c < C; ++c)
      BOOST_TEST(float(packed(c, t)) == float(wte[std::size_t(t * C + c)]));
}

BOOST_AUTO_TEST_CASE(packed_table_reads_back_every_element) {
  check_reads_back<float>();
  check_reads_back<half>();
  check_reads_back<bfloat16>();
}

BOOST_AUTO_TEST_CASE(shapes_that_do_not_agree_are_refused_by_name) {
  // A (K, M) = (8, 4) weight: x must have 8 columns, out 4, the bias 4 entries, x and out the same
  // rows. Each mismatch is an InputError that gives the shapes, before any element is touched.
  const auto w = random_values<float>(7, 8 * 4);
  const auto packed = ops::Linear<cpu>::prepare(w, 8, 4, WeightLayout::in_out);
  const std::vector<float> x(3 * 9, 1.0f), bias(4, 0.0f), short_bias(3, 0.0f);
  std::vector<float> out(3 * 4, 7.0f);
  auto refused = [](std::string part) {
    return [part](const InputError& e) {
      BOOST_TEST_MESSAGE(e.what());
      return std::string(e.what()).find(part) != std::string::npos;
    };
  };
  BOOST_CHECK_EXCEPTION(ops::Linear<cpu>::run<float>({x.data(), 3, 9}, packed, bias, Epilogue::bias,
                                                     {out.data(), 3, 4}),
                        InputError, refused("x (3 x 9) by a weight of 8 inputs and 4 outputs"));
  BOOST_CHECK_EXCEPTION(ops::Linear<cpu>::run<float>({x.data(), 3, 8}, packed, short_bias,
                                                     Epilogue::bias, {out.data(), 3, 4}),
                        InputError, refused("with a bias of 3"));
  BOOST_CHECK_EXCEPTION(
      ops::Linear<cpu>::run<float>({x.data(), 3, 8}, {w.data(), 8, 4}, WeightLayout::out_in, bias,
                                   Epilogue::bias, {out.data(), 3, 4}),
      InputError, refused("a weight of 4 inputs and 8 outputs"));
  BOOST_CHECK_EXCEPTION(ops::Linear<cpu>::run<float>({x.data(), 3, 8}, packed, bias, Epilogue::bias,
                                                     {out.data(), 2, 4}),
                        InputError, refused("into out (2 x 4)"));
  BOOST_TEST(out == std::vector<float>(3 * 4, 7.0f), boost::test_tools::per_element());
  // No bias is needed without a bias epilogue.
  ops::Linear<cpu>::run<float>({x.data(), 3, 8}, packed, {}, Epilogue::none, {out.data(), 3, 4});
}
