// The Hugging Face transformers fixtures that tools/make_reference.py wrote into tests/data.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/core/matrix_view.hpp"
#include "ctformer/io/safetensors.hpp"
#include "support/test_support.hpp"

namespace ctformer::test {

inline const std::vector<std::string> kReferenceModels = {"gpt2-h16", "gpt2-h32", "gpt2-h64"};

struct GreedyCase {
  std::vector<std::int32_t> prompt, generated;
};

struct Reference {
  std::filesystem::path model_dir;
  std::vector<std::vector<std::int32_t>> sequences;
  std::vector<std::vector<float>> logits;  // per sequence: (length, vocab), every position
  std::vector<GreedyCase> greedy;
  std::int64_t max_new_tokens = 0;

  static Reference load(const std::string& name, std::int64_t vocab_size) {
    Reference r;
    r.model_dir = data_dir() / "models" / name;
    std::ifstream in(data_dir() / "reference" / (name + ".json"));
    const auto j = nlohmann::json::parse(in);
    r.sequences = j["sequences"].get<std::vector<std::vector<std::int32_t>>>();
    for (const auto& g : j["greedy"])
      r.greedy.push_back({g["prompt"].get<std::vector<std::int32_t>>(),
                          g["generated"].get<std::vector<std::int32_t>>()});
    r.max_new_tokens = j["max_new_tokens"].get<std::int64_t>();
    const SafetensorsFile logits(data_dir() / "reference" / (name + ".safetensors"));
    for (std::size_t i = 0; i < r.sequences.size(); ++i) {
      const std::int64_t shape[] = {std::int64_t(r.sequences[i].size()), vocab_size};
      r.logits.push_back(logits.load_float("logits." + std::to_string(i), shape));
    }
    return r;
  }
};

// max |got - want| / max |want| over `want.size()` elements: the error relative to the logits'
// scale (an element-wise ratio would be meaningless for logits near zero).
inline double relative_error(const float* got, const std::vector<float>& want) {
  double max_diff = 0, max_ref = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max(max_diff, double(std::abs(got[i] - want[i])));
    max_ref = std::max(max_ref, double(std::abs(want[i])));
  }
  return std::isnan(max_diff) ? INFINITY : max_diff / max_ref;
}

}  // namespace ctformer::test
