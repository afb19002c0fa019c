// CUDA projections. Up to kGemvMaxRows rows of x (decode at small batch), our own gemv_kernel
// (ops/linear_kernels.cuh), which streams the weight once with the epilogue fused; beyond that,
// cuBLASLt, with the epilogues fused into the GEMM:
//   bias          -> CUBLASLT_EPILOGUE_BIAS
//   bias_gelu     -> CUBLASLT_EPILOGUE_GELU_BIAS. cuBLASLt's GELU is the tanh approximation that
//                    GPT-2 uses (PyTorch relies on this for gelu(approximate="tanh") in
//                    _addmm_activation); tests/cuda checks it against ops::Linear<cpu>. If cuBLASLt
//                    offers no algorithm for it, a bias GEMM is followed by our own GELU kernel.
//   bias_residual -> CUBLASLT_EPILOGUE_BIAS with beta = 1 and C = D = the residual stream, so the
//                    residual add costs no extra pass over memory
//   none          -> the plain GEMM (the tied LM head)
// Compute is fp32 for every storage type (CUBLAS_COMPUTE_32F: no TF32 for fp32 inputs).
#pragma once

#include <cublasLt.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "ctformer/backends/cuda.hpp"
#include "ctformer/core/matrix_view.hpp"
#include "ctformer/ops/layer_norm.cuh"
#include "ctformer/ops/linear.hpp"
#include "ctformer/ops/linear_kernels.cuh"

namespace ctformer::ops {
namespace cuda_gemm {

// RAII for the cuBLASLt descriptors of one call (host objects: creating them allocates nothing on
// the device).
struct MatmulDesc {
  cublasLtMatmulDesc_t desc = nullptr;
  MatmulDesc() {
    CTFORMER_CUDA_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  }
  ~MatmulDesc() { cublasLtMatmulDescDestroy(desc); }
  template <class V>
  void set(cublasLtMatmulDescAttributes_t attribute, const V& value) {
    CTFORMER_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)));
  }
};

struct Layout {
  cublasLtMatrixLayout_t layout = nullptr;
  Layout(cudaDataType_t type, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
    CTFORMER_CUDA_CHECK(
        cublasLtMatrixLayoutCreate(&layout, type, std::uint64_t(rows), std::uint64_t(cols), ld));
  }
  ~Layout() { cublasLtMatrixLayoutDestroy(layout); }
};

// D = epilogue(alpha * op(A) B + beta * C) in cuBLASLt's column-major terms, with C = D.
// Returns false, having done nothing, when cuBLASLt has no algorithm for this epilogue.
template <class T>
bool matmul(bool transpose_a, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
            std::int64_t lda, const T* b, std::int64_t ldb, T* d, std::int64_t ldd,
            cublasLtEpilogue_t epilogue, const T* bias, float beta) {
  cuda_detail::Context& context = cuda_detail::context();
  constexpr cudaDataType_t type = cuda_detail::cuda_data_type<T>();

  MatmulDesc desc;
  const cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = CUBLAS_OP_N;
  desc.set(CUBLASLT_MATMUL_DESC_TRANSA, op_a);
  desc.set(CUBLASLT_MATMUL_DESC_TRANSB, op_b);
  desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
  if (bias) desc.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
  const Layout layout_a(type, transpose_a ? k : m, transpose_a ? m : k, lda);
  const Layout layout_b(type, k, n, ldb);
  const Layout layout_d(type, m, n, ldd);

  // The heuristic's choice depends on the shape, the epilogue and the pointers' alignment: it is
  // asked once per combination, then remembered. It is told each operand's alignment (it assumes
  // 256 bytes otherwise, and may pick an algorithm that fails on a view that starts mid-row).
  auto alignment = [](const void* p) {
    return std::uint32_t(std::min<std::uintptr_t>(
        256, std::uintptr_t(1) << std::countr_zero(reinterpret_cast<std::uintptr_t>(p) | 256)));
  };
  const std::uint32_t align_a = alignment(a), align_b = alignment(b), align_d = alignment(d);
  const cuda_detail::Context::GemmKey key{.type = int(type),
                                          .epilogue = int(epilogue),
                                          .transpose_a = transpose_a,
                                          .beta = beta != 0,
                                          .m = m,
                                          .n = n,
                                          .k = k,
                                          .lda = lda,
                                          .ldb = ldb,
                                          .ldd = ldd,
                                          .align_a = align_a,
                                          .align_b = align_b,
                                          .align_d = align_d,
                                          .align_bias = bias ? alignment(bias) : 0};
  auto choice = context.gemm_choices().find(key);
  if (choice == context.gemm_choices().end()) {  // remembered only once asked without an error
    cublasLtMatmulPreference_t preference = nullptr;
    CTFORMER_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&preference));
    const std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>,
                          decltype(&cublasLtMatmulPreferenceDestroy)>
        guard(preference, &cublasLtMatmulPreferenceDestroy);
    const std::size_t workspace = context.blas_workspace_bytes();
    CTFORMER_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
    for (const auto& [attribute, bytes] :
         {std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a},
          std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b},
          std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_d},
          std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_d}})
      CTFORMER_CUDA_CHECK(
          cublasLtMatmulPreferenceSetAttribute(preference, attribute, &bytes, sizeof(bytes)));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
        context.blas(), desc.desc, layout_a.layout, layout_b.layout, layout_d.layout,
        layout_d.layout, preference, 1, &result, &found);
    if (status != CUBLAS_STATUS_NOT_SUPPORTED) CTFORMER_CUDA_CHECK(status);
    const bool usable =
        status == CUBLAS_STATUS_SUCCESS && found > 0 && result.state == CUBLAS_STATUS_SUCCESS;
    choice = context.gemm_choices()
                 .emplace(key, cuda_detail::Context::GemmChoice{usable, result.algo})
                 .first;
  }
  if (!choice->second.found) return false;

  const float alpha = 1.0f;
  CTFORMER_CUDA_CHECK(cublasLtMatmul(context.blas(), desc.desc, &alpha, a, layout_a.layout, b,
                                     layout_b.layout, &beta, d, layout_d.layout, d, layout_d.layout,
                                     &choice->second.algo, context.blas_workspace(),
                                     context.blas_workspace_bytes(), context.stream()));
  return true;
}

}  // namespace cuda_gemm

template <>
struct Linear<cuda> {
  // A weight is kept (out, in) in device memory: the rows that gemv_kernel streams, and for
  // cuBLASLt the transposed operand of the usual "TN" GEMM.
  template <class T>
  struct Weight {
    cuda::buffer<T> data;
    std::int64_t out = 0, in = 0;
    MatrixView<const T> view() const { return {data.data(), out, in}; }
  };

  // A checkpoint's (in, out) weight is transposed once, here; an (out, in) one is kept as it is.
  template <cuda_detail::DeviceElement T>
  static Weight<T> prepare(cuda::buffer<T> w, std::int64_t rows, std::int64_t cols,
                           WeightLayout layout) {
    if (layout == WeightLayout::out_in) return {std::move(w), rows, cols};
    if (rows == 0 || cols == 0) return {cuda::buffer<T>(0), cols, rows};
    using cuda_kernels::kTransposeTile;
    const std::int64_t row_tiles = cuda_detail::ceil_div(rows, kTransposeTile);
    if (row_tiles > 65535)
      throw InputError("Linear: a weight of " + std::to_string(rows) +
                       " inputs is more than the transpose's grid allows (" +
                       std::to_string(65535 * kTransposeTile) + ")");
    cuda::buffer<T> transposed(w.size());
    cuda_detail::launch(
        cuda_kernels::transpose_kernel<T>,
        dim3(unsigned(cuda_detail::ceil_div(cols, kTransposeTile)), unsigned(row_tiles)),
        dim3(kTransposeTile, cuda_kernels::kTransposeRowsPerPass), w.data(), rows, cols,
        transposed.data());
    CTFORMER_CUDA_CHECK_LAUNCH("transpose_kernel");
    CTFORMER_CUDA_CHECK(cudaStreamSynchronize(cuda_detail::stream()));  // before `w` is freed
    return {std::move(transposed), cols, rows};
  }

  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const std::type_identity_t<T>> x, const Weight<T>& w,
                  std::span<const std::type_identity_t<T>> bias, Epilogue epilogue,
                  MatrixView<T> out) {
    run<T>(x, w.view(), WeightLayout::out_in, bias, epilogue, out);
  }

  // out = epilogue(norm(x) W + bias): inside gemv_kernel where that runs (in.normed is then not
  // written), else the norm kernel into in.normed and then the product.
  template <cuda_detail::DeviceElement T>
  static void run(const NormedRows<T, std::type_identity_t<T>>& in, const Weight<T>& w,
                  std::span<const std::type_identity_t<T>> bias, Epilogue epilogue,
                  MatrixView<T> out) {
    check_norm_shapes(in);
    if (in.norm.gamma.empty()) return run<T>(in.x, w, bias, epilogue, out);
    check_linear_shapes(in.x, w.view(), WeightLayout::out_in, bias.size(), epilogue, out);
    if (in.x.rows == 0 || out.cols == 0) return;
    // Fused, the GEMV reads in.x while it writes out: not when they overlap (a mixer whose first
    // projection adds to the residual it reads), nor when switched off (Context::fuse_norms).
    const bool overlap = in.x.data < out.data + out.size() && out.data < in.x.data + in.x.size();
    if (!overlap && cuda_detail::context().fuse_norms() &&
        gemv<T>(in.x, w.view(), WeightLayout::out_in, bias, epilogue, out, &in.norm))
      return;
    if (in.norm.beta.empty())
      cuda_kernels::launch_row_norm<T, false>(in.x, in.norm.gamma.data(), nullptr, in.norm.eps,
                                              in.normed);
    else
      cuda_kernels::launch_row_norm<T, true>(in.x, in.norm.gamma.data(), in.norm.beta.data(),
                                             in.norm.eps, in.normed);
    run<T>(MatrixView<const T>(in.normed), w, bias, epilogue, out);
  }

  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const std::type_identity_t<T>> x,  // (N, K)
                  MatrixView<const std::type_identity_t<T>> w,  // (K, M) in_out, (M, K) out_in
                  WeightLayout layout,
                  std::span<const std::type_identity_t<T>> bias,  // (M), empty for none
                  Epilogue epilogue,
                  MatrixView<T> out) {  // (N, M)
    check_linear_shapes(x, w, layout, bias.size(), epilogue, out);
    const std::int64_t N = x.rows, K = x.cols, M = out.cols;
    if (N == 0 || M == 0) return;
    if (gemv(x, w, layout, bias, epilogue, out)) return;
    // Row-major out (N, M) is column-major (M, N) = op(W) (M, K) x X^T (K, N): W row-major (K, M)
    // is column-major (M, K), used as is; W row-major (M, K) is column-major (K, M), transposed.
    const bool transpose_w = layout == WeightLayout::out_in;
    const std::int64_t ldw = transpose_w ? K : M;
    const T* b = epilogue == Epilogue::none ? nullptr : bias.data();
    const float beta = epilogue == Epilogue::bias_residual ? 1.0f : 0.0f;
    auto gemm = [&](cublasLtEpilogue_t e) {
      return cuda_gemm::matmul<T>(transpose_w, M, N, K, w.data, ldw, x.data, K, out.data, M, e, b,
                                  beta);
    };
    const char* what = "cublasLtMatmul";
    switch (epilogue) {
      case Epilogue::none:
        if (gemm(CUBLASLT_EPILOGUE_DEFAULT)) return;
        break;
      case Epilogue::bias:
      case Epilogue::bias_residual:
        if (gemm(CUBLASLT_EPILOGUE_BIAS)) return;
        break;
      case Epilogue::bias_gelu:
        if (gemm(CUBLASLT_EPILOGUE_GELU_BIAS)) return;
        if (gemm(CUBLASLT_EPILOGUE_BIAS)) {  // our own GELU, in a second pass
          const std::int64_t n = N * M;
          const auto blocks = unsigned(
              std::min<std::int64_t>(cuda_detail::ceil_div(n, cuda_kernels::kGeluThreads), 65535));
          cuda_detail::launch(cuda_kernels::gelu_kernel<T>, blocks, cuda_kernels::kGeluThreads,
                              out.data, n);
          CTFORMER_CUDA_CHECK_LAUNCH("gelu_kernel");
          return;
        }
        break;
    }
    throw CudaError(std::string(what) + ": cuBLASLt has no algorithm for a " +
                        std::string(cuda_detail::dtype_name<T>()) + " GEMM of (" +
                        std::to_string(N) + " x " + std::to_string(K) + ") by (" +
                        std::to_string(K) + " x " + std::to_string(M) + ") on this GPU",
                    int(CUBLAS_STATUS_NOT_SUPPORTED));
  }

  // Whether run() takes gemv_kernel for these operands: few rows, an (out, in) weight (as every
  // prepared Weight is), rows of x and w that are whole 16-byte pieces, and not switched off
  // (Context::use_gemv). Otherwise cuBLASLt runs. A norm fused into it also needs 16-byte aligned
  // gamma and beta.
  template <cuda_detail::DeviceElement T>
  static bool runs_as_gemv(MatrixView<const std::type_identity_t<T>> x,
                           MatrixView<const std::type_identity_t<T>> w, WeightLayout layout) {
    auto aligned = [](const T* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
    return x.rows <= cuda_kernels::kGemvMaxRows && layout == WeightLayout::out_in &&
           x.cols * std::int64_t(sizeof(T)) % 16 == 0 && aligned(x.data) && aligned(w.data) &&
           cuda_detail::context().use_gemv();
  }

 private:
  template <class T>
  static bool gemv(MatrixView<const T> x, MatrixView<const T> w, WeightLayout layout,
                   std::span<const T> bias, Epilogue epilogue, MatrixView<T> out,
                   const RowNorm<T>* norm = nullptr) {
    auto aligned = [](std::span<const T> v) {
      return reinterpret_cast<std::uintptr_t>(v.data()) % 16 == 0;
    };
    if (!runs_as_gemv<T>(x, w, layout) || (norm && !(aligned(norm->gamma) && aligned(norm->beta))))
      return false;
    const std::int64_t N = x.rows;
    const auto params = cuda_kernels::gemv_params<T>(
        x.data, w.data, epilogue == Epilogue::none ? nullptr : bias.data(), out.data, N, x.cols,
        out.cols, epilogue, norm ? norm->gamma.data() : nullptr,
        norm && !norm->beta.empty() ? norm->beta.data() : nullptr, norm ? norm->eps : 0.0f);
    // Enough blocks to fill every SM several times over; more would only repeat the prologue.
    const unsigned blocks = cuda_kernels::gemv_blocks(
        params, std::int64_t(cuda_detail::context().device().multiprocessors) * 8);
    const auto launch = [&]<int kRows>() {
      cuda_detail::launch(cuda_kernels::gemv_kernel<T, kRows>, blocks,
                          cuda_kernels::kGemvWarps * 32, params);
    };
    if (N == 1)
      launch.template operator()<1>();
    else if (N == 2)
      launch.template operator()<2>();
    else if (N <= 4)
      launch.template operator()<4>();
    else
      launch.template operator()<8>();
    CTFORMER_CUDA_CHECK_LAUNCH("gemv_kernel");
    return true;
  }
};

}  // namespace ctformer::ops
