// GPT-2's byte-level BPE tokenizer, loaded from a model directory's vocab.json + merges.txt.
// Byte-exact with tiktoken's "gpt2" encoding and Hugging Face's GPT2TokenizerFast (see
// docs/tokenizer.md and tests/tokenizer).
//
//   auto tok = ctformer::Gpt2Tokenizer::from_directory("models/gpt2");
//   std::vector<std::int32_t> ids = tok.encode("My example 0");   // {3666, 1672, 657}
//   std::string text = tok.decode(ids);                            // bytes; may end mid-character
//
// encode() and decode() are const and keep no mutable state: one tokenizer may be shared by
// threads.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <queue>
#include <ranges>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/core/error.hpp"
#include "ctformer/core/json_excerpt.hpp"
#include "ctformer/tokenizer/pretokenizer.hpp"
#include "ctformer/tokenizer/utf8.hpp"

namespace ctformer {

// Whether special-token text (for GPT-2: "<|endoftext|>") in the input becomes the special token.
enum class SpecialTokens {
  allowed,  // "<|endoftext|>" -> 50256 (tiktoken allowed_special="all"; Hugging Face's default)
  as_text,  // encoded as ordinary text: "<", "|", "end", ... (tiktoken disallowed_special=())
};

// What encode() does with input that is not valid UTF-8.
enum class InvalidUtf8 {
  error,    // throw InputError naming the byte offset of the first ill-formed sequence
  replace,  // replace each maximal ill-formed subpart by U+FFFD, then encode
};

namespace tokenizer::detail {

// GPT-2's byte <-> printable-character map (bytes_to_unicode in OpenAI's encoder.py): vocab.json
// and merges.txt spell each byte as one code point.
struct ByteLevelAlphabet {
  std::array<std::uint32_t, 256> byte_to_cp{};
  std::array<std::int16_t, 512> cp_to_byte{};  // all code points used are below 0x144
  constexpr ByteLevelAlphabet() {
    for (auto& b : cp_to_byte) b = -1;
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      byte_to_cp[b] = printable ? b : next++;
      cp_to_byte[byte_to_cp[b]] = static_cast<std::int16_t>(b);
    }
  }
};
inline constexpr ByteLevelAlphabet kByteLevel{};

// Decodes a vocab.json / merges.txt spelling to raw bytes; nullopt when a character is not one of
// the 256 byte characters.
inline std::optional<std::string> byte_level_decode(std::string_view spelled) {
  std::string out;
  out.reserve(spelled.size());
  std::size_t i = 0;
  while (i < spelled.size()) {
    const Utf8Step step = utf8_step(spelled, i);
    if (!step.valid || step.cp >= kByteLevel.cp_to_byte.size() ||
        kByteLevel.cp_to_byte[step.cp] < 0)
      return std::nullopt;
    out.push_back(static_cast<char>(kByteLevel.cp_to_byte[step.cp]));
    i += step.len;
  }
  return out;
}

inline std::uint64_t hash_bytes(const char* p, std::size_t n) noexcept {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    for (std::size_t k = 0; k < n; ++k)
      w |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[k])) << (8 * k);
    h = (h ^ w) * 0x94D049BB133111EBull;
  }
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  return h;
}

inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  return x;
}

inline std::size_t table_capacity_for(std::size_t count) {
  std::size_t cap = 16;
  while (cap < count * 2 + 1) cap <<= 1;
  return cap;
}

// Open-addressing map from a token's bytes to its id; the bytes live in the tokenizer's arena.
class BytesToId {
 public:
  struct Slot {
    std::uint32_t tag = 0;
    std::int32_t id = -1;
  };

  void build(std::size_t count) {
    slots_.assign(table_capacity_for(count), Slot{});
    mask_ = slots_.size() - 1;
  }
  // `bytes_of(id)` gives the bytes of an already-inserted id.
  template <class BytesOf>
  bool insert(std::string_view key, std::int32_t id, const BytesOf& bytes_of) {
    const std::uint64_t h = hash_bytes(key.data(), key.size());
    const auto tag = static_cast<std::uint32_t>(h >> 32);
    for (std::size_t s = h & mask_;; s = (s + 1) & mask_) {
      Slot& slot = slots_[s];
      if (slot.id < 0) {
        slot = {tag, id};
        return true;
      }
      if (slot.tag == tag && bytes_of(slot.id) == key) return false;
    }
  }
  template <class BytesOf>
  std::int32_t find(std::string_view key, const BytesOf& bytes_of) const noexcept {
    const std::uint64_t h = hash_bytes(key.data(), key.size());
    const auto tag = static_cast<std::uint32_t>(h >> 32);
    for (std::size_t s = h & mask_;; s = (s + 1) & mask_) {
      const Slot& slot = slots_[s];
      if (slot.id < 0) return -1;
      if (slot.tag == tag && bytes_of(slot.id) == key) return slot.id;
    }
  }

 private:
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

// Open-addressing map from a pair of token ids to the merge's rank and the merged token's id.
class PairMerges {
 public:
  struct Merge {
    std::uint32_t rank;
    std::int32_t id;
  };
  static constexpr std::uint32_t kNoRank = std::numeric_limits<std::uint32_t>::max();

  void build(std::size_t count) {
    keys_.assign(table_capacity_for(count), kEmpty);
    values_.assign(keys_.size(), Merge{kNoRank, -1});
    mask_ = keys_.size() - 1;
  }
  bool insert(std::int32_t a, std::int32_t b, Merge m) {
    const std::uint64_t key = pack(a, b);
    for (std::size_t s = mix64(key) & mask_;; s = (s + 1) & mask_) {
      if (keys_[s] == kEmpty) {
        keys_[s] = key;
        values_[s] = m;
        return true;
      }
      if (keys_[s] == key) return false;
    }
  }
  Merge find(std::int32_t a, std::int32_t b) const noexcept {
    const std::uint64_t key = pack(a, b);
    for (std::size_t s = mix64(key) & mask_;; s = (s + 1) & mask_) {
      if (keys_[s] == key) return values_[s];
      if (keys_[s] == kEmpty) return {kNoRank, -1};
    }
  }

 private:
  static constexpr std::uint64_t kEmpty = ~0ull;
  static std::uint64_t pack(std::int32_t a, std::int32_t b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
           static_cast<std::uint32_t>(b);
  }
  std::vector<std::uint64_t> keys_;
  std::vector<Merge> values_;
  std::size_t mask_ = 0;
};

inline std::string read_whole_file(const std::filesystem::path& path, std::string_view what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw FileError("cannot read " + std::string(what) + " '" + path.string() +
                    "': no such file (a GPT-2 model directory holds vocab.json and merges.txt)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError("cannot open " + std::string(what) + " '" + path.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw FileError("cannot read " + std::string(what) + " '" + path.string() + "'");
  return std::move(ss).str();
}

inline std::string printable(std::string_view s, std::size_t limit = 80) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != 0x7F) {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (s.size() > limit) out += "...";
  return out;
}

template <class R>
concept TextRange = std::ranges::input_range<const R&> &&
    std::convertible_to<std::ranges::range_reference_t<const R&>, std::string_view>;

}  // namespace tokenizer::detail

class Gpt2Tokenizer {
 public:
  static constexpr std::string_view kEndOfText = "<|endoftext|>";

  // Reads dir/vocab.json and dir/merges.txt. Throws FileError (missing/unreadable file) or
  // FormatError (malformed content; the message names the file, line or key and what was expected).
  static Gpt2Tokenizer from_directory(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
      throw FileError("tokenizer directory '" + dir.string() +
                      "' does not exist or is not a directory (expected a folder holding "
                      "vocab.json and merges.txt)");
    return from_files(dir / "vocab.json", dir / "merges.txt");
  }

  static Gpt2Tokenizer from_files(const std::filesystem::path& vocab_json,
                                  const std::filesystem::path& merges_txt) {
    return from_strings(tokenizer::detail::read_whole_file(vocab_json, "vocab file"),
                        tokenizer::detail::read_whole_file(merges_txt, "merges file"),
                        vocab_json.string(), merges_txt.string());
  }

  // The same from the files' contents; the names only label error messages.
  static Gpt2Tokenizer from_strings(std::string_view vocab_json, std::string_view merges_txt,
                                    const std::string& vocab_name = "vocab.json",
                                    const std::string& merges_name = "merges.txt") {
    Gpt2Tokenizer t;
    t.load_vocab(vocab_json, vocab_name);
    t.load_merges(merges_txt, merges_name);
    return t;
  }

  // Token ids of `text`. Throws InputError when `text` is not valid UTF-8 and invalid == error.
  std::vector<std::int32_t> encode(std::string_view text,
                                   SpecialTokens special = SpecialTokens::allowed,
                                   InvalidUtf8 invalid = InvalidUtf8::error) const {
    std::vector<std::int32_t> ids;
    encode_into(text, ids, special, invalid);
    return ids;
  }

  // Appends the ids of `text` to `out`.
  void encode_into(std::string_view text, std::vector<std::int32_t>& out,
                   SpecialTokens special = SpecialTokens::allowed,
                   InvalidUtf8 invalid = InvalidUtf8::error) const {
    std::string repaired;
    if (const std::size_t bad = find_invalid_utf8(text); bad != std::string_view::npos) {
      if (invalid == InvalidUtf8::error) {
        const auto step = tokenizer::detail::utf8_step(text, bad);
        std::string bytes;
        for (std::size_t k = 0; k < step.len; ++k) {
          if (k) bytes += ' ';
          bytes += "0x" + hex_byte(static_cast<unsigned char>(text[bad + k]));
        }
        const char* kind = step.truncated  ? "truncated sequence"
                           : step.len == 1 ? "invalid byte"
                                           : "incomplete sequence";
        throw InputError("text is not valid UTF-8: " + std::string(kind) + " " + bytes +
                         " at byte offset " + std::to_string(bad) +
                         (step.truncated ? " (the text ends inside a character)" : "") +
                         "; encode with InvalidUtf8::replace (ctformer tokenize --lossy) to "
                         "replace invalid bytes with U+FFFD");
      }
      repaired = to_valid_utf8(text);
      text = repaired;
    }
    out.reserve(out.size() + text.size() / 4 + 4);
    if (special == SpecialTokens::allowed && eot_id_ >= 0) {
      std::size_t pos = 0;
      while (pos <= text.size()) {
        const std::size_t hit = text.find(kEndOfText, pos);
        if (hit == std::string_view::npos) {
          encode_ordinary(text.substr(pos), out);
          break;
        }
        encode_ordinary(text.substr(pos, hit - pos), out);
        out.push_back(eot_id_);
        pos = hit + kEndOfText.size();
      }
    } else {
      encode_ordinary(text, out);
    }
  }

  // One id vector per text (any range of strings or string views).
  template <tokenizer::detail::TextRange Texts>
  std::vector<std::vector<std::int32_t>> encode_batch(
      const Texts& texts, SpecialTokens special = SpecialTokens::allowed,
      InvalidUtf8 invalid = InvalidUtf8::error) const {
    std::vector<std::vector<std::int32_t>> out;
    if constexpr (std::ranges::sized_range<const Texts&>) out.reserve(std::ranges::size(texts));
    for (const auto& text : texts) out.push_back(encode(std::string_view(text), special, invalid));
    return out;
  }

  // The bytes of the tokens, concatenated. A token may end inside a UTF-8 character, so the result
  // of decoding part of a sequence need not be valid UTF-8 (see Utf8StreamDecoder and
  // to_valid_utf8). Throws InputError for an id outside [0, vocab_size()).
  std::string decode(std::span<const std::int32_t> ids) const {
    std::size_t total = 0;
    for (const std::int32_t id : ids) total += token_bytes(id).size();
    std::string out;
    out.reserve(total);
    for (const std::int32_t id : ids) out.append(token_view(id));
    return out;
  }

  // The bytes of one token. Throws InputError for an id outside [0, vocab_size()).
  std::string_view token_bytes(std::int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= vocab_size())
      throw InputError("token id " + std::to_string(id) + " is out of range: the vocabulary has " +
                       std::to_string(vocab_size()) + " tokens (ids 0.." +
                       std::to_string(vocab_size() - 1) + ")");
    return token_view(id);
  }

  // The id of the token whose bytes are exactly `bytes` (special tokens included), if any.
  std::optional<std::int32_t> token_id(std::string_view bytes) const {
    if (eot_id_ >= 0 && bytes == kEndOfText) return eot_id_;
    const std::int32_t id = lookup(bytes);
    if (id < 0) return std::nullopt;
    return id;
  }

  std::int32_t eos_token_id() const noexcept { return eot_id_; }
  std::size_t vocab_size() const noexcept { return offsets_.size() - 1; }
  std::size_t merge_count() const noexcept { return merge_count_; }

 private:
  Gpt2Tokenizer() = default;

  static std::string hex_byte(unsigned char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    return {kHex[c >> 4], kHex[c & 15]};
  }

  std::string_view token_view(std::int32_t id) const noexcept {
    return std::string_view(arena_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  std::int32_t lookup(std::string_view bytes) const noexcept {
    return bytes_to_id_.find(bytes, [this](std::int32_t id) { return token_view(id); });
  }

  void load_vocab(std::string_view text, const std::string& name) {
    using tokenizer::detail::printable;
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999
      throw FormatError(name +
                        " is not valid JSON (expected an object mapping token strings to "
                        "ids): " +
                        e.what());
    }
    if (!json.is_object())
      throw FormatError(name + ": expected a JSON object mapping token strings to ids, got a " +
                        std::string(json.type_name()));
    const std::size_t n = json.size();
    if (n == 0) throw FormatError(name + ": the vocabulary is empty");
    std::vector<std::string> bytes(n);
    std::vector<bool> seen(n, false);
    for (const auto& [key, value] : json.items()) {
      if (!value.is_number_integer())
        throw FormatError(name + ": the id of token \"" + printable(key) +
                          "\" is not an integer (got " + detail::json_excerpt(value) + ")");
      const auto id = value.get<std::int64_t>();
      if (id < 0 || static_cast<std::size_t>(id) >= n)
        throw FormatError(name + ": token \"" + printable(key) + "\" has id " + std::to_string(id) +
                          ", outside 0.." + std::to_string(n - 1) +
                          " (ids must be dense: " + std::to_string(n) + " entries)");
      if (seen[id])
        throw FormatError(name + ": id " + std::to_string(id) + " is used twice (token \"" +
                          printable(key) + "\")");
      seen[id] = true;
      if (key == kEndOfText) {
        eot_id_ = static_cast<std::int32_t>(id);
        bytes[id] = key;
        continue;
      }
      auto decoded = tokenizer::detail::byte_level_decode(key);
      if (!decoded || decoded->empty())
        throw FormatError(name + ": token \"" + printable(key) + "\" (id " + std::to_string(id) +
                          ") is not spelled in GPT-2's byte-level alphabet");
      bytes[id] = std::move(*decoded);
    }
    if (eot_id_ < 0)
      throw FormatError(name +
                        ": no \"<|endoftext|>\" entry (a GPT-2 vocabulary has it as its "
                        "end-of-text token, id 50256)");
    offsets_.assign(n + 1, 0);
    for (std::size_t i = 0; i < n; ++i) offsets_[i + 1] = offsets_[i] + bytes[i].size();
    arena_.reserve(offsets_[n]);
    for (const auto& b : bytes) arena_ += b;
    bytes_to_id_.build(n);
    auto view = [this](std::int32_t id) { return token_view(id); };
    for (std::size_t i = 0; i < n; ++i) {
      if (static_cast<std::int32_t>(i) == eot_id_) continue;  // special: never produced by BPE
      if (!bytes_to_id_.insert(token_view(static_cast<std::int32_t>(i)),
                               static_cast<std::int32_t>(i), view))
        throw FormatError(name + ": two tokens spell the same bytes \"" +
                          printable(token_view(static_cast<std::int32_t>(i))) + "\" (id " +
                          std::to_string(i) + ")");
    }
    for (int b = 0; b < 256; ++b) {
      const char c = static_cast<char>(b);
      byte_ids_[b] = lookup(std::string_view(&c, 1));
      if (byte_ids_[b] < 0)
        throw FormatError(name + ": no token for the single byte 0x" +
                          hex_byte(static_cast<unsigned char>(b)) +
                          " (a byte-level BPE vocabulary has all 256)");
    }
  }

  void load_merges(std::string_view text, const std::string& name) {
    using tokenizer::detail::printable;
    std::vector<std::pair<std::string_view, std::size_t>> lines;  // (line, 1-based number)
    std::size_t pos = 0, number = 0;
    while (pos < text.size()) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      ++number;
      pos = end + 1;
      if (number == 1 && line.starts_with("#version")) continue;
      if (line.empty()) continue;
      lines.emplace_back(line, number);
    }
    merges_.build(lines.size());
    std::uint32_t rank = 0;
    for (const auto& [line, no] : lines) {
      const std::string where = name + " line " + std::to_string(no);
      const std::size_t space = line.find(' ');
      if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
          line.find(' ', space + 1) != std::string_view::npos)
        throw FormatError(where + ": expected two tokens separated by one space, got \"" +
                          printable(line) + "\"");
      const std::string_view parts[2] = {line.substr(0, space), line.substr(space + 1)};
      std::int32_t ids[2];
      std::string merged;
      for (int k = 0; k < 2; ++k) {
        const auto bytes = tokenizer::detail::byte_level_decode(parts[k]);
        if (!bytes)
          throw FormatError(where + ": \"" + printable(parts[k]) +
                            "\" is not spelled in GPT-2's byte-level alphabet");
        ids[k] = lookup(*bytes);
        if (ids[k] < 0)
          throw FormatError(where + ": token \"" + printable(parts[k]) +
                            "\" is not in the vocabulary");
        merged += *bytes;
      }
      const std::int32_t merged_id = lookup(merged);
      if (merged_id < 0)
        throw FormatError(where + ": the merged token \"" + printable(parts[0]) +
                          printable(parts[1]) + "\" is not in the vocabulary");
      if (!merges_.insert(ids[0], ids[1], {rank, merged_id}))
        throw FormatError(where + ": the pair \"" + printable(line) +
                          "\" was already merged on an earlier line");
      ++rank;
    }
    merge_count_ = rank;
  }

  // Text without special tokens.
  void encode_ordinary(std::string_view text, std::vector<std::int32_t>& out) const {
    tokenizer::detail::pretokenize(text, [&](std::string_view piece) {
      if (const std::int32_t id = lookup(piece); id >= 0) {
        out.push_back(id);
        return;
      }
      bpe(piece, out);
    });
  }

  // Byte-pair merging of one piece: repeatedly merge the adjacent pair with the lowest merge rank
  // (leftmost on ties) until no pair has a merge.
  void bpe(std::string_view piece, std::vector<std::int32_t>& out) const {
    constexpr std::size_t kSmall = 128;
    if (piece.size() > kSmall) {
      bpe_large(piece, out);
      return;
    }
    using Merge = tokenizer::detail::PairMerges::Merge;
    constexpr std::uint32_t kNone = tokenizer::detail::PairMerges::kNoRank;
    std::int32_t ids[kSmall];
    Merge next[kSmall];  // next[i]: the merge of (ids[i], ids[i+1])
    std::size_t m = piece.size();
    for (std::size_t i = 0; i < m; ++i) ids[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
    for (std::size_t i = 0; i + 1 < m; ++i) next[i] = merges_.find(ids[i], ids[i + 1]);
    while (m > 1) {
      std::size_t best = 0;
      std::uint32_t best_rank = kNone;
      for (std::size_t i = 0; i + 1 < m; ++i)
        if (next[i].rank < best_rank) {
          best_rank = next[i].rank;
          best = i;
        }
      if (best_rank == kNone) break;
      ids[best] = next[best].id;
      for (std::size_t i = best + 1; i + 1 < m; ++i) {
        ids[i] = ids[i + 1];
        next[i] = next[i + 1];
      }
      --m;
      if (best > 0) next[best - 1] = merges_.find(ids[best - 1], ids[best]);
      if (best + 1 < m) next[best] = merges_.find(ids[best], ids[best + 1]);
    }
    out.insert(out.end(), ids, ids + m);
  }

  // The same for long pieces in O(n log n): a linked list of parts and a heap of candidate merges.
  void bpe_large(std::string_view piece, std::vector<std::int32_t>& out) const {
    constexpr std::uint32_t kNone = tokenizer::detail::PairMerges::kNoRank;
    const std::size_t m = piece.size();
    struct Part {
      std::int32_t id;
      std::uint32_t prev, next;  // indices; m = none
    };
    std::vector<Part> parts(m);
    for (std::size_t i = 0; i < m; ++i)
      parts[i] = {byte_ids_[static_cast<unsigned char>(piece[i])],
                  static_cast<std::uint32_t>(i == 0 ? m : i - 1),
                  static_cast<std::uint32_t>(i + 1)};
    struct Candidate {
      std::uint32_t rank, left, right;
      std::int32_t left_id, right_id;
      bool operator>(const Candidate& o) const {
        return rank != o.rank ? rank > o.rank : left > o.left;
      }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto push = [&](std::uint32_t left) {
      const std::uint32_t right = parts[left].next;
      if (right >= m) return;
      const auto merge = merges_.find(parts[left].id, parts[right].id);
      if (merge.rank != kNone)
        heap.push({merge.rank, left, right, parts[left].id, parts[right].id});
    };
    for (std::uint32_t i = 0; i + 1 < m; ++i) push(i);
    std::vector<bool> alive(m, true);
    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      // Stale when either part has merged since: a part's id only ever grows to a longer token.
      if (!alive[c.left] || !alive[c.right] || parts[c.left].next != c.right ||
          parts[c.left].id != c.left_id || parts[c.right].id != c.right_id)
        continue;
      parts[c.left].id = merges_.find(c.left_id, c.right_id).id;
      alive[c.right] = false;
      parts[c.left].next = parts[c.right].next;
      if (parts[c.left].next < m) parts[parts[c.left].next].prev = c.left;
      if (parts[c.left].prev < m) push(parts[c.left].prev);
      push(c.left);
    }
    for (std::uint32_t i = 0; i < m; i = parts[i].next) out.push_back(parts[i].id);
  }

  std::string arena_;                 // all tokens' bytes, back to back
  std::vector<std::size_t> offsets_;  // token id -> [offsets_[id], offsets_[id + 1]) in arena_
  tokenizer::detail::BytesToId bytes_to_id_;
  tokenizer::detail::PairMerges merges_;
  std::int32_t byte_ids_[256] = {};
  std::int32_t eot_id_ = -1;
  std::size_t merge_count_ = 0;
};

}  // namespace ctformer
