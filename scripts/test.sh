#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: `scripts/test.sh [extra cmake -D options]`.
#   1. the build (CPU, and CUDA when nvcc is found) and every CTest test; CUDA tests report
#      SKIPPED without a usable GPU
#   2. the generator soak (10,000 requests on a tiny model; bench/soak)
#   3. the CPU tests again under AddressSanitizer + UndefinedBehaviorSanitizer (scripts/sanitize.sh)
#   4. every fuzz target for 30 s (scripts/fuzz.sh)
# Build folder: build/ (override with CTFORMER_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage's start, with the seconds since this script started: where CI's time goes.
stage() { echo "test.sh: [${SECONDS} s] $*"; }
stage "dependencies"
scripts/install-deps.sh
build=${CTFORMER_BUILD_DIR:-build}
# CUDA (when nvcc is found): with a GPU, built for it (CMake's `native`). Without one, as in CI, it
# is a compile check: the kernel tests, which instantiate every kernel specialisation, for sm_80 and
# sm_90, so that one that does not compile for either never lands, and the rest for sm_90 only.
# Pass -DCMAKE_CUDA_ARCHITECTURES=... and -DCTFORMER_CUDA_KERNEL_TEST_ARCHITECTURES=... to override.
cuda_architectures=()
if ! nvidia-smi -L >/dev/null 2>&1; then
  cuda_architectures=(-DCMAKE_CUDA_ARCHITECTURES=90
                      "-DCTFORMER_CUDA_KERNEL_TEST_ARCHITECTURES=80;90")
fi
stage "build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${cuda_architectures[@]}" "$@"
cmake --build "$build" -j "$(nproc)"
stage "tests"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
stage "soak"
"$build/bench/soak/soak_bench"
stage "sanitizers"
scripts/sanitize.sh
stage "fuzzing"
scripts/fuzz.sh 30
stage "done"
