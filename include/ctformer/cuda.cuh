// Everything the CUDA backend adds: the `ctformer::cuda` tag and its ops. Included by
// ctformer/ctformer.hpp when compiled by nvcc; a .cu file may also include it directly.
#pragma once

#include "ctformer/backends/cuda.hpp"
#include "ctformer/ops/attention.cuh"
#include "ctformer/ops/embedding.cuh"
#include "ctformer/ops/layer_norm.cuh"
#include "ctformer/ops/linear.cuh"
#include "ctformer/ops/log_probs.cuh"
#include "ctformer/ops/rms_norm.cuh"
#include "ctformer/ops/rows.cuh"
#include "ctformer/ops/sampling.cuh"
