// A projection of normalised rows (ops::NormedRows), as every pre-norm branch and the LM head run
// it, on the CPU: LayerNorm and RMSNorm then the product, against the norm op and the product run
// one after the other; the shapes it refuses before writing anything; and `normalized()`, which
// hands a norm to the projection when the norm layer can describe itself and runs it otherwise.
#define BOOST_TEST_MODULE normed_linear
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ctformer/core/random.hpp"
#include "ctformer/layers/concepts.hpp"
#include "ctformer/ops/linear.hpp"

using namespace ctformer;
using ops::Epilogue;

namespace {

std::vector<float> random_values(std::uint64_t seed, std::int64_t n, float offset = 0.0f) {
  std::vector<float> out(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = offset + 2.0f * uniform_float(seed, i) - 1.0f;
  return out;
}

constexpr std::int64_t N = 3, K = 40, M = 24;

struct Operands {
  std::vector<float> x = random_values(1, N*K, 4.0f), gamma = random_values(2, K),
                     beta = random_values(3, K), w = random_values(4, K*M),
                     bias = random_values(5, M);
  ops::Linear<cpu>::Weight<float> weight = ops::Linear<cpu>::prepare(w, K, M, WeightLayout::in_out);
};

// A norm layer without row_norm(): normalized() must run it and hand over its output.
struct Doubling {
  using backend = cpu;
  using weight_type = float;
  void forward(MatrixView<const float> x, MatrixView<float> out) const {
    for (std::int64_t i = 0; i < x.size(); ++i) out.data[i] = 2.0f * x.data[i];
  }
};
static_assert(NormLayer<Doubling>);

}  // namespace

BOOST_AUTO_TEST_CASE(layer_norm_and_rms_norm_then_the_product) {
  const Operands o;
  for (const bool layer_norm : {true, false}) {
    std::vector<float> normed(N * K), want(N * M), got(N * M), scratch(N * K);
    if (layer_norm)
      ops::LayerNorm<cpu>::run<float>({o.x.data(), N, K}, o.gamma, o.beta, 1e-5f,
                                      {normed.data(), N, K});
    else
      ops::RmsNorm<cpu>::run<float>({o.x.data(), N, K}, o.gamma, 1e-5f, {normed.data(), N, K});
    ops::Linear<cpu>::run<float>({normed.data(), N, K}, o.weight, o.bias, Epilogue::bias_gelu,
                                 {want.data(), N, M});
    const ops::RowNorm<float> norm{
        o.gamma, layer_norm ? std::span<const float>(o.beta) : std::span<const float>(), 1e-5f};
    ops::Linear<cpu>::run<float>(
        ops::NormedRows<float, float>({o.x.data(), N, K}, norm, {scratch.data(), N, K}), o.weight,
        o.bias, Epilogue::bias_gelu, {got.data(), N, M});
    BOOST_TEST(got == want, boost::test_tools::per_element());
    BOOST_TEST(scratch == normed, boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(shapes_that_do_not_agree_are_refused_before_anything_is_written) {
  const Operands o;
  std::vector<float> scratch(N * K, 7.0f), out(N * M, 7.0f);
  const std::vector<float> short_gamma(K - 1, 1.0f);
  auto refused = [](std::string part) {
    return [part](const InputError& e) {
      BOOST_TEST_MESSAGE(e.what());
      return std::string(e.what()).find(part) != std::string::npos;
    };
  };
  auto run = [&](const ops::RowNorm<float>& norm, MatrixView<float> normed, std::int64_t out_cols) {
    ops::Linear<cpu>::run<float>(ops::NormedRows<float, float>({o.x.data(), N, K}, norm, normed),
                                 o.weight, o.bias, Epilogue::bias, {out.data(), N, out_cols});
  };
  BOOST_CHECK_EXCEPTION(run({short_gamma, o.beta, 1e-5f}, {scratch.data(), N, K}, M), InputError,
                        refused("a norm with gamma of 39 and beta of 40 over x (3 x 40)"));
  BOOST_CHECK_EXCEPTION(run({o.gamma, o.beta, 1e-5f}, {scratch.data(), N - 1, K}, M), InputError,
                        refused("into (2 x 40)"));
  // A product that does not fit is refused before the norm writes its rows.
  BOOST_CHECK_EXCEPTION(run({o.gamma, o.beta, 1e-5f}, {scratch.data(), N, K}, M - 1), InputError,
                        refused("into out (3 x 23)"));
  BOOST_TEST(scratch == std::vector<float>(N * K, 7.0f), boost::test_tools::per_element());
  BOOST_TEST(out == std::vector<float>(N * M, 7.0f), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(normalized_hands_over_a_described_norm_and_runs_any_other) {
  const Operands o;
  std::vector<float> scratch(N * K, 7.0f);
  const MatrixView<const float> x{o.x.data(), N, K};
  const auto in = normalized(Doubling{}, x, {scratch.data(), N, K});
  BOOST_TEST(in.norm.gamma.empty());  // nothing left to apply: the rows are the norm's output
  BOOST_TEST(in.x.data == scratch.data());
  BOOST_TEST(scratch[5] == 2.0f * o.x[5]);
}
