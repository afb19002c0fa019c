// GPT-2's pre-tokenizer, without a regex engine. It splits text exactly as the pattern
//
//   '(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// does under leftmost-first alternation (Python `regex`, Rust `fancy-regex`, Oniguruma), with
// \p{L}, \p{N} and \s as in unicode_tables.hpp. At each position the alternatives are tried in
// order:
//   1. an apostrophe followed by s, d, m, t, ll, ve or re (lower case only: "'S" is no
//   contraction); 2-4. an optional U+0020 followed by a maximal run of letters, of numbers, or of
//   "other"
//        characters (neither white space, letter nor number; apostrophes included);
//   5. a run of white space that is not followed by a non-space: the whole run at the end of the
//      text, else the run without its last character, which then prefixes the next piece;
//   6. otherwise (a single white-space character before a non-space) that one character.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ctformer/tokenizer/unicode_tables.hpp"
#include "ctformer/tokenizer/utf8.hpp"

namespace ctformer::tokenizer::detail {

inline constexpr std::array<CharClass, 128> kAsciiClass = [] {
  std::array<CharClass, 128> t{};
  for (std::uint32_t c = 0; c < 128; ++c) t[c] = char_class(c);
  return t;
}();

// Class and byte length of the scalar at p (valid UTF-8).
inline CharClass class_at(const unsigned char* p, std::size_t& len) noexcept {
  if (*p < 0x80) {
    len = 1;
    return kAsciiClass[*p];
  }
  return char_class(decode_valid_utf8(p, len));
}

// Calls on_piece(std::string_view) for each pre-token of `text`, in order; the pieces concatenate
// to `text`. Precondition: `text` is valid UTF-8 (see find_invalid_utf8).
template <class OnPiece>
inline void pretokenize(std::string_view text, OnPiece&& on_piece) {
  const auto* base = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c0 = base[i];
    // 1. Contractions.
    if (c0 == '\'' && i + 1 < n) {
      const unsigned char c1 = base[i + 1];
      if (c1 == 's' || c1 == 'd' || c1 == 'm' || c1 == 't') {
        on_piece(text.substr(i, 2));
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const unsigned char c2 = base[i + 2];
        if ((c1 == 'l' && c2 == 'l') || (c1 == 'v' && c2 == 'e') || (c1 == 'r' && c2 == 'e')) {
          on_piece(text.substr(i, 3));
          i += 3;
          continue;
        }
      }
    }
    std::size_t len0;
    const CharClass k0 = class_at(base + i, len0);
    std::size_t start = i;
    std::size_t j;  // end of the run
    CharClass run_class;
    if (k0 != CharClass::space) {
      run_class = k0;
      j = i + len0;
    } else if (c0 == ' ' && i + 1 < n) {
      // 2-4 with the optional leading space.
      std::size_t len1;
      const CharClass k1 = class_at(base + i + 1, len1);
      if (k1 != CharClass::space) {
        run_class = k1;
        j = i + 1 + len1;
      } else {
        run_class = CharClass::space;
        j = i;
      }
    } else {
      run_class = CharClass::space;
      j = i;
    }
    if (run_class != CharClass::space) {
      // Maximal run of the same class. ASCII letters and digits get a tight loop.
      if (run_class == CharClass::letter) {
        while (j < n) {
          const unsigned char b = base[j];
          if (b < 0x80) {
            if (kAsciiClass[b] != CharClass::letter) break;
            ++j;
            continue;
          }
          std::size_t len;
          if (class_at(base + j, len) != CharClass::letter) break;
          j += len;
        }
      } else {
        while (j < n) {
          std::size_t len;
          if (class_at(base + j, len) != run_class) break;
          j += len;
        }
      }
      on_piece(text.substr(start, j - start));
      i = j;
      continue;
    }
    // 5-6. White space: find the run [i, j) and the start of its last character.
    std::size_t last = i;
    while (j < n) {
      std::size_t len;
      if (class_at(base + j, len) != CharClass::space) break;
      last = j;
      j += len;
    }
    if (j == n || last == i) {
      on_piece(text.substr(i, j - i));  // at the end of the text, or a single character
      i = j;
    } else {
      on_piece(text.substr(i, last - i));  // leave the last one to prefix the next piece
      i = last;
    }
  }
}

}  // namespace ctformer::tokenizer::detail
