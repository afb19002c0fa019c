// UTF-8 validation, decoding and lossy repair (U+FFFD for each maximal invalid subpart, the
// practice the Unicode Standard recommends and Python's "replace" error handler follows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ctformer {

namespace tokenizer::detail {

// One step of UTF-8 decoding at s[i] (i < s.size()).
//   valid:     cp is the scalar value and len its byte length (1-4).
//   invalid:   len (>= 1) is the maximal subpart: the longest prefix of a well-formed sequence that
//              starts at i; `truncated` is true when it stopped only because the input ended.
struct Utf8Step {
  std::uint32_t cp = 0;
  std::uint8_t len = 0;
  bool valid = false;
  bool truncated = false;
};

inline Utf8Step utf8_step(std::string_view s, std::size_t i) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  const unsigned b0 = p[i];
  if (b0 < 0x80) return {b0, 1, true, false};
  std::size_t need;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte (Unicode Table 3-7)
  std::uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {0, 1, false, false};  // 80..C1, F5..FF never start a sequence
  }
  for (std::size_t k = 1; k <= need; ++k) {
    if (i + k >= n) return {0, static_cast<std::uint8_t>(k), false, true};
    const unsigned b = p[i + k];
    if (b < lo || b > hi) return {0, static_cast<std::uint8_t>(k), false, false};
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, static_cast<std::uint8_t>(need + 1), true, false};
}

// Decodes the scalar at s[i] of text already known to be valid UTF-8; sets len.
inline std::uint32_t decode_valid_utf8(const unsigned char* p, std::size_t& len) noexcept {
  const unsigned b0 = p[0];
  if (b0 < 0x80) {
    len = 1;
    return b0;
  }
  if (b0 < 0xE0) {
    len = 2;
    return ((b0 & 0x1Fu) << 6) | (p[1] & 0x3Fu);
  }
  if (b0 < 0xF0) {
    len = 3;
    return ((b0 & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  }
  len = 4;
  return ((b0 & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
}

inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace tokenizer::detail

// Byte offset of the first byte of the first ill-formed sequence in `s`, or std::string_view::npos
// when `s` is valid UTF-8 (surrogates, overlong forms and values above U+10FFFF are ill-formed).
inline std::size_t find_invalid_utf8(std::string_view s) noexcept {
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    // ASCII fast path: 8 bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const tokenizer::detail::Utf8Step step = tokenizer::detail::utf8_step(s, i);
    if (!step.valid) return i;
    i += step.len;
  }
  return std::string_view::npos;
}

inline bool is_valid_utf8(std::string_view s) noexcept {
  return find_invalid_utf8(s) == std::string_view::npos;
}

// `s` with each maximal ill-formed subpart replaced by U+FFFD (the same result as Python's
// bytes.decode("utf-8", "replace")). Valid input comes back unchanged.
inline std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  std::size_t i = 0;
  while (i < s.size()) {
    const tokenizer::detail::Utf8Step step = tokenizer::detail::utf8_step(s, i);
    if (step.valid)
      out.append(s.substr(i, step.len));
    else
      out.append(tokenizer::detail::kReplacementCharacter);
    i += step.len;
  }
  return out;
}

}  // namespace ctformer
