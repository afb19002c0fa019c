// ctformer: header-only GPT-2 inference. Include this for everything the CPU backend offers; from a
// .cu file compiled by nvcc it also brings the CUDA backend (ctformer/cuda.cuh).
#pragma once

#if defined(__CUDACC__)
#include "ctformer/cuda.cuh"
#endif

#include "ctformer/backends/cpu.hpp"
#include "ctformer/cache/paged_kv_cache.hpp"
#include "ctformer/core/dtype.hpp"
#include "ctformer/core/error.hpp"
#include "ctformer/evaluation/perplexity.hpp"
#include "ctformer/generation/generation_params.hpp"
#include "ctformer/generation/generator.hpp"
#include "ctformer/generation/generator_thread.hpp"
#include "ctformer/generation/token_biases.hpp"
#include "ctformer/io/gpt2_config.hpp"
#include "ctformer/io/model_directory.hpp"
#include "ctformer/io/safetensors.hpp"
#include "ctformer/layers/parallel_block.hpp"
#include "ctformer/layers/rms_norm.hpp"
#include "ctformer/models/dispatch.hpp"
#include "ctformer/models/gpt2.hpp"
#include "ctformer/tokenizer/tokenizer.hpp"
