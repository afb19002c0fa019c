// CUDA projections through cuBLASLt, with the epilogues fused into the GEMM:
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
#include "ctformer/ops/linear.hpp"

namespace ctformer::ops {
namespace cuda_kernels {

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

}  // namespace cuda_kernels

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
  const cuda_detail::Context::GemmKey key{std::int64_t(type) * 2 + transpose_a,
                                          m,
                                          n,
                                          k,
                                          std::int64_t(epilogue) * 2 + (beta != 0),
                                          std::int64_t(align_a) << 18 | align_b << 9 | align_d,
                                          bias ? alignment(bias) : 0,
                                          lda * 1'000'003 + ldb * 1'009 + ldd};
  auto [choice, inserted] = context.gemm_choices().try_emplace(key);
  if (inserted) {
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
    if (status != CUBLAS_STATUS_SUCCESS && status != CUBLAS_STATUS_NOT_SUPPORTED) {
      context.gemm_choices().erase(choice);  // ask again next time, rather than remember a failure
      CTFORMER_CUDA_CHECK(status);
    }
    choice->second.found = status == CUBLAS_STATUS_SUCCESS && found > 0;
    choice->second.algo = result.algo;
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
  // cuBLASLt reads the checkpoint's layout directly, so a weight is its device buffer as stored.
  template <class T>
  struct Weight {
    cuda::buffer<T> data;
    std::int64_t rows = 0, cols = 0;  // as stored: (in, out) if in_out, (out, in) if out_in
    WeightLayout layout = WeightLayout::in_out;
    MatrixView<const T> view() const { return {data.data(), rows, cols}; }
  };

  template <class T>
  static Weight<T> prepare(cuda::buffer<T> w, std::int64_t rows, std::int64_t cols,
                           WeightLayout layout) {
    return {std::move(w), rows, cols, layout};
  }

  template <cuda_detail::DeviceElement T>
  static void run(MatrixView<const std::type_identity_t<T>> x, const Weight<T>& w,
                  std::span<const std::type_identity_t<T>> bias, Epilogue epilogue,
                  MatrixView<T> out) {
    run<T>(x, w.view(), w.layout, bias, epilogue, out);
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
    if (N == 0) return;
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
          cuda_kernels::gelu_kernel<T>
              <<<blocks, cuda_kernels::kGeluThreads, 0, cuda_detail::stream()>>>(out.data, n);
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
};

}  // namespace ctformer::ops
