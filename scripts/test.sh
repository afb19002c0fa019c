#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: `scripts/test.sh [extra cmake -D options]`.
# Build folder: build/ (override with CTFORMER_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${CTFORMER_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
