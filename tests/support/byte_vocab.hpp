// vocab.json of the smallest GPT-2 tokenizer: the 256 bytes, spelled in GPT-2's byte-level
// alphabet, as ids 0-255. Test models add <|endoftext|> (and any merges) after them.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "ctformer/tokenizer/gpt2_tokenizer.hpp"
#include "ctformer/tokenizer/utf8.hpp"

namespace ctformer::test {

inline nlohmann::json byte_level_vocab() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) {
    std::string spelled;
    tokenizer::detail::append_utf8(spelled, tokenizer::detail::kByteLevel.byte_to_cp[b]);
    vocab[spelled] = b;
  }
  return vocab;
}

}  // namespace ctformer::test
