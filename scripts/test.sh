#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: `scripts/test.sh [extra cmake -D options]`.
# Build folder: build/ (override with CTFORMER_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${CTFORMER_BUILD_DIR:-build}
# CUDA (when nvcc is found): every kernel specialisation is compiled for sm_80 and sm_90 in CI, so
# that one that does not compile never lands; pass -DCMAKE_CUDA_ARCHITECTURES=... to override.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="80;90" "$@"
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
