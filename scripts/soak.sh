#!/usr/bin/env bash
# Builds (Release) and runs the generator's soak benchmark, bench/soak: 10,000 requests of random
# lengths and sampling parameters, with cancellations, on the tiny test model gpt2-h16 on the CPU.
# Fails if a request is lost or duplicated, a KV block does not return to the pool, or resident
# memory at the end is more than 5% above that after the first 1,000 requests.
#   scripts/soak.sh [soak_bench options: --requests N --seed S --in-flight N ...]
# Build folder: build/ (override with CTFORMER_BUILD_DIR); it is configured only if it is not yet.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CTFORMER_BUILD_DIR:-build}
if [ ! -f "$build/CMakeCache.txt" ]; then
  scripts/install-deps.sh
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build" -j "$(nproc)" --target soak_bench
exec "$build/bench/soak/soak_bench" "$@"
