// The CUDA kernels of ops/linear.cuh, beside the cuBLASLt GEMMs it runs for most shapes:
//   - gemv_kernel: the projections of a decode step at small batch (at most kGemvMaxRows rows).
//     There the product reads each weight once and does a few FLOPs per byte, so its time is the
//     weights' bytes over memory bandwidth plus a fixed cost per launch. Each output column
//     belongs to one warp (to 2 or 4 warps of a block, whose sums meet in shared memory, when its
//     row is long): it streams that column's weight row (the weight is kept (out, in), so the row
//     is contiguous) 16 bytes a lane, several loads in flight, multiplies by every row of x and
//     reduces with shuffles. The LayerNorm or RMSNorm before a projection (ln_1 before c_attn,
//     ln_2 before c_fc, ln_f before the LM head) is applied to x as it is read, each block working
//     out the rows' statistics first, so the norm is no launch of its own; the epilogue (bias,
//     GELU, residual add) is applied as the sums are stored. No block ever waits on another.
//   - transpose_kernel: turns a checkpoint's (in, out) weight into the (out, in) rows that
//     gemv_kernel reads, once, at load.
//   - gelu_kernel: GPT-2's GELU, for a GPU where cuBLASLt has no GELU epilogue.
// Like ops/attention_kernels.cuh, nothing here needs the CUDA runtime, so tests/cuda/emulation.hpp
// runs these kernels on the CPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "ctformer/backends/cuda/numeric.cuh"
#include "ctformer/ops/epilogue.hpp"

namespace ctformer::ops::cuda_kernels {

__device__ __forceinline__ float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

inline constexpr int kGeluThreads = 256;

template <class T>
__global__ void __launch_bounds__(kGeluThreads) gelu_kernel(T* y, std::int64_t n) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * kGeluThreads + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * kGeluThreads)
    y[i] = cuda_detail::from_float<T>(gelu_tanh(cuda_detail::to_float(y[i])));
}

// Rows of x up to which a projection runs as gemv_kernel rather than a cuBLASLt GEMM: every row
// is one more accumulator per lane and one more load of x per weight load.
inline constexpr std::int64_t kGemvMaxRows = 8;
inline constexpr int kGemvWarps = 4;   // warps per block
inline constexpr int kGemvUnroll = 4;  // 16-byte weight loads each lane has in flight
// Resident blocks per SM asked of ptxas (__launch_bounds__), 16 warps as for attention: left to
// itself, ptxas (nvcc 13.0) held some instantiations to 56 registers on sm_80 and spilled. With it
// they take 76 to 102 on sm_90 (tools/kernel_resources.py checks that none spills).
inline constexpr int kGemvMinBlocksPerSM = 16 / kGemvWarps;

template <class T>
struct GemvParams {
  const T* x;     // (N, K)
  const T* w;     // (M, K): the weight as (out, in)
  const T* bias;  // (M); null for Epilogue::none
  T* out;         // (N, M), not overlapping x; with Epilogue::bias_residual also the residual
  std::int64_t N, K, M;
  Epilogue epilogue;
  int warps_per_column;  // 1, 2 or 4 (gemv_warps_per_column)
  // The norm of the rows of x, applied as they are read: LayerNorm with gamma and beta, RMSNorm
  // with gamma alone, none without gamma. (K) each.
  const T* gamma;
  const T* beta;
  float eps;
};

// Warps that share one output column, each taking every warps_per_column-th piece of its row: as
// few as keep each lane's loads within one round of kGemvUnroll, so that a long row (K = 3072)
// is read with all its loads in flight at once, and a narrow projection (768 columns) still has
// thousands of warps.
template <class T>
constexpr int gemv_warps_per_column(std::int64_t K) {
  const std::int64_t per_round = 32 * (16 / std::int64_t(sizeof(T))) * kGemvUnroll;
  int warps = 1;
  while (warps < kGemvWarps && warps * per_round < K) warps *= 2;
  return warps;
}

// The launch of gemv_kernel for out = epilogue(norm(x) w^T + bias), as ops/linear.cuh makes it
// and the emulated test checks it: every field from an argument, so that none is left out.
template <class T>
GemvParams<T> gemv_params(const T* x, const T* w, const T* bias, T* out, std::int64_t N,
                          std::int64_t K, std::int64_t M, Epilogue epilogue, const T* gamma,
                          const T* beta, float eps) {
  return {x, w, bias, out, N, K, M, epilogue, gemv_warps_per_column<T>(K), gamma, beta, eps};
}

// The grid: a block per kGemvWarps / warps_per_column columns, but at most `max_blocks` (each
// block then takes several such groups of columns).
template <class T>
unsigned gemv_blocks(const GemvParams<T>& p, std::int64_t max_blocks) {
  const std::int64_t columns_per_group = kGemvWarps / p.warps_per_column;
  const std::int64_t groups = (p.M + columns_per_group - 1) / columns_per_group;
  return unsigned(groups < max_blocks ? groups : max_blocks);
}

// The 16 / sizeof(T) elements of T in `raw` (a register: its bytes are copied, never loaded one by
// one from memory), widened to fp32.
template <class T>
__device__ __forceinline__ void widen16(uint4 raw, float* out) {
  constexpr int kVec = 16 / int(sizeof(T));
  T e[kVec];
  memcpy(static_cast<void*>(e), &raw, sizeof(raw));
#pragma unroll
  for (int i = 0; i < kVec; ++i) out[i] = cuda_detail::to_float(e[i]);
}

// out[r, n] = epilogue(sum_k norm(x)[r, k] w[n, k] + bias[n]) for r < N <= kRows;
// warps_per_column warps per n, grid gemv_blocks(). K must be a multiple of 16 / sizeof(T), and x,
// w, gamma and beta 16-byte aligned (ops/linear.cuh checks), so that every load is one whole
// 16-byte piece of a row.
template <class T, int kRows>
__global__ void __launch_bounds__(kGemvWarps * 32, kGemvMinBlocksPerSM)
    gemv_kernel(GemvParams<T> p) {
  constexpr int kVec = 16 / int(sizeof(T));  // elements per load
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int split = p.warps_per_column, part = warp % split;
  const int rows = int(p.N);
  const std::int64_t K = p.K, step = std::int64_t(split) * 32 * kVec;  // elements per round
  const T* __restrict__ x = p.x;

  // The norm's statistics of each row, in fp32 and in two passes (as ops/layer_norm_kernels.cuh),
  // each row by one warp of the block. The norm is then applied through the weights rather than to
  // x: sum_k w (gamma (x - mean) rstd + beta) = rstd sum_k (w gamma)(x - mean) + sum_k w beta, so
  // the loop keeps one mean per row and one shift, and rstd multiplies each row's sum at the end.
  const bool normalize = p.gamma != nullptr;  // uniform over the grid
  __shared__ float row_mean[kRows], row_rstd[kRows];
  float mean[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) mean[r] = 0.0f;
  if (normalize) {
    for (int r = warp; r < rows; r += kGemvWarps) {
      const T* __restrict__ xr = x + r * K;
      float f[kVec], m = 0.0f, squares = 0.0f;
      if (p.beta) {  // LayerNorm; RMSNorm keeps m = 0
        float sum = 0.0f;
        for (std::int64_t k = std::int64_t(lane) * kVec; k < K; k += 32 * kVec) {
          widen16<T>(*reinterpret_cast<const uint4*>(xr + k), f);
#pragma unroll
          for (int i = 0; i < kVec; ++i) sum += f[i];
        }
        m = cuda_detail::warp_sum(sum) / float(K);
      }
      for (std::int64_t k = std::int64_t(lane) * kVec; k < K; k += 32 * kVec) {
        widen16<T>(*reinterpret_cast<const uint4*>(xr + k), f);
#pragma unroll
        for (int i = 0; i < kVec; ++i) squares += (f[i] - m) * (f[i] - m);
      }
      const float s = rsqrtf(cuda_detail::warp_sum(squares) / float(K) + p.eps);
      if (lane == 0) {
        row_mean[r] = m;
        row_rstd[r] = s;
      }
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kRows; ++r) mean[r] = r < rows ? row_mean[r] : 0.0f;
  }

  // The block's columns, kGemvWarps / split at a time: a grid smaller than the columns (the LM
  // head's 50257) works out the rows' statistics above once for many of them.
  const std::int64_t columns_per_group = kGemvWarps / split;
  const std::int64_t groups = (p.M + columns_per_group - 1) / columns_per_group;
  for (std::int64_t group = blockIdx.x; group < groups; group += gridDim.x) {  // uniform
    const std::int64_t n = group * columns_per_group + warp / split;
    const bool active = n < p.M;  // uniform over the warp; an idle warp still reaches the barriers
    const T* __restrict__ w = p.w + (active ? n : 0) * K;
    float acc[kRows + 1];  // each row's sum, then sum_k w beta (the same for every row)
#pragma unroll
    for (int r = 0; r <= kRows; ++r) acc[r] = 0.0f;
    const std::int64_t first = active ? (std::int64_t(part) * 32 + lane) * kVec : K;
    for (std::int64_t base = first; base < K; base += step * kGemvUnroll) {
      // The weight loads first, all of them, so that they are in flight together.
      uint4 raw[kGemvUnroll];
#pragma unroll
      for (int u = 0; u < kGemvUnroll; ++u) {
        const std::int64_t k = base + u * step;
        raw[u] = k < K ? *reinterpret_cast<const uint4*>(w + k) : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kGemvUnroll; ++u) {
        const std::int64_t k = base + u * step;
        if (k >= K) break;
        float wf[kVec];
        widen16<T>(raw[u], wf);
        if (normalize) {
          float g[kVec];
          if (p.beta) {
            widen16<T>(*reinterpret_cast<const uint4*>(p.beta + k), g);
#pragma unroll
            for (int i = 0; i < kVec; ++i) acc[kRows] += wf[i] * g[i];
          }
          widen16<T>(*reinterpret_cast<const uint4*>(p.gamma + k), g);
#pragma unroll
          for (int i = 0; i < kVec; ++i) wf[i] *= g[i];
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          if (r >= rows) break;
          float xf[kVec];
          widen16<T>(*reinterpret_cast<const uint4*>(x + r * K + k), xf);
#pragma unroll
          for (int i = 0; i < kVec; ++i) acc[r] += wf[i] * (xf[i] - mean[r]);
        }
      }
    }
#pragma unroll
    for (int r = 0; r <= kRows; ++r) acc[r] = cuda_detail::warp_sum(acc[r]);
    if (split > 1) {  // uniform over the block: the first warp of each column adds the others' sums
      __shared__ float sums[kGemvWarps][kRows + 1];
      if (lane == 0)
#pragma unroll
        for (int r = 0; r <= kRows; ++r) sums[warp][r] = acc[r];
      __syncthreads();
      if (part == 0)
        for (int other = 1; other < split; ++other)
#pragma unroll
          for (int r = 0; r <= kRows; ++r) acc[r] += sums[warp + other][r];
      __syncthreads();  // sums is read before the next group writes it
    }

    // Every lane holds every row's sum: lane r stores row r.
    if (active && part == 0) {
      const float b = p.epilogue == Epilogue::none ? 0.0f : cuda_detail::to_float(p.bias[n]);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (r >= rows) break;
        if (lane != r) continue;
        T* y = p.out + r * p.M + n;
        float v = (normalize ? acc[r] * row_rstd[r] + acc[kRows] : acc[r]) + b;
        if (p.epilogue == Epilogue::bias_gelu) v = gelu_tanh(v);
        if (p.epilogue == Epilogue::bias_residual) v += cuda_detail::to_float(*y);
        *y = cuda_detail::from_float<T>(v);
      }
    }
  }
}

// out (cols, rows) = in (rows, cols) transposed, through 32 x 32 tiles in shared memory so that
// both the reads and the writes are coalesced. Grid (ceil(cols / 32), ceil(rows / 32)), block
// (32, kTransposeRowsPerPass).
inline constexpr int kTransposeTile = 32;
inline constexpr int kTransposeRowsPerPass = 8;

template <class T>
__global__ void __launch_bounds__(kTransposeTile* kTransposeRowsPerPass)
    transpose_kernel(const T* __restrict__ in, std::int64_t rows, std::int64_t cols,
                     T* __restrict__ out) {
  __shared__ T tile[kTransposeTile][kTransposeTile + 1];  // padded: column reads do not conflict
  const std::int64_t row0 = std::int64_t(blockIdx.y) * kTransposeTile;
  const std::int64_t col0 = std::int64_t(blockIdx.x) * kTransposeTile;
  const int tile_rows = int(min(rows - row0, std::int64_t(kTransposeTile)));
  const int tile_cols = int(min(cols - col0, std::int64_t(kTransposeTile)));
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  const T* __restrict__ from = in + row0 * cols + col0;
  for (int i = ty; i < tile_rows; i += kTransposeRowsPerPass)
    if (tx < tile_cols) tile[i][tx] = from[i * cols + tx];
  __syncthreads();
  T* __restrict__ to = out + col0 * rows + row0;
  for (int i = ty; i < tile_cols; i += kTransposeRowsPerPass)
    if (tx < tile_rows) to[i * rows + tx] = tile[tx][i];
}

}  // namespace ctformer::ops::cuda_kernels
