// Element types on the device: fp32, fp16 and bf16 storage, always computed in fp32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <library_types.h>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

namespace ctformer::cuda_detail {

template <class T>
concept DeviceElement =
    std::is_same_v<T, float> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

__device__ __forceinline__ float to_float(float x) {
  return x;
}
__device__ __forceinline__ float to_float(__half x) {
  return __half2float(x);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <DeviceElement T>
__device__ __forceinline__ T from_float(float x) {
  if constexpr (std::is_same_v<T, float>)
    return x;
  else if constexpr (std::is_same_v<T, __half>)
    return __float2half_rn(x);
  else
    return __float2bfloat16_rn(x);
}

template <DeviceElement T>
constexpr cudaDataType_t cuda_data_type() {
  if constexpr (std::is_same_v<T, float>)
    return CUDA_R_32F;
  else if constexpr (std::is_same_v<T, __half>)
    return CUDA_R_16F;
  else
    return CUDA_R_16BF;
}

template <DeviceElement T>
constexpr std::string_view dtype_name() {
  if constexpr (std::is_same_v<T, float>)
    return "fp32";
  else if constexpr (std::is_same_v<T, __half>)
    return "fp16";
  else
    return "bf16";
}

// Four elements of T as one machine word, for the accesses below: 16 bytes in fp32, 8 in
// fp16/bf16. Their addresses must be aligned to 4 * sizeof(T).
template <DeviceElement T>
using Raw4 = std::conditional_t<sizeof(T) == 4, uint4, uint2>;

// The four elements of T at p, widened to fp32, in one load.
template <DeviceElement T>
__device__ __forceinline__ float4 load4(const T* __restrict__ p) {
  const Raw4<T> raw = *reinterpret_cast<const Raw4<T>*>(p);
  T e[4];
  memcpy(static_cast<void*>(e), &raw, sizeof(raw));
  return make_float4(to_float(e[0]), to_float(e[1]), to_float(e[2]), to_float(e[3]));
}

// Copies the four elements of T at from to to, in one load and one store.
template <DeviceElement T>
__device__ __forceinline__ void copy4(T* __restrict__ to, const T* __restrict__ from) {
  *reinterpret_cast<Raw4<T>*>(to) = *reinterpret_cast<const Raw4<T>*>(from);
}

inline constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace ctformer::cuda_detail
