// The CLI as a CUDA translation unit (tools/ctformer/CMakeLists.txt picks it when CTFORMER_CUDA is
// ON): compiled by nvcc, ctformer.hpp pulls in the CUDA backend, so `--device cuda` works and
// `ctformer info` probes the GPU. main.cpp stays the one source of the CLI for both builds.
#include "main.cpp"
