// Reads safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length, a JSON header describing each tensor, then the raw tensor bytes. The file is
// memory-mapped and every tensor is validated against the file before anything is read.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/core/dtype.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/core/json_excerpt.hpp"
#include "ctformer/io/mapped_file.hpp"

namespace ctformer {

// Tensors are read in place from the mapped file, whose numbers are little-endian.
static_assert(std::endian::native == std::endian::little,
              "ctformer reads safetensors' little-endian data in place: big-endian hosts (s390x, "
              "ppc64 big-endian) are not supported");

namespace detail {

// Every dtype the safetensors format defines, with its size. ctformer loads weights of the
// DType's it supports; the rest are still recognised so that their byte ranges can be validated.
struct SafetensorsDTypeInfo {
  std::string_view name;
  std::size_t size;
};
inline constexpr SafetensorsDTypeInfo kSafetensorsDTypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};

inline std::string shape_to_string(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace detail

struct SafetensorsTensor {
  std::string name;
  std::string dtype_name;      // as written in the file, e.g. "F32"
  std::optional<DType> dtype;  // empty when ctformer cannot load this dtype
  std::vector<std::int64_t> shape;
  std::int64_t numel = 1;
  std::span<const std::byte> bytes;  // inside the mapped file
};

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws FileError (cannot read) or FormatError (malformed).
  explicit SafetensorsFile(const std::filesystem::path& path) : file_(path), path_(path) {
    parse(file_.bytes());
  }

  // The same for a file's contents already in memory (copied); `name` stands for the path in error
  // messages. Throws FormatError.
  static SafetensorsFile from_bytes(std::span<const std::byte> bytes, std::string name) {
    return SafetensorsFile(std::vector<std::byte>(bytes.begin(), bytes.end()), std::move(name));
  }

  const std::filesystem::path& path() const { return path_; }
  std::span<const SafetensorsTensor> tensors() const { return tensors_; }

  const SafetensorsTensor* find(std::string_view name) const {
    auto it = std::find_if(tensors_.begin(), tensors_.end(),
                           [&](const SafetensorsTensor& t) { return t.name == name; });
    return it == tensors_.end() ? nullptr : &*it;
  }

  // The tensor's elements converted to float; checks that it exists, has a loadable dtype and the
  // expected shape.
  std::vector<float> load_float(std::string_view name,
                                std::span<const std::int64_t> expected_shape) const {
    const SafetensorsTensor* t = find(name);
    if (!t) throw FormatError(where() + "tensor '" + std::string(name) + "' is missing");
    if (!std::ranges::equal(t->shape, expected_shape))
      throw FormatError(where() + "tensor '" + t->name + "' has shape " +
                        detail::shape_to_string(t->shape) + ", expected " +
                        detail::shape_to_string(expected_shape) +
                        " for this model's config.json (is the config from another model?)");
    if (!t->dtype)
      throw FormatError(where() + "tensor '" + t->name + "' has dtype " + t->dtype_name +
                        "; ctformer loads F32, F16 and BF16 weights");
    std::vector<float> out(static_cast<std::size_t>(t->numel));
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = load_as_float(t->bytes.data(), *t->dtype, i);
    return out;
  }

 private:
  SafetensorsFile(std::vector<std::byte> bytes, std::string name)
      : owned_(std::move(bytes)), path_(std::move(name)) {
    parse(owned_);
  }

  std::string where() const { return "safetensors file '" + path().string() + "': "; }

  void parse(const std::span<const std::byte> file) {
    if (file.size() < 8)
      throw FormatError(where() + "the file is " + std::to_string(file.size()) +
                        " bytes long; a safetensors file starts with an 8-byte header length "
                        "(the file is empty or truncated: download it again)");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i)
      header_len = (header_len << 8) | std::to_integer<std::uint8_t>(file[i]);
    if (header_len > file.size() - 8)
      throw FormatError(where() + "the header length is " + std::to_string(header_len) +
                        " bytes but only " + std::to_string(file.size() - 8) +
                        " bytes follow it (the file is truncated or not a safetensors file)");
    const auto* header_begin = reinterpret_cast<const char*>(file.data() + 8);
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(header_begin, header_begin + header_len);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(where() + "the header is not valid JSON: " + e.what());
    }
    if (!header.is_object()) throw FormatError(where() + "the header is not a JSON object");

    const std::span<const std::byte> data = file.subspan(8 + header_len);
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") continue;
      tensors_.push_back(parse_entry(name, entry, data));
    }
    check_no_overlap(data);
  }

  SafetensorsTensor parse_entry(const std::string& name, const nlohmann::json& entry,
                                std::span<const std::byte> data) const {
    const std::string at = where() + "tensor '" + name + "': ";
    if (!entry.is_object()) throw FormatError(at + "its header entry is not a JSON object");
    SafetensorsTensor t;
    t.name = name;

    const auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string())
      throw FormatError(at + "'dtype' is missing or not a string");
    t.dtype_name = dtype_it->get<std::string>();
    const auto info = std::ranges::find(detail::kSafetensorsDTypes, t.dtype_name,
                                        &detail::SafetensorsDTypeInfo::name);
    if (info == std::end(detail::kSafetensorsDTypes))
      throw FormatError(at + "unknown dtype '" + t.dtype_name +
                        "'; the safetensors format defines BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, "
                        "U16, F16, BF16, I32, U32, F32, F64, I64, U64");
    t.dtype = dtype_from_safetensors_name(t.dtype_name);

    const auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array())
      throw FormatError(at + "'shape' is missing or not an array");
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned())
        throw FormatError(at + "shape " + detail::json_excerpt(*shape_it) +
                          " has a non-integer or negative size");
      const auto dim = d.get<std::uint64_t>();
      if (dim > (std::uint64_t(1) << 40) ||
          (dim != 0 && std::uint64_t(t.numel) > (std::uint64_t(1) << 62) / dim))
        throw FormatError(at + "shape " + detail::json_excerpt(*shape_it) + " is impossibly large");
      t.shape.push_back(static_cast<std::int64_t>(dim));
      t.numel *= static_cast<std::int64_t>(dim);
    }

    const auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned())
      throw FormatError(at + "'data_offsets' must be two non-negative integers [begin, end]");
    const auto begin = (*offsets_it)[0].get<std::uint64_t>();
    const auto end = (*offsets_it)[1].get<std::uint64_t>();
    if (begin > end || end > data.size())
      throw FormatError(at + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                        "] lie outside the " + std::to_string(data.size()) +
                        " data bytes of the file (truncated or corrupt file)");
    // numel is at most 2^62 and a dtype up to 8 bytes: their product may not fit in 64 bits (it
    // would wrap, to 0 for [2^31, 2^31] F32, and match an empty range).
    const bool fits = std::uint64_t(t.numel) <= UINT64_MAX / info->size;
    const std::uint64_t expected = fits ? std::uint64_t(t.numel) * info->size : 0;
    if (!fits || end - begin != expected)
      throw FormatError(at + "holds " + std::to_string(end - begin) + " bytes but its shape " +
                        detail::shape_to_string(t.shape) + " and dtype " + t.dtype_name + " need " +
                        (fits ? std::to_string(expected) : "more than 2^64"));
    t.bytes = data.subspan(begin, end - begin);
    return t;
  }

  void check_no_overlap(std::span<const std::byte> data) const {
    std::vector<const SafetensorsTensor*> by_offset;
    for (const auto& t : tensors_) by_offset.push_back(&t);
    std::ranges::sort(by_offset, {}, [](const SafetensorsTensor* t) { return t->bytes.data(); });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
      const SafetensorsTensor& prev = *by_offset[i - 1];
      const SafetensorsTensor& cur = *by_offset[i];
      if (cur.bytes.data() < prev.bytes.data() + prev.bytes.size())
        throw FormatError(where() + "tensors '" + prev.name + "' and '" + cur.name +
                          "' overlap (byte " + std::to_string(cur.bytes.data() - data.data()) +
                          "); the file is corrupt");
    }
  }

  MappedFile file_;               // the mapped file, or
  std::vector<std::byte> owned_;  // the bytes given to from_bytes (moving keeps their address)
  std::filesystem::path path_;
  std::vector<SafetensorsTensor> tensors_;
};

}  // namespace ctformer
