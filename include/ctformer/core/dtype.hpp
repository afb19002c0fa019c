// Element types of stored tensors, and exact conversions between their bit patterns and float.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace ctformer {

// The element types a model file may store. ctformer computes in float and can keep weights in any
// of these.
enum class DType : std::uint8_t { f32, f16, bf16 };

inline constexpr DType kSupportedDTypes[] = {DType::f32, DType::f16, DType::bf16};

constexpr std::size_t size_of(DType t) {
  return t == DType::f32 ? 4 : 2;
}

// Names as safetensors writes them ("F32", "F16", "BF16").
constexpr std::string_view safetensors_name(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::f16:
      return "F16";
    case DType::bf16:
      return "BF16";
  }
  return "?";
}

constexpr std::optional<DType> dtype_from_safetensors_name(std::string_view name) {
  for (DType t : kSupportedDTypes)
    if (safetensors_name(t) == name) return t;
  return std::nullopt;
}

// IEEE binary16 bits to float; exact for every input, subnormals and NaN included.
constexpr float f16_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf / NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal: shift the mantissa up until its leading one is the implicit bit.
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

// bfloat16 is the upper half of a float.
constexpr float bf16_bits_to_float(std::uint16_t b) {
  return std::bit_cast<float>(std::uint32_t(b) << 16);
}

// Loads element `i` of a little-endian buffer of type `t` as float.
inline float load_as_float(const std::byte* data, DType t, std::size_t i) {
  switch (t) {
    case DType::f32: {
      float v;
      std::memcpy(&v, data + 4 * i, 4);
      return v;
    }
    case DType::f16: {
      std::uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      return f16_bits_to_float(h);
    }
    case DType::bf16: {
      std::uint16_t b;
      std::memcpy(&b, data + 2 * i, 2);
      return bf16_bits_to_float(b);
    }
  }
  return 0.0f;
}

}  // namespace ctformer
