// The CPU's matrix product for projections: weights packed once at load into column panels
// (ops/packed_matrix.hpp), and register-tiled kernels that stream them with the epilogue (bias,
// GELU, residual add) fused into the store.
//
// Why not Eigen's GEMM: it re-packs the weight matrix on every call (15% of a decode step on 2
// cores) and cannot fuse the epilogue. Packing once at load is what oneDNN does for torch.
//
// The kernels, fastest first: on x86, AVX-512 with AVX512_BF16 (bf16 pairs by VDPBF16PS),
// AVX-512F, and AVX2 with FMA (packed_matmul_avx512.hpp, packed_matmul_avx2.hpp); on AArch64, NEON
// with the BF16 extension (bf16 pairs by BFDOT) and NEON (packed_matmul_neon.hpp); other CPUs run
// Eigen's product panel by panel over the same packing. The kernel is chosen at run time, so a
// build without -march=native still gets the fastest one, and CTFORMER_CPU_KERNEL can name another
// (as CTranslate2's CT2_FORCE_CPU_ISA does): to compare them, or to rule one out.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "ctformer/core/error.hpp"
#include "ctformer/ops/packed_matmul_avx2.hpp"
#include "ctformer/ops/packed_matmul_avx512.hpp"
#include "ctformer/ops/packed_matmul_neon.hpp"
#include "ctformer/ops/packed_matrix.hpp"

#if CTFORMER_PACKED_X86
#include <cpuid.h>
#endif
#if CTFORMER_PACKED_NEON && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace ctformer::ops {
namespace packed {

// The kernels, fastest first; `best` is the fastest this CPU runs, or CTFORMER_CPU_KERNEL's.
// avx512_bf16 differs from avx512, and neon_bf16 from neon, only for bf16 weights.
enum class Kernel { best, avx512_bf16, avx512, avx2, neon_bf16, neon, portable };

inline constexpr Kernel kKernels[] = {Kernel::avx512_bf16, Kernel::avx512, Kernel::avx2,
                                      Kernel::neon_bf16,   Kernel::neon,   Kernel::portable};

// The kernel's name, as CTFORMER_CPU_KERNEL takes it ("best" for best).
inline const char* kernel_name(Kernel k) {
  switch (k) {
    case Kernel::avx512_bf16:
      return "avx512_bf16";
    case Kernel::avx512:
      return "avx512";
    case Kernel::avx2:
      return "avx2";
    case Kernel::neon_bf16:
      return "neon_bf16";
    case Kernel::neon:
      return "neon";
    case Kernel::portable:
      return "portable";
    case Kernel::best:
      break;
  }
  return "best";
}

// The kernel CTFORMER_CPU_KERNEL's value names, if any.
inline std::optional<Kernel> kernel_named(std::string_view name) {
  for (const Kernel k : kKernels)
    if (name == kernel_name(k)) return k;
  return std::nullopt;
}

// Whether this CPU has the instructions the kernel uses.
inline bool cpu_runs(Kernel k) {
#if CTFORMER_PACKED_X86
  // F16C by CPUID (leaf 1, ECX bit 29): clang 14's __builtin_cpu_supports does not know the name.
  // The AVX2 test covers the OS's saving of the registers. Asked once: matmul checks its kernel on
  // every call, and CPUID traps to the hypervisor in a VM (7.6 us each on the VM measured).
  static const bool f16c = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx >> 29 & 1u);
  }();
#endif
  switch (k) {
    case Kernel::portable:
    case Kernel::best:
      return true;
#if CTFORMER_PACKED_X86
    case Kernel::avx512_bf16:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
    case Kernel::avx512:
      return __builtin_cpu_supports("avx512f");
    case Kernel::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#endif
#if CTFORMER_PACKED_NEON
    case Kernel::neon:
      return true;  // Advanced SIMD, FP16 conversions included, is part of AArch64
    case Kernel::neon_bf16:
#if CTFORMER_NEON_BF16 && defined(__linux__)
      return getauxval(AT_HWCAP2) & HWCAP2_BF16;  // Linux's report of FEAT_BF16
#else
      return false;
#endif
#endif
    default:
      return false;
  }
}

// What `best` stands for, decided once: the kernel CTFORMER_CPU_KERNEL names, else the fastest this
// CPU runs. A name that is not a kernel, or a kernel this CPU cannot run, is a ConfigError (on
// every call, so that no product runs with a kernel nobody asked for).
inline Kernel best_kernel() {
  static const Kernel best = [] {
    const char* forced = std::getenv("CTFORMER_CPU_KERNEL");
    if (!forced || !*forced) {
      for (const Kernel k : kKernels)
        if (cpu_runs(k)) return k;
    }
    auto names = [](bool (*keep)(Kernel)) {
      std::string list;
      for (const Kernel k : kKernels)
        if (keep(k)) list += std::string(list.empty() ? "" : ", ") + kernel_name(k);
      return list;
    };
    const std::string runnable = names(cpu_runs);
    if (const auto k = kernel_named(forced)) {
      if (!cpu_runs(*k))
        throw ConfigError(std::string("CTFORMER_CPU_KERNEL=") + forced +
                          ": this CPU lacks the instructions of that kernel; it runs " + runnable +
                          " (unset the variable for the fastest)");
      return *k;
    }
    throw ConfigError(std::string("CTFORMER_CPU_KERNEL=") + forced +
                      " is not a kernel: expected one of " + names([](Kernel) { return true; }) +
                      " (this CPU runs " + runnable + "), or unset for the fastest");
  }();
  return best;
}

inline const char* best_kernel_name() {
  return kernel_name(best_kernel());
}

// The bias of panel p as 32 floats, zero past the end (and all zero for Epilogue::none).
template <class T>
void panel_bias(std::span<const T> bias, std::int64_t p, std::int64_t N, float* out) {
  for (std::int64_t j = 0; j < kPanel; ++j) {
    const std::int64_t n = p * kPanel + j;
    out[j] = n < N && !bias.empty() ? static_cast<float>(bias[std::size_t(n)]) : 0.0f;
  }
}

// f.template operator()<rows>() for a run-time `rows` in [1, kMaxRows].
template <class F, int... R>
void with_rows(int rows, F&& f, std::integer_sequence<int, R...>) {
  ((rows == R + 1 ? f.template operator()<R + 1>() : void()), ...);
}

// out (M, N) (epilogue)= x (M, K) W (K, N) + bias, x rounded to bf16 when W is bf16. Parallel over
// panels of W (OpenMP when the translation unit is built with it). `kernel` must be one this CPU
// runs (cpu_runs).
template <class T>
void matmul(MatrixView<const float> x, const PackedMatrix<T>& w, std::span<const T> bias,
            Epilogue epilogue, MatrixView<float> out, Kernel kernel = Kernel::best) {
  const std::int64_t M = x.rows, K = w.in(), N = w.out(), panels = w.panels();
  if (kernel == Kernel::best) kernel = best_kernel();
  if (!cpu_runs(kernel))
    throw ConfigError(std::string("the ") + kernel_name(kernel) +
                      " projection kernel was asked for, but this CPU lacks its instructions");
#if CTFORMER_PACKED_X86 || CTFORMER_PACKED_NEON
  if (kernel != Kernel::portable) {
    const std::int64_t depth = w.depth();
    // x once, in row tiles of near-equal height, interleaved, shared by every thread. Equal tiles
    // (64 rows: 6 tiles of 10 or 11, not 5 of 12 and one of 4) keep every tile's FMA chains full.
    // The threads pack x's tiles, then share the panels: packing before the team started left the
    // other threads waiting (3.5% of a bf16 seed-workload run on 2 cores).
    const std::int64_t tiles = (M + kMaxRows - 1) / kMaxRows;
    auto tile_start = [M, tiles](std::int64_t t) { return t * M / tiles; };
    // `lanes`: elements of a per row of x; tile<R>(a, panel, bias, c, cols) runs one tile.
    auto run = [&]<class A>(A* a, std::int64_t lanes, auto pack, auto tile) {
      CTFORMER_PARALLEL {
        CTFORMER_FOR
        for (std::int64_t t = 0; t < tiles; ++t)
          pack(tile_start(t), int(tile_start(t + 1) - tile_start(t)), a + tile_start(t) * lanes);
        CTFORMER_FOR
        for (std::int64_t p = 0; p < panels; ++p) {
          alignas(64) float b[kPanel];
          panel_bias(bias, p, N, b);
          const int cols = int(std::min<std::int64_t>(kPanel, N - p * kPanel));
          for (std::int64_t t = 0; t < tiles; ++t) {
            const std::int64_t row = tile_start(t);
            with_rows(
                int(tile_start(t + 1) - row),
                [&]<int R>() {
                  tile.template operator()<R>(a + row * lanes, w.panel(p), b,
                                              out.row(row) + p * kPanel, cols);
                },
                std::make_integer_sequence<int, kMaxRows>{});
          }
        }
      }
    };
    // bf16 pairs of x for the kernels that multiply pairs (VDPBF16PS, BFDOT).
    if constexpr (kInputsPerLane<T> == 2) {
      thread_local std::vector<std::uint32_t> pairs;
      [[maybe_unused]] auto run_pairs = [&](auto pack, auto tile) {
        pairs.resize(std::size_t(M * depth / 2));
        return run(pairs.data(), depth / 2, pack, tile);
      };
#if CTFORMER_PACKED_X86
      if (kernel == Kernel::avx512_bf16)
        return run_pairs(
            [&](std::int64_t row, int rows, std::uint32_t* a) {
              avx512::pack_row_pairs(x, row, rows, depth, a);
            },
            [&]<int R>(const std::uint32_t* a, const T* b, const float* bias_, float* c, int cols) {
              avx512::tile_pairs<R>(depth, a, b, bias_, epilogue, c, out.cols, cols);
            });
#elif CTFORMER_NEON_BF16
      if (kernel == Kernel::neon_bf16)
        return run_pairs(
            [&](std::int64_t row, int rows, std::uint32_t* a) {
              neon::pack_row_pairs(x, row, rows, depth, a);
            },
            [&]<int R>(const std::uint32_t* a, const T* b, const float* bias_, float* c, int cols) {
              neon::tile<R>(depth, a, b, bias_, epilogue, c, out.cols, cols);
            });
#endif
    }
    thread_local std::vector<float> packed_x;
    packed_x.resize(std::size_t(M * depth));
    auto pack = [&](std::int64_t row, int rows, float* a) { pack_rows<T>(x, row, rows, depth, a); };
#if CTFORMER_PACKED_X86
    if (kernel == Kernel::avx2)
      return run(packed_x.data(), depth, pack,
                 [&]<int R>(const float* a, const T* b, const float* bias_, float* c, int cols) {
                   avx2::tile<R, T>(depth, a, b, bias_, epilogue, c, out.cols, cols);
                 });
    return run(packed_x.data(), depth, pack,
               [&]<int R>(const float* a, const T* b, const float* bias_, float* c, int cols) {
                 avx512::tile<R, T>(depth, a, b, bias_, epilogue, c, out.cols, cols);
               });
#else
    return run(packed_x.data(), depth, pack,
               [&]<int R>(const float* a, const T* b, const float* bias_, float* c, int cols) {
                 neon::tile<R>(depth, a, b, bias_, epilogue, c, out.cols, cols);
               });
#endif
  }
#endif
  // Portable path: Eigen's product of x with each panel, written straight into out's columns. bf16
  // panels are unpacked from their pairs first, and x rounded as the other kernels round it.
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  constexpr bool kBf16 = kInputsPerLane<T> == 2;
  RowMajor rounded;
  if constexpr (kBf16)
    rounded = Eigen::Map<const RowMajor>(x.data, M, K).unaryExpr([](float v) {
      return round_to_bf16(v);
    });
  const Eigen::Map<const RowMajor> X(kBf16 ? rounded.data() : x.data, M, K);
  CTFORMER_PARALLEL_FOR
  for (std::int64_t p = 0; p < panels; ++p) {
    const std::int64_t cols = std::min<std::int64_t>(kPanel, N - p * kPanel);
    Eigen::Map<RowMajor, 0, Stride> Y(out.data + p * kPanel, M, cols, Stride(out.cols));
    auto product = [&] {
      using Panel = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      if constexpr (std::is_same_v<T, float>) {
        return X * Eigen::Map<const Panel, 0, Stride>(w.panel(p), K, cols, Stride(kPanel));
      } else if constexpr (!kBf16) {
        return X * Eigen::Map<const Panel, 0, Stride>(w.panel(p), K, cols, Stride(kPanel))
                       .template cast<float>();
      } else {
        RowMajor W(K, cols);
        for (std::int64_t k = 0; k < K; ++k)
          for (std::int64_t j = 0; j < cols; ++j)
            W(k, j) = static_cast<float>(w(k, p * kPanel + j));
        return RowMajor(X * W);
      }
    };
    if (epilogue == Epilogue::bias_residual)
      Y.noalias() += product();
    else
      Y.noalias() = product();
    if (epilogue == Epilogue::none) continue;
    float b[kPanel];
    panel_bias(bias, p, N, b);
    for (std::int64_t r = 0; r < M; ++r)
      for (std::int64_t j = 0; j < cols; ++j) {
        const float y = Y(r, j) + b[j];
        Y(r, j) = epilogue == Epilogue::bias_gelu ? gelu_tanh(y) : y;
      }
  }
}

}  // namespace packed
}  // namespace ctformer::ops
