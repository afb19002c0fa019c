// Loops the CPU backend splits over OpenMP threads, when the including translation unit is built
// with OpenMP (-fopenmp; CMake: OpenMP::OpenMP_CXX). Without it they run serially, and no
// "unknown pragma" warning reaches a user's build.
#pragma once

#if defined(_OPENMP)
#define CTFORMER_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
#define CTFORMER_PARALLEL_FOR_DYNAMIC _Pragma("omp parallel for schedule(dynamic)")
// A team of threads over the block that follows, sharing its CTFORMER_FOR loops (each ends at a
// barrier).
#define CTFORMER_PARALLEL _Pragma("omp parallel")
#define CTFORMER_FOR _Pragma("omp for schedule(static)")
#else
#define CTFORMER_PARALLEL_FOR
#define CTFORMER_PARALLEL_FOR_DYNAMIC
#define CTFORMER_PARALLEL
#define CTFORMER_FOR
#endif
