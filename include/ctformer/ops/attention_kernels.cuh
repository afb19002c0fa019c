// The CUDA attention kernels, which ops/attention.cuh launches.
//
// PagedAttention, flash-attention style: a block takes kRows queries of one sequence and one head,
// streams the sequence's keys and values through shared memory 32 at a time (one key per lane for
// the scores, one output channel per lane for the values) and keeps a running max and sum per query
// (online softmax), so no score matrix is ever stored. Scores are kept in base 2 (exp2f) with
// scale * log2(e) folded into the queries. It also writes the step's keys and values to the cache
// (a separate pass on the CPU), so a layer's attention is one launch.
//
// Decode (every sequence adds one token), flash-decoding style: the keys of each sequence are also
// split across blocks (`splits`) when sequences x heads would not fill the GPU; each split writes
// its partial max, sum and output, and the last split to finish combines them (an arrival counter
// per sequence and head), so decode attention is one launch too. The number of splits depends
// on the batch only; each block finds its share of its sequence's keys from the sequence's length,
// in device memory, so a decode step's launches stay the same as the sequences grow (what a CUDA
// graph needs: backends/cuda/decode_graphs.cuh).
//
// This header needs nothing of the CUDA runtime, only the device element types, so that the
// kernels also compile as host C++ under tests/cuda/emulation.hpp, which runs them on the CPU.
#pragma once

#include <cmath>
#include <cstdint>

#include "ctformer/backends/cuda/numeric.cuh"
#include "ctformer/cache/paged_kv_cache.hpp"

namespace ctformer {

// The head sizes (n_embd / n_head) the CUDA attention kernels are compiled for. GPT-2 uses 64; 16
// is the smallest test fixture's.
inline constexpr int kCudaHeadSizes[] = {16, 32, 64, 80, 96, 128};

}  // namespace ctformer

namespace ctformer::ops::cuda_kernels {

// In 32 bits (positions are below n_positions): a 64-bit division is a long instruction sequence.
__device__ __forceinline__ std::int64_t cache_row(const SequenceSlice& s, int position,
                                                  int block_size) {
  return std::int64_t(s.block_table[position / block_size]) * block_size + position % block_size;
}

template <class T>
struct AttentionParams {
  const T* qkv;                 // (N, 3C): q | k | v of the step's tokens
  const SequenceSlice* slices;  // (S)
  T* keys;                      // (cache rows, C): the step's keys are written, earlier ones read
  T* values;                    // (cache rows, C)
  T* out;                       // (N, C); with splits > 1, by the last split to arrive
  float* partial;               // (N, n_head, splits, D + 2): max, sum, output; when splits > 1
  // When splits > 1: how many splits of each block of queries (slice, query block, head) have
  // written their partial results. Zero before the launch, and zero again after it: the last split
  // resets it.
  unsigned* arrivals;
  std::int64_t C, block_size;
  int n_head, splits;
  float scale_log2;  // scale * log2(e)
};

// A split takes at least this many keys, so a short sequence uses fewer splits than the launch has
// (the others write an empty partial result).
inline constexpr std::int64_t kMinKeysPerSplit = 64;

// The keys [begin, end) that split `split` of `splits` reads for a block whose last query is at
// `last_position` in a sequence of `length` keys. The keys are cut into `used` runs of whole tiles
// of `tile` keys, at least kMinKeysPerSplit each; splits past `used`, or starting after the
// block's last query, get an empty range (begin >= end). Host-callable, so that the partition is
// tested exhaustively without a GPU (tests/cuda/cuda_host_side_test.cu).
struct KeyRange {
  std::int64_t begin, end;
};
__host__ __device__ constexpr KeyRange split_keys(std::int64_t length, std::int64_t last_position,
                                                  std::int64_t splits, std::int64_t split,
                                                  std::int64_t tile) {
  const std::int64_t wanted = (length + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  const std::int64_t used = splits < wanted ? splits : wanted;
  const std::int64_t per_split = ((length + used - 1) / used + tile - 1) / tile * tile;
  const std::int64_t begin = split * per_split;
  const std::int64_t end =
      begin + per_split < last_position + 1 ? begin + per_split : last_position + 1;
  return {begin, end};
}

// Block shape of the attention kernel, derived from the head size.
template <int D, int kWarps_, int kRowsPerWarp_>
struct AttentionShape {
  static constexpr int kWarps = kWarps_;
  static constexpr int kRowsPerWarp = kRowsPerWarp_;
  static constexpr int kThreads = kWarps * 32;
  // Resident blocks per SM asked of ptxas (__launch_bounds__): 16 warps, enough to overlap one
  // block's tile loads with another's math. Without it ptxas picked 48 registers for fp32 D = 32
  // and spilled.
  static constexpr int kMinBlocksPerSM = 16 / kWarps;
  static constexpr int kRows = kWarps * kRowsPerWarp;  // queries per block
  static constexpr int kKeys = 32;                     // keys per tile: one per lane
  static constexpr int kDPerLane = (D + 31) / 32;      // output channels per lane
  static constexpr int kSharedBytes = (kRows * D + kKeys * (D + 1) + kKeys * D) * 4;
  static_assert(D % 16 == 0 && D >= 16 && D <= 128, "head size must be 16..128, a multiple of 16");
  static_assert(kSharedBytes <= 48 * 1024, "tiles must fit in static shared memory");
};

template <class T, int D, class Shape>
__global__ void __launch_bounds__(Shape::kThreads, Shape::kMinBlocksPerSM)
    attention_kernel(AttentionParams<T> p) {
  using cuda_detail::to_float;
  constexpr int kRows = Shape::kRows, kKeys = Shape::kKeys, kThreads = Shape::kThreads;
  constexpr int kRowsPerWarp = Shape::kRowsPerWarp, kDPerLane = Shape::kDPerLane;
  // Keys and values are read four elements a load (cuda_detail::load4): consecutive threads read
  // consecutive pieces of a key's head, and write them to v_s as consecutive float4s, so neither
  // the loads nor those stores conflict. run() checks the alignment this needs.
  constexpr int kLoadsPerKey = D / 4;
  __shared__ float q_s[kRows][D];                // (rows, D): the block's queries, pre-scaled
  __shared__ float k_s[kKeys][D + 1];            // (keys, D), padded: lane j reads row j
  __shared__ __align__(16) float v_s[kKeys][D];  // (keys, D)

  // Positions and key indices are below n_positions: 32 bits. In 64 bits, ptxas (nvcc 13.0, sm_90)
  // spilled in the fp32 kernels while using 56 of the 255 registers it could have.
  const SequenceSlice s = p.slices[blockIdx.x];
  const int first = int(blockIdx.y) * kRows;  // first query, within the slice
  if (first >= s.num_rows) return;            // uniform over the block
  const int head = int(blockIdx.z) % p.n_head, split = int(blockIdx.z) / p.n_head;
  const int rows = min(kRows, int(s.num_rows) - first);
  const int past = int(s.past_length);
  const std::int64_t C = p.C;
  const int block_size = int(p.block_size);
  // The cache through two pointers: rows below `past` are only read in this launch, so they go
  // through the read-only data path (ld.global.nc); the step's rows are only written.
  const T* __restrict__ cached_keys = p.keys + head * D;
  const T* __restrict__ cached_values = p.values + head * D;
  T* __restrict__ new_keys = p.keys + head * D;
  T* __restrict__ new_values = p.values + head * D;
  const T* __restrict__ step_rows = p.qkv + s.first_row * 3 * C + head * D;  // the slice's q
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;

  // The append, fused: the first split of each block of queries writes their keys and values (this
  // head's part) to the cache, and every block reads the step's own keys from qkv, never from the
  // cache, so that no block reads a row that another block of the launch writes.
  if (split == 0)
    for (int idx = int(threadIdx.x); idx < rows * kLoadsPerKey; idx += kThreads) {
      const int r = idx / kLoadsPerKey, d = idx % kLoadsPerKey * 4;
      const T* row = step_rows + std::int64_t(first + r) * 3 * C + C + d;  // its key
      const std::int64_t at = cache_row(s, past + first + r, block_size) * C + d;
      cuda_detail::copy4(new_keys + at, row);
      cuda_detail::copy4(new_values + at, row + C);
    }

  for (int idx = int(threadIdx.x); idx < kRows * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    q_s[r][d] =
        r < rows ? to_float(step_rows[std::int64_t(first + r) * 3 * C + d]) * p.scale_log2 : 0.0f;
  }

  // This split's keys that some query of the block may see.
  const KeyRange keys =
      split_keys(past + s.num_rows, past + first + rows - 1, p.splits, split, kKeys);
  const int key_begin = int(keys.begin), key_end = int(keys.end);

  // Per query of the warp. They stay in registers only while every index into them is a constant,
  // so each loop over i or k is unrolled; otherwise ptxas puts them in local memory
  // (tools/kernel_resources.py checks).
  float m[kRowsPerWarp], l[kRowsPerWarp], o[kRowsPerWarp][kDPerLane];
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
    for (int k = 0; k < kDPerLane; ++k) o[i][k] = 0.0f;
  }

  for (int tile = key_begin; tile < key_end; tile += kKeys) {
    __syncthreads();  // the previous tile is consumed (and q_s written, the first time)
    for (int idx = int(threadIdx.x); idx < kKeys * kLoadsPerKey; idx += kThreads) {
      const int j = idx / kLoadsPerKey, d = idx % kLoadsPerKey * 4;
      const int t = tile + j;
      float4 k = make_float4(0.0f, 0.0f, 0.0f, 0.0f), v = k;
      // Each branch loads through its own pointer: through one chosen between them, the loads
      // would lose the read-only path.
      if (t < key_end && t < past) {
        const std::int64_t at = cache_row(s, t, block_size) * C + d;
        k = cuda_detail::load4(cached_keys + at);
        v = cuda_detail::load4(cached_values + at);
      } else if (t < key_end) {  // this step's own key, from qkv
        const T* key = step_rows + std::int64_t(t - past) * 3 * C + C + d;
        k = cuda_detail::load4(key);
        v = cuda_detail::load4(key + C);
      }
      k_s[j][d] = k.x;
      k_s[j][d + 1] = k.y;
      k_s[j][d + 2] = k.z;
      k_s[j][d + 3] = k.w;
      *reinterpret_cast<float4*>(&v_s[j][d]) = v;
    }
    __syncthreads();

#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) {
      const int r = warp * kRowsPerWarp + i;
      const int position = past + first + r;
      if (r >= rows || tile > position) continue;  // uniform over the warp
      // Key `tile` is visible to this query, so the running max is finite after this tile.
      const int t = tile + lane;
      float score = 0.0f;
#pragma unroll 16
      for (int d = 0; d < D; ++d) score += q_s[r][d] * k_s[lane][d];
      const bool visible = t < key_end && t <= position;
      score = visible ? score : -INFINITY;
      const float m_new = fmaxf(m[i], cuda_detail::warp_max(score));
      const float correction = exp2f(m[i] - m_new);  // 0 on the first tile (m = -inf)
      const float prob = visible ? exp2f(score - m_new) : 0.0f;
      l[i] = l[i] * correction + cuda_detail::warp_sum(prob);
      for (int k = 0; k < kDPerLane; ++k) o[i][k] *= correction;
      for (int j = 0; j < kKeys; ++j) {
        const float pj = __shfl_sync(cuda_detail::kFullMask, prob, j);
        for (int k = 0; k < kDPerLane; ++k) {
          const int d = lane + 32 * k;
          if (D % 32 == 0 || d < D) o[i][k] += pj * v_s[j][d];
        }
      }
      m[i] = m_new;
    }
  }

#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    const int r = warp * kRowsPerWarp + i;
    if (r >= rows) continue;
    const std::int64_t row = s.first_row + first + r;
    if (p.splits == 1) {
      const float inverse = 1.0f / l[i];
      for (int k = 0; k < kDPerLane; ++k) {
        const int d = lane + 32 * k;
        if (D % 32 == 0 || d < D)
          p.out[row * C + head * D + d] = cuda_detail::from_float<T>(o[i][k] * inverse);
      }
    } else {  // an empty split (all its keys after the query) leaves max -inf, sum 0
      float* part = p.partial + ((row * p.n_head + head) * p.splits + split) * (D + 2);
      if (lane == 0) {
        part[0] = m[i];
        part[1] = l[i];
      }
      for (int k = 0; k < kDPerLane; ++k) {
        const int d = lane + 32 * k;
        if (D % 32 == 0 || d < D) part[2 + d] = o[i][k];
      }
    }
  }
  if (p.splits == 1) return;  // uniform over the grid

  // The last split of this block's queries to get here combines the partial results of all of
  // them (the threadFenceReduction pattern): each split's writes are made visible to the device
  // before its arrival is counted, and the block that counts the last arrival sees all of them.
  // Every split of a block of queries must arrive, even one with no keys: a split that returned
  // early would leave its counter short, the output unwritten, and every later launch wrong.
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned* arrivals =
        p.arrivals + (std::int64_t(blockIdx.x) * gridDim.y + blockIdx.y) * p.n_head + head;
    last = atomicAdd(arrivals, 1u) == unsigned(p.splits - 1);
    if (last) *arrivals = 0;  // every split has arrived: ready for the next launch
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    const int r = warp * kRowsPerWarp + i;
    if (r >= rows) continue;
    const std::int64_t row = s.first_row + first + r;
    // Written by other blocks of this launch: volatile, so that the reads go past this SM's L1
    // (and never through the read-only path).
    const volatile float* part = p.partial + (row * p.n_head + head) * p.splits * (D + 2);
    float max_score = -INFINITY;
    for (int k = 0; k < p.splits; ++k) max_score = fmaxf(max_score, part[k * (D + 2)]);
    // out = sum_k 2^(m_k - M) o_k / sum_k 2^(m_k - M) l_k; an empty split has weight 0.
    float sum = 0.0f, acc[kDPerLane] = {};
    for (int k = 0; k < p.splits; ++k) {
      const float weight = exp2f(part[k * (D + 2)] - max_score);
      sum += weight * part[k * (D + 2) + 1];
#pragma unroll
      for (int j = 0; j < kDPerLane; ++j) {
        const int d = lane + 32 * j;
        if (D % 32 == 0 || d < D) acc[j] += weight * part[k * (D + 2) + 2 + d];
      }
    }
#pragma unroll
    for (int j = 0; j < kDPerLane; ++j) {
      const int d = lane + 32 * j;
      if (D % 32 == 0 || d < D)
        p.out[row * C + head * D + d] = cuda_detail::from_float<T>(acc[j] / sum);
    }
  }
}

}  // namespace ctformer::ops::cuda_kernels
