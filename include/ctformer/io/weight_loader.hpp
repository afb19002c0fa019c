// Turns a GPT-2 safetensors file into backend weights of type T, by Hugging Face name.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "ctformer/core/error.hpp"
#include "ctformer/io/safetensors.hpp"

namespace ctformer {

template <class Backend, class T>
class WeightLoader {
 public:
  using buffer = typename Backend::template buffer<T>;

  // Accepts both layouts Hugging Face uses: GPT2LMHeadModel's "transformer.h.0.…" and the
  // unprefixed "h.0.…" of GPT2Model and of the hub's openai-community/gpt2 file.
  explicit WeightLoader(const SafetensorsFile& file) : file_(file) {
    if (file.find("transformer.wte.weight")) {
      prefix_ = "transformer.";
    } else if (!file.find("wte.weight")) {
      throw FormatError("safetensors file '" + file.path().string() +
                        "': neither 'wte.weight' nor 'transformer.wte.weight' is in it, so it does "
                        "not hold GPT-2 weights");
    }
  }

  // The tensor `name` (without the "transformer." prefix), which must have `shape`, as type T.
  buffer load(const std::string& name, std::initializer_list<std::int64_t> shape) const {
    const std::vector<float> values = file_.load_float(
        prefix_ + name, std::span<const std::int64_t>(shape.begin(), shape.size()));
    std::vector<T> converted(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) converted[i] = static_cast<T>(values[i]);
    return Backend::template upload<T>(converted);
  }

 private:
  const SafetensorsFile& file_;
  std::string prefix_;
};

}  // namespace ctformer
