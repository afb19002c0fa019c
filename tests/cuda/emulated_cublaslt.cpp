// The cuBLASLt of tests/cuda's CPU emulation of the CUDA backend: linked in place of libcublasLt,
// it runs on the host the part of the API that ops/linear.cuh uses (one GEMM with fp32 compute and
// a DEFAULT, BIAS or GELU_BIAS epilogue, in fp32, fp16 or bf16), "device" memory being host memory.
// It is stricter than it needs to be: every call is checked against what real cuBLASLt requires
// (shapes, leading dimensions, types, attribute sizes, the alignments promised to the heuristic, an
// algo used only for the problem it was chosen for, inputs that do not alias the output), and a
// violation returns an error status with one line on stderr naming it, so that misuse fails here,
// in a test, rather than as a wrong result or a crash on some GPU.
#include "cuda/emulated_runtime.hpp"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

bool refuse_gelu_epilogue = false;  // ctformer::emulation::set_refuse_gelu_epilogue

struct Handle {};

// The attributes from COMPUTE_TYPE (0) to EPILOGUE (7), each an int32_t or a uint32_t, by id; then
// the bias pointer.
struct Desc {
  std::array<std::int32_t, CUBLASLT_MATMUL_DESC_EPILOGUE + 1> value;
  const void* bias = nullptr;
  std::int32_t operator[](cublasLtMatmulDescAttributes_t attr) const { return value[attr]; }
};

struct Layout {
  cudaDataType_t type;
  long long rows, cols, ld;
};

struct Preference {
  std::uint32_t alignment[4] = {256, 256, 256, 256};  // A, B, C, D: what cuBLASLt assumes unset
};

// What an algo from the heuristic holds in its data[]: the alignments that Matmul's pointers must
// have (A, B, C, D as promised in the preference, the bias as seen in the descriptor), the
// workspace it needs, the problem it was chosen for, and a seal that a zeroed or forged algo lacks.
enum Slot { kAlignA, kAlignB, kAlignC, kAlignD, kAlignBias, kWorkspace, kSignature, kSeal };

template <class T, class H>
T* get(H handle) {
  return reinterpret_cast<T*>(handle);
}

__attribute__((format(printf, 3, 4))) cublasStatus_t fail(cublasStatus_t status, const char* who,
                                                          const char* format, ...) {
  std::fprintf(stderr, "emulated %s: ", who);
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
  return status;
}

template <class T, class H, class... Args>
cublasStatus_t create(H* out, const char* who, Args... args) {
  if (!out) return fail(CUBLAS_STATUS_INVALID_VALUE, who, "null pointer to the new object");
  *out = reinterpret_cast<H>(new T{args...});
  return CUBLAS_STATUS_SUCCESS;
}

template <class T, class H>
cublasStatus_t destroy(H object) {
  delete get<T>(object);  // null, as in cuBLASLt, is nothing to destroy
  return CUBLAS_STATUS_SUCCESS;
}

std::size_t element_size(cudaDataType_t type) {
  return type == CUDA_R_32F ? 4 : type == CUDA_R_16F || type == CUDA_R_16BF ? 2 : 0;
}

float load(cudaDataType_t type, const void* p, long long i) {
  if (type == CUDA_R_16F) return __half2float(static_cast<const __half*>(p)[i]);
  if (type == CUDA_R_16BF) return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
  return static_cast<const float*>(p)[i];
}

void store(cudaDataType_t type, void* p, long long i, float v) {
  if (type == CUDA_R_16F)
    static_cast<__half*>(p)[i] = __float2half_rn(v);
  else if (type == CUDA_R_16BF)
    static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  else
    static_cast<float*>(p)[i] = v;
}

// The same measure as ops/linear.cuh's: the largest power of two dividing p, at most 256.
std::uint64_t alignment(const void* p) {
  return std::uint64_t(1) << std::countr_zero(reinterpret_cast<std::uintptr_t>(p) | 256);
}

std::uint64_t hash(const std::uint64_t* words, int n) {  // FNV-1a, a word at a time
  std::uint64_t h = 0xcbf29ce484222325;
  for (int i = 0; i < n; ++i) h = (h ^ words[i]) * 0x100000001b3;
  return h;
}

std::uint64_t signature(const Desc& o, const Layout* const (&l)[4]) {
  std::vector<std::uint64_t> words(o.value.begin(), o.value.end());
  for (const Layout* x : l)
    words.insert(words.end(), {std::uint64_t(x->type), std::uint64_t(x->rows),
                               std::uint64_t(x->cols), std::uint64_t(x->ld)});
  return hash(words.data(), int(words.size()));
}

std::uint64_t seal(const cublasLtMatmulAlgo_t& algo) {
  return hash(algo.data, kSeal) ^ 0x656d756c61746564;  // a zeroed algo hashes to no valid seal
}

// The checks that the heuristic and Matmul share: everything that does not involve memory.
cublasStatus_t check_problem(const char* who, cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                             const Layout* const (&l)[4]) {
  if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, who, "null cublasLtHandle_t");
  if (!desc) return fail(CUBLAS_STATUS_INVALID_VALUE, who, "null cublasLtMatmulDesc_t");
  const char* names = "ABCD";
  for (int i = 0; i < 4; ++i)
    if (!l[i]) return fail(CUBLAS_STATUS_INVALID_VALUE, who, "null layout for %c", names[i]);
  const Desc& o = *get<Desc>(desc);
  if (o[CUBLASLT_MATMUL_DESC_COMPUTE_TYPE] != CUBLAS_COMPUTE_32F ||
      o[CUBLASLT_MATMUL_DESC_SCALE_TYPE] != CUDA_R_32F)
    return fail(CUBLAS_STATUS_INVALID_VALUE, who,
                "compute type %d and scale type %d, not CUBLAS_COMPUTE_32F and CUDA_R_32F",
                o[CUBLASLT_MATMUL_DESC_COMPUTE_TYPE], o[CUBLASLT_MATMUL_DESC_SCALE_TYPE]);
  // The rest is emulated as ops/linear.cuh uses it: alpha and beta single floats (in host or
  // device memory, the same here), C untransposed, the full matrix.
  const std::int32_t trans_a = o[CUBLASLT_MATMUL_DESC_TRANSA],
                     trans_b = o[CUBLASLT_MATMUL_DESC_TRANSB];
  const bool ta = trans_a == CUBLAS_OP_T, tb = trans_b == CUBLAS_OP_T;
  const std::uint32_t epilogue = o[CUBLASLT_MATMUL_DESC_EPILOGUE];
  if ((!ta && trans_a != CUBLAS_OP_N) || (!tb && trans_b != CUBLAS_OP_N) ||
      std::uint32_t(o[CUBLASLT_MATMUL_DESC_POINTER_MODE]) > CUBLASLT_POINTER_MODE_DEVICE ||
      o[CUBLASLT_MATMUL_DESC_TRANSC] != CUBLAS_OP_N ||
      o[CUBLASLT_MATMUL_DESC_FILL_MODE] != CUBLAS_FILL_MODE_FULL ||
      (epilogue != CUBLASLT_EPILOGUE_DEFAULT && epilogue != CUBLASLT_EPILOGUE_BIAS &&
       epilogue != CUBLASLT_EPILOGUE_GELU_BIAS))
    return fail(CUBLAS_STATUS_NOT_SUPPORTED, who,
                "not emulated: transa %d, transb %d, pointer mode %d, transc %d, fill mode %d or "
                "epilogue %u (only DEFAULT, BIAS, GELU_BIAS)",
                trans_a, trans_b, o[CUBLASLT_MATMUL_DESC_POINTER_MODE],
                o[CUBLASLT_MATMUL_DESC_TRANSC], o[CUBLASLT_MATMUL_DESC_FILL_MODE], epilogue);
  const Layout &a = *l[0], &b = *l[1], &c = *l[2], &d = *l[3];
  for (int i = 0; i < 4; ++i) {
    const Layout& x = *l[i];
    if (!element_size(x.type))
      return fail(CUBLAS_STATUS_INVALID_VALUE, who,
                  "type %d of %c is not CUDA_R_32F, CUDA_R_16F or CUDA_R_16BF", int(x.type),
                  names[i]);
    if (x.type != d.type)
      return fail(CUBLAS_STATUS_INVALID_VALUE, who, "type %d of %c differs from D's type %d",
                  int(x.type), names[i], int(d.type));
    if (x.ld < x.rows)
      return fail(CUBLAS_STATUS_INVALID_VALUE, who, "ld%c %lld < rows %lld of %c",
                  names[i] + 'a' - 'A', x.ld, x.rows, names[i]);
    if (x.ld < 1)  // as BLAS requires, even of a matrix of no rows
      return fail(CUBLAS_STATUS_INVALID_VALUE, who, "ld%c %lld < 1", names[i] + 'a' - 'A', x.ld);
  }
  if (c.rows != d.rows || c.cols != d.cols || c.ld != d.ld)
    return fail(CUBLAS_STATUS_INVALID_VALUE, who,
                "C (%lld x %lld, ld %lld) and D (%lld x %lld, ld %lld) have different layouts",
                c.rows, c.cols, c.ld, d.rows, d.cols, d.ld);
  const long long a_rows = ta ? a.cols : a.rows, a_cols = ta ? a.rows : a.cols;
  const long long b_rows = tb ? b.cols : b.rows, b_cols = tb ? b.rows : b.cols;
  if (a_rows != d.rows || b_cols != d.cols || a_cols != b_rows)
    return fail(CUBLAS_STATUS_INVALID_VALUE, who,
                "op(A) (%lld x %lld) times op(B) (%lld x %lld) does not make D (%lld x %lld)",
                a_rows, a_cols, b_rows, b_cols, d.rows, d.cols);
  if (epilogue != CUBLASLT_EPILOGUE_DEFAULT && !o.bias)
    return fail(CUBLAS_STATUS_INVALID_VALUE, who, "epilogue %u without a BIAS_POINTER", epilogue);
  return CUBLAS_STATUS_SUCCESS;
}

// Bytes from the start of a column-major matrix to the end of its last element.
std::uintptr_t extent(const Layout& l) {
  return l.rows && l.cols ? ((l.cols - 1) * l.ld + l.rows) * element_size(l.type) : 0;
}

// Operands converted once to float, op(A) by rows and op(B) by columns, so that each element of D
// is a dot product of two contiguous runs; summed in double, so that what a test measures is the
// error of the code under test, not the emulation's.
void gemm(cudaDataType_t type, bool ta, bool tb, long long m, long long n, long long k,
          const void* A, long long lda, const void* B, long long ldb, const void* C, void* D,
          long long ldd, float alpha_value, float beta_value, const void* bias, bool gelu) {
  std::vector<float> a_rows(std::size_t(m * k)), b_cols(std::size_t(n * k));
  for (long long i = 0; i < m; ++i)
    for (long long p = 0; p < k; ++p)
      a_rows[i * k + p] = load(type, A, ta ? p + i * lda : i + p * lda);
  for (long long j = 0; j < n; ++j)
    for (long long p = 0; p < k; ++p)
      b_cols[j * k + p] = load(type, B, tb ? j + p * ldb : p + j * ldb);
  for (long long j = 0; j < n; ++j)
    for (long long i = 0; i < m; ++i) {
      double sum = 0;
      for (long long p = 0; p < k; ++p) sum += double(a_rows[i * k + p]) * b_cols[j * k + p];
      float v = alpha_value * float(sum);
      if (beta_value != 0) v += beta_value * load(type, C, i + j * ldd);  // ldc == ldd
      if (bias) v += load(type, bias, i);
      if (gelu)  // the tanh approximation, as cuBLASLt's
        v = 0.5f * v * (1.0f + std::tanh(0.7978845608f * (v + 0.044715f * v * v * v)));
      store(type, D, i + j * ldd, v);
    }
}

}  // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  return create<Handle>(handle, "cublasLtCreate");
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasLtDestroy", "null handle");
  return destroy<Handle>(handle);
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute,
                                        cudaDataType_t scale) {
  return create<Desc>(desc, "cublasLtMatmulDescCreate",
                      std::to_array<std::int32_t>(
                          {compute, scale, CUBLASLT_POINTER_MODE_HOST, CUBLAS_OP_N, CUBLAS_OP_N,
                           CUBLAS_OP_N, CUBLAS_FILL_MODE_FULL, CUBLASLT_EPILOGUE_DEFAULT}));
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  return destroy<Desc>(desc);
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attr, const void* buf,
                                              size_t size) {
  const char* who = "cublasLtMatmulDescSetAttribute";
  if (!desc || !buf) return fail(CUBLAS_STATUS_INVALID_VALUE, who, "null descriptor or buffer");
  // A value is checked where it is used, as cuBLASLt does with most of them.
  const bool pointer = attr == CUBLASLT_MATMUL_DESC_BIAS_POINTER;
  if (!pointer && attr > CUBLASLT_MATMUL_DESC_EPILOGUE &&
      attr != CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET)
    return fail(CUBLAS_STATUS_NOT_SUPPORTED, who, "attribute %d is not emulated", int(attr));
  const std::size_t want = pointer ? sizeof(void*) : 4;
  if (size != want)
    return fail(CUBLAS_STATUS_INVALID_VALUE, who, "attribute %d takes %zu bytes, not %zu",
                int(attr), want, size);
  Desc& o = *get<Desc>(desc);
  if (pointer)
    std::memcpy(&o.bias, buf, size);
  else if (attr <= CUBLASLT_MATMUL_DESC_EPILOGUE)
    std::memcpy(&o.value[attr], buf, size);
  // else SM_COUNT_TARGET, a tuning hint
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
  if (rows > INT64_MAX || cols > INT64_MAX)
    return fail(CUBLAS_STATUS_INVALID_VALUE, "cublasLtMatrixLayoutCreate",
                "%llu rows or %llu cols overflow", static_cast<unsigned long long>(rows),
                static_cast<unsigned long long>(cols));
  return create<Layout>(layout, "cublasLtMatrixLayoutCreate", type, static_cast<long long>(rows),
                        static_cast<long long>(cols), static_cast<long long>(ld));
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  return destroy<Layout>(layout);
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  return create<Preference>(pref, "cublasLtMatmulPreferenceCreate");
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  return destroy<Preference>(pref);
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void* buf, size_t size) {
  const char* who = "cublasLtMatmulPreferenceSetAttribute";
  if (!pref || !buf) return fail(CUBLAS_STATUS_INVALID_VALUE, who, "null preference or buffer");
  const bool alignment = attr >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES &&
                         attr <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES;
  const bool wide =  // the two uint64_t ones; the others are uint32_t or float
      attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES || attr == CUBLASLT_MATMUL_PREF_IMPL_MASK;
  // Workspace, reduction scheme, waves and implementation are filters that the one emulated algo
  // passes (it needs no workspace): accepted, and ignored.
  if (!alignment && !wide && attr != CUBLASLT_MATMUL_PREF_SEARCH_MODE &&
      attr != CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK &&
      attr != CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT)
    return fail(CUBLAS_STATUS_NOT_SUPPORTED, who, "attribute %d is not emulated", int(attr));
  if (size != (wide ? 8u : 4u))
    return fail(CUBLAS_STATUS_INVALID_VALUE, who, "attribute %d takes %u bytes, not %zu", int(attr),
                wide ? 8u : 4u, size);
  std::uint32_t v = 0;
  if (!wide) std::memcpy(&v, buf, 4);
  if (attr == CUBLASLT_MATMUL_PREF_SEARCH_MODE && v != CUBLASLT_SEARCH_BEST_FIT)
    return fail(CUBLAS_STATUS_NOT_SUPPORTED, who,  // the others need cublasLtMatmulAlgoInit
                "search mode %u is not emulated", v);
  if (alignment)
    get<Preference>(pref)->alignment[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = v;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[],
                                              int* count) {
  const char* who = "cublasLtMatmulAlgoGetHeuristic";
  if (count) *count = 0;
  const Layout* const layouts[4] = {get<Layout>(a), get<Layout>(b), get<Layout>(c), get<Layout>(d)};
  if (const cublasStatus_t status = check_problem(who, handle, desc, layouts)) return status;
  if (!pref) return fail(CUBLAS_STATUS_INVALID_VALUE, who, "null cublasLtMatmulPreference_t");
  if (requested <= 0 || !results || !count)
    return fail(CUBLAS_STATUS_INVALID_VALUE, who, "%d results requested into %p, count into %p",
                requested, static_cast<void*>(results), static_cast<void*>(count));
  const Desc& o = *get<Desc>(desc);
  if (refuse_gelu_epilogue && o[CUBLASLT_MATMUL_DESC_EPILOGUE] == CUBLASLT_EPILOGUE_GELU_BIAS)
    return CUBLAS_STATUS_NOT_SUPPORTED;
  cublasLtMatmulHeuristicResult_t result{};
  std::copy_n(get<Preference>(pref)->alignment, 4, result.algo.data + kAlignA);
  const bool bias = o[CUBLASLT_MATMUL_DESC_EPILOGUE] != CUBLASLT_EPILOGUE_DEFAULT;
  result.algo.data[kAlignBias] = bias ? alignment(o.bias) : 1;
  result.algo.data[kWorkspace] = result.workspaceSize = 0;
  result.algo.data[kSignature] = signature(o, layouts);
  result.algo.data[kSeal] = seal(result.algo);
  result.state = CUBLAS_STATUS_SUCCESS;
  result.wavesCount = 1.0f;
  results[0] = result;
  *count = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha,
                              const void* A, cublasLtMatrixLayout_t a, const void* B,
                              cublasLtMatrixLayout_t b, const void* beta, const void* C,
                              cublasLtMatrixLayout_t c, void* D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t* algo, void* workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
  const char* who = "cublasLtMatmul";
  const Layout* const layouts[4] = {get<Layout>(a), get<Layout>(b), get<Layout>(c), get<Layout>(d)};
  if (const cublasStatus_t status = check_problem(who, handle, desc, layouts)) return status;
  const Desc& o = *get<Desc>(desc);
  if (!algo || algo->data[kSeal] != seal(*algo))
    return fail(CUBLAS_STATUS_INVALID_VALUE, who, "the algo is null or not one from the heuristic");
  if (algo->data[kSignature] != signature(o, layouts))
    return fail(CUBLAS_STATUS_INVALID_VALUE, who,
                "the algo was chosen for another problem (types, transposes, epilogue, shapes or "
                "leading dimensions differ)");
  if (!alpha || !beta) return fail(CUBLAS_STATUS_INVALID_VALUE, who, "null alpha or beta");
  const float alpha_value = *static_cast<const float*>(alpha);
  const float beta_value = *static_cast<const float*>(beta);
  const std::uint32_t epilogue = o[CUBLASLT_MATMUL_DESC_EPILOGUE];
  const bool bias = epilogue != CUBLASLT_EPILOGUE_DEFAULT;
  // C is not read when beta is 0 (as in cuBLASLt), so it may then be null.
  if (const char* null = !A ? "A" : !B ? "B" : !D ? "D" : !C && beta_value != 0 ? "C" : nullptr)
    return fail(CUBLAS_STATUS_INVALID_VALUE, who, "null %s", null);
  const void* pointers[5] = {A, B, C, D, bias ? o.bias : nullptr};
  const char* names[5] = {"A", "B", "C", "D", "bias"};
  const Layout& l = *layouts[3];
  const std::size_t size = element_size(l.type);
  for (int i = 0; i < 5; ++i) {
    const std::uint64_t promised = std::max<std::uint64_t>(algo->data[kAlignA + i], size);
    if (pointers[i] && reinterpret_cast<std::uintptr_t>(pointers[i]) % promised)
      return fail(CUBLAS_STATUS_INVALID_VALUE, who,
                  "%s %p is less aligned than the %llu bytes promised to the heuristic", names[i],
                  pointers[i], static_cast<unsigned long long>(promised));
  }
  if (workspace_bytes < algo->data[kWorkspace] || (algo->data[kWorkspace] && !workspace))
    return fail(CUBLAS_STATUS_INVALID_VALUE, who, "a workspace of %zu bytes, the algo needs %llu",
                workspace_bytes, static_cast<unsigned long long>(algo->data[kWorkspace]));
  // On a GPU, an input that overlaps D may be read after other threads wrote it. C exactly D is
  // cuBLASLt's in-place update, where each element is read before it is written.
  const auto start = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p); };
  const std::uintptr_t d_end = start(D) + extent(l);
  const std::uintptr_t ends[5] = {start(A) + extent(*layouts[0]), start(B) + extent(*layouts[1]),
                                  start(C) + extent(*layouts[2]), 0,
                                  start(pointers[4]) + std::uintptr_t(l.rows) * size};
  for (int i : {0, 1, 2, 4}) {
    if (!pointers[i] || (i == 2 && C == D)) continue;
    if (start(pointers[i]) < d_end && start(D) < ends[i])
      return fail(CUBLAS_STATUS_INVALID_VALUE, who, "%s overlaps D", names[i]);
  }
  for (int i : {0, 1, 2, 3, 4}) {
    const std::uintptr_t end = i == 3 ? d_end : ends[i];
    if (pointers[i] &&
        !ctformer::emulation::is_device_memory(pointers[i], end - start(pointers[i])))
      return fail(CUBLAS_STATUS_INVALID_VALUE, who, "%s is not within one device allocation",
                  names[i]);
  }

  // The GEMM is work of the stream (a graph being captured records it), with what the call
  // passes by value (the descriptors and host scalars) taken now.
  const bool ta = o[CUBLASLT_MATMUL_DESC_TRANSA] == CUBLAS_OP_T;
  const bool tb = o[CUBLASLT_MATMUL_DESC_TRANSB] == CUBLAS_OP_T;
  const long long m = l.rows, n = l.cols, k = ta ? layouts[0]->rows : layouts[0]->cols;
  const long long lda = layouts[0]->ld, ldb = layouts[1]->ld, ldd = l.ld;
  ctformer::emulation::enqueue(stream, [=, bias_pointer = o.bias] {
    gemm(l.type, ta, tb, m, n, k, A, lda, B, ldb, C, D, ldd, alpha_value, beta_value,
         bias ? bias_pointer : nullptr, epilogue == CUBLASLT_EPILOGUE_GELU_BIAS);
  });
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"

void ctformer::emulation::set_refuse_gelu_epilogue(bool refuse) {
  refuse_gelu_epilogue = refuse;
}
