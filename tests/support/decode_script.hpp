// A fixed script of forward steps for comparing two ways of running decode steps (CUDA graphs or
// not; padded batches or not): a mixed prefill of three prompts, lockstep decode, one sequence
// released and a longer prompt prefilled (which moves the model's buffers), then decode again.
// Token ids are fixed, not sampled, so that two runs feed the same inputs whatever they compute.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ctformer/ctformer.hpp"

namespace ctformer::test {

// Every step's logits, copied to the host by `to_host` (MatrixView of logits -> vector<float>).
template <class Model, class ToHost>
std::vector<std::vector<float>> run_decode_script(Model& model, ToHost to_host) {
  const auto V = std::int32_t(model.config().vocab_size);
  auto token = [V](std::int64_t step, std::int64_t seq) {
    return std::int32_t((step * 7919 + seq * 31 + 5) % V);
  };
  auto prompt = [&](std::int64_t seq, std::int64_t n) {
    std::vector<std::int32_t> p(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = token(1000 + i, seq);
    return p;
  };
  auto cache = model.make_cache(4 * model.config().n_positions, 4);
  std::vector<std::int32_t> live;  // sequence ids
  std::vector<std::vector<float>> out;
  const std::vector<std::vector<std::int32_t>> prompts{prompt(0, 5), prompt(1, 9), prompt(2, 2)};
  std::vector<SequenceStep> steps;
  for (const auto& p : prompts) {
    live.push_back(cache.add_sequence());
    steps.push_back({live.back(), p});
  }
  out.push_back(to_host(model.forward(steps, cache)));
  std::vector<std::int32_t> next(live.size());
  auto decode = [&](std::int64_t from, std::int64_t count) {
    for (std::int64_t t = from; t < from + count; ++t) {
      steps.clear();
      for (std::size_t s = 0; s < live.size(); ++s) {
        next[s] = token(t, live[s]);
        steps.push_back({live[s], std::span<const std::int32_t>(next).subspan(s, 1)});
      }
      out.push_back(to_host(model.forward(steps, cache)));
    }
  };
  decode(0, 12);
  cache.release(live[1]);
  live.erase(live.begin() + 1);
  const auto longer = prompt(3, model.config().n_positions / 2);
  live.push_back(cache.add_sequence());
  const SequenceStep prefill{live.back(), longer};
  out.push_back(to_host(model.forward({&prefill, 1}, cache)));
  decode(12, 12);
  return out;
}

}  // namespace ctformer::test
