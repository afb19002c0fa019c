// The variant of examples/custom_variant.cpp (RMSNorm, parallel blocks, GPT-2's other layers)
// against a plain-loop reimplementation of its forward pass written here, in double, that uses no
// ctformer op: only SafetensorsFile to read the same weights.
#define BOOST_TEST_MODULE custom_variant
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include "ctformer/ctformer.hpp"
#include "ctformer/layers/parallel_block.hpp"
#include "ctformer/layers/rms_norm.hpp"
#include "support/reference.hpp"

using namespace ctformer;

namespace {

// The same composition as examples/custom_variant.cpp.
template <Backend B, class T>
using ParallelRmsBlock = ParallelBlock<RmsNorm<B, T>, CausalSelfAttention<B, T>, Mlp<B, T>>;
template <Backend B, class T>
using ParallelRmsModel = DecoderModel<B, T, ParallelRmsBlock<B, T>, RmsNorm<B, T>>;

// The new layers meet the concepts the block and model templates check, for every weight type.
static_assert(NormLayer<RmsNorm<cpu, float>> && NormLayer<RmsNorm<cpu, half>> &&
              NormLayer<RmsNorm<cpu, bfloat16>>);
static_assert(DecoderBlock<ParallelRmsBlock<cpu, float>> && DecoderBlock<Gpt2Block<cpu, float>>);
static_assert(DecoderBlock<
              ParallelBlock<LayerNorm<cpu, half>, CausalSelfAttention<cpu, half>, Mlp<cpu, half>>>);
// ...and the concepts still tell the slots apart.
static_assert(!TokenMixer<Mlp<cpu, float>> && !NormLayer<Mlp<cpu, float>>);
static_assert(!DecoderBlock<RmsNorm<cpu, float>>);
// GPT-2 is the model template with its defaults.
static_assert(std::same_as<GPT2<cpu, float>, DecoderModel<cpu, float>>);
static_assert(!std::same_as<GPT2<cpu, float>, ParallelRmsModel<cpu, float>>);

using Matrix = std::vector<std::vector<double>>;  // (rows, cols)

// The forward pass written out with loops, every position's logits. `rms` and `parallel` pick the
// variant's parts; with both false it is GPT-2, which checks this reimplementation itself against
// GPT2<cpu, float> (tested against transformers in tests/models).
struct PlainModel {
  SafetensorsFile file;
  Gpt2Config c;
  bool rms, parallel;

  std::vector<double> tensor(const std::string& name, std::vector<std::int64_t> shape) const {
    const std::string prefix = file.find("wte.weight") ? "" : "transformer.";  // both HF layouts
    const auto f = file.load_float(prefix + name, shape);
    return {f.begin(), f.end()};
  }
  // x (N, K) @ w (K, M) + b
  static Matrix linear(const Matrix& x, const std::vector<double>& w,
                       const std::vector<double>& b) {
    const std::size_t K = x[0].size(), M = b.size();
    Matrix y(x.size(), b);
    for (std::size_t i = 0; i < x.size(); ++i)
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t m = 0; m < M; ++m) y[i][m] += x[i][k] * w[k * M + m];
    return y;
  }
  Matrix norm(const Matrix& x, const std::string& name) const {
    const auto g = tensor(name + ".weight", {c.n_embd});
    const auto b = rms ? std::vector<double>(g.size(), 0.0) : tensor(name + ".bias", {c.n_embd});
    Matrix y = x;
    for (auto& row : y) {
      double mean = 0, sq = 0;
      if (!rms) {
        for (double v : row) mean += v;
        mean /= double(row.size());
      }
      for (double v : row) sq += (v - mean) * (v - mean);
      const double r = 1.0 / std::sqrt(sq / double(row.size()) + c.layer_norm_epsilon);
      for (std::size_t j = 0; j < row.size(); ++j) row[j] = (row[j] - mean) * r * g[j] + b[j];
    }
    return y;
  }
  Matrix attention(const Matrix& h, const std::string& p) const {
    const std::int64_t C = c.n_embd, D = c.head_dim();
    const Matrix qkv =
        linear(h, tensor(p + ".c_attn.weight", {C, 3 * C}), tensor(p + ".c_attn.bias", {3 * C}));
    Matrix out(h.size(), std::vector<double>(std::size_t(C), 0.0));
    for (std::int64_t hd = 0; hd < c.n_head; ++hd)
      for (std::size_t i = 0; i < h.size(); ++i) {
        std::vector<double> w(i + 1);
        double max = -INFINITY, sum = 0;
        for (std::size_t j = 0; j <= i; ++j) {  // causal: keys up to and including i
          double s = 0;
          for (std::int64_t d = 0; d < D; ++d) s += qkv[i][hd * D + d] * qkv[j][C + hd * D + d];
          w[j] = s / std::sqrt(double(D));
          max = std::max(max, w[j]);
        }
        for (double& v : w) sum += (v = std::exp(v - max));
        for (std::size_t j = 0; j <= i; ++j)
          for (std::int64_t d = 0; d < D; ++d)
            out[i][hd * D + d] += w[j] / sum * qkv[j][2 * C + hd * D + d];
      }
    return linear(out, tensor(p + ".c_proj.weight", {C, C}), tensor(p + ".c_proj.bias", {C}));
  }
  Matrix mlp(const Matrix& h, const std::string& p) const {
    const std::int64_t C = c.n_embd, H = c.n_inner;
    Matrix a = linear(h, tensor(p + ".c_fc.weight", {C, H}), tensor(p + ".c_fc.bias", {H}));
    for (auto& row : a)
      for (double& v : row)
        v = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    return linear(a, tensor(p + ".c_proj.weight", {H, C}), tensor(p + ".c_proj.bias", {C}));
  }
  static void add(Matrix& x, const Matrix& y) {
    for (std::size_t i = 0; i < x.size(); ++i)
      for (std::size_t j = 0; j < x[i].size(); ++j) x[i][j] += y[i][j];
  }

  std::vector<float> logits(const std::vector<std::int32_t>& tokens) const {
    const std::int64_t C = c.n_embd, V = c.vocab_size;
    const auto wte = tensor("wte.weight", {V, C}), wpe = tensor("wpe.weight", {c.n_positions, C});
    Matrix x(tokens.size(), std::vector<double>(std::size_t(C)));
    for (std::size_t i = 0; i < tokens.size(); ++i)
      for (std::int64_t j = 0; j < C; ++j) x[i][j] = wte[tokens[i] * C + j] + wpe[i * C + j];
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
      const std::string p = "h." + std::to_string(l);
      if (parallel) {  // x + attn(norm(x)) + mlp(norm(x)), one norm: ln_1
        const Matrix h = norm(x, p + ".ln_1");
        add(x, attention(h, p + ".attn"));
        add(x, mlp(h, p + ".mlp"));
      } else {
        add(x, attention(norm(x, p + ".ln_1"), p + ".attn"));
        add(x, mlp(norm(x, p + ".ln_2"), p + ".mlp"));
      }
    }
    x = norm(x, "ln_f");
    std::vector<float> out;
    for (const auto& row : x)
      for (std::int64_t v = 0; v < V; ++v) {
        double s = 0;
        for (std::int64_t j = 0; j < C; ++j) s += row[j] * wte[v * C + j];
        out.push_back(float(s));
      }
    return out;
  }
};

PlainModel plain(const std::string& name, bool variant) {
  const auto dir = test::data_dir() / "models" / name;
  return {SafetensorsFile(dir / "model.safetensors"), Gpt2Config::from_file(dir / "config.json"),
          variant, variant};
}

// Every position's logits of `tokens`, as one step on a fresh cache.
template <class Model>
std::vector<float> all_logits(Model& model, const std::vector<std::int32_t>& tokens) {
  auto cache = model.make_cache(std::int64_t(tokens.size()));
  const SequenceStep step{cache.add_sequence(), tokens, LogitsFor::every_token};
  const auto logits = model.forward({&step, 1}, cache);
  return {logits.data, logits.data + logits.size()};
}

std::vector<std::int32_t> some_tokens(std::size_t n, std::int64_t vocab, int seed) {
  std::vector<std::int32_t> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = std::int32_t((i * 37 + seed * 101 + 11) % vocab);
  return t;
}

// fp32 with Eigen against a double reimplementation, relative to the logits' scale
// (test::relative_error). Each logit passes through 2 n_layer + 1 float matrix products of a few
// hundred terms, softmaxes and norms; float rounding (2^-24 ~ 6e-8 per operation), growing with
// the square root of the terms summed, stays below 1e-6 (measured on these models: at most 7e-7).
// 1e-5 leaves room for other compilers and Eigen kernels and still catches any structural error:
// a missing branch, the wrong norm or input to a branch, or one wrong weight moves the logits by
// a relative 1e-2 or more (GPT-2's logits are ~1 away from the variant's; checked below).
constexpr double kTolerance = 1e-5;

}  // namespace

BOOST_AUTO_TEST_CASE(plain_reimplementation_matches_gpt2) {
  // The reimplementation with LayerNorm and sequential blocks is GPT-2: if it matches
  // GPT2<cpu, float>, its attention, MLP, embedding and head are right, and the variant test
  // below tests only what differs.
  for (const std::string& name : test::kReferenceModels) {
    auto model = GPT2<cpu, float>::from_directory(test::data_dir() / "models" / name);
    const auto tokens = some_tokens(23, model.config().vocab_size, 1);
    const double err =
        test::relative_error(all_logits(model, tokens).data(), plain(name, false).logits(tokens));
    BOOST_TEST_MESSAGE(name << ": GPT-2 relative error " << err);
    BOOST_TEST(err <= kTolerance, name << ": relative error " << err);
  }
}

BOOST_AUTO_TEST_CASE(variant_matches_plain_reimplementation) {
  for (const std::string& name : test::kReferenceModels) {
    auto variant = ParallelRmsModel<cpu, float>::from_directory(test::data_dir() / "models" / name);
    auto gpt2 = GPT2<cpu, float>::from_directory(test::data_dir() / "models" / name);
    const PlainModel ref = plain(name, true);
    for (const std::size_t n : {1, 9, 40}) {
      const auto tokens = some_tokens(n, variant.config().vocab_size, int(n));
      const auto want = ref.logits(tokens);
      const double err = test::relative_error(all_logits(variant, tokens).data(), want);
      BOOST_TEST_MESSAGE(name << ", " << n << " tokens: variant relative error " << err);
      BOOST_TEST(err <= kTolerance, name << ", " << n << " tokens: relative error " << err);
      // Not GPT-2 by accident: same weights, different structure, different logits.
      const double from_gpt2 = test::relative_error(all_logits(gpt2, tokens).data(), want);
      BOOST_TEST(from_gpt2 > 1e-2, name << ": the variant gives GPT-2's logits");
    }
  }
}

BOOST_AUTO_TEST_CASE(variant_decode_with_kv_cache_equals_full_recomputation) {
  for (const std::string& name : test::kReferenceModels) {
    auto model = ParallelRmsModel<cpu, float>::from_directory(test::data_dir() / "models" / name);
    const std::int64_t V = model.config().vocab_size;
    const auto tokens = some_tokens(30, V, 5);
    const auto full = all_logits(model, tokens);  // (30, V), one step

    // Prefill 7 tokens, then decode the rest one at a time, in a cache of small blocks so that the
    // sequence is spread over many of them.
    auto cache = model.make_cache(64, 4);
    const auto seq = cache.add_sequence();
    const std::size_t prefill = 7;
    for (std::size_t end = prefill; end <= tokens.size(); ++end) {
      const std::size_t begin = end == prefill ? 0 : end - 1;
      const SequenceStep step{seq, std::span(tokens).subspan(begin, end - begin)};
      const auto logits = model.forward({&step, 1}, cache);  // the last token's
      const std::vector<float> want(full.begin() + std::ptrdiff_t((end - 1) * V),
                                    full.begin() + std::ptrdiff_t(end * V));
      const double err = test::relative_error(logits.data, want);
      BOOST_TEST(err <= kTolerance, name << ", position " << end - 1 << ": relative error " << err);
    }
  }
}
