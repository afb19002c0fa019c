// What a projection does with x W besides the product: ops::Linear on every backend, the CPU's
// packed kernel (ops/packed_matmul.hpp) and the CUDA GEMV (ops/linear_kernels.cuh).
#pragma once

namespace ctformer::ops {

enum class Epilogue {
  bias,           // out = x W + b
  bias_gelu,      // out = gelu_tanh(x W + b)   (GPT-2's MLP up-projection)
  bias_residual,  // out += x W + b             (the projections that end each residual branch)
  none,           // out = x W                  (the tied LM head)
};

}  // namespace ctformer::ops
