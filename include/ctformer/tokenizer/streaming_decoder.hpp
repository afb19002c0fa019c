// Streaming detokenization: turns token ids into text one at a time without ever emitting part of
// a UTF-8 character (a GPT-2 token can end in the middle of one, e.g. each half of an emoji).
//
//   ctformer::Utf8StreamDecoder stream(tokenizer);
//   for (int32_t id : generated) std::cout << stream.push(id) << std::flush;
//   std::cout << stream.finish();
//
// For ids whose bytes form valid UTF-8, the concatenation of every push() and finish() result is
// exactly tokenizer.decode(ids). Bytes that can never become valid UTF-8 are replaced by U+FFFD
// (one per maximal ill-formed subpart, as to_valid_utf8 does), so the output is always valid UTF-8.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ctformer/tokenizer/gpt2_tokenizer.hpp"
#include "ctformer/tokenizer/utf8.hpp"

namespace ctformer {

class Utf8StreamDecoder {
 public:
  explicit Utf8StreamDecoder(const Gpt2Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  // The text completed by token `id` (possibly empty). Throws InputError for an id out of range,
  // leaving the decoder unchanged.
  std::string push(std::int32_t id) { return push_bytes(tokenizer_->token_bytes(id)); }

  std::string push(std::span<const std::int32_t> ids) {
    std::string out;
    for (const std::int32_t id : ids) out += push(id);
    return out;
  }

  // The same for raw bytes.
  std::string push_bytes(std::string_view bytes) {
    if (pending_.empty() && is_ascii(bytes)) return std::string(bytes);
    pending_.append(bytes);
    std::string out;
    out.reserve(pending_.size());
    const std::string_view buf = pending_;
    std::size_t i = 0;
    while (i < buf.size()) {
      const tokenizer::detail::Utf8Step step = tokenizer::detail::utf8_step(buf, i);
      if (step.valid) {
        out.append(buf.substr(i, step.len));
      } else if (step.truncated) {
        break;  // an incomplete character at the end: wait for more bytes
      } else {
        out.append(tokenizer::detail::kReplacementCharacter);
      }
      i += step.len;
    }
    pending_.erase(0, i);
    return out;
  }

  // Ends the stream: an incomplete character left at the end becomes U+FFFD. The decoder is then
  // ready for a new stream.
  std::string finish() {
    std::string out = pending_.empty() ? std::string() : to_valid_utf8(pending_);
    pending_.clear();
    return out;
  }

  void reset() noexcept { pending_.clear(); }

  // Bytes held back because they begin a character that is not complete yet (at most 3).
  std::size_t pending_bytes() const noexcept { return pending_.size(); }

 private:
  static bool is_ascii(std::string_view s) noexcept {
    for (const char c : s)
      if (static_cast<unsigned char>(c) >= 0x80) return false;
    return true;
  }

  const Gpt2Tokenizer* tokenizer_;
  std::string pending_;
};

}  // namespace ctformer
