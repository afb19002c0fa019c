#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer (LeakSanitizer included) and UndefinedBehaviorSanitizer,
# then a short soak of the generator under the same sanitizers:
#   scripts/sanitize.sh [extra cmake -D options]
# Build folder: build-asan/ (override with CTFORMER_SANITIZE_BUILD_DIR). Fails on any test failure
# and on any sanitizer report (every report aborts the program: -fno-sanitize-recover=all). No
# suppressions are used.
#
# Left out, by label: `package` (builds a consumer project with the plain compiler, against an
# installed ctformer and with ctformer as a subproject: no sanitized code runs in it) and
# `compile_fail` (only compiles, expecting errors: nothing runs). CUDA is off: nvcc's device code is
# not instrumented (compute-sanitizer covers it; see docs/reliability.md). The CUDA backend still
# runs here, compiled as C++ under the CPU emulator of tests/cuda (cuda_emulated_*_test).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${CTFORMER_SANITIZE_BUILD_DIR:-build-asan}
# -O1 with line tables: a fraction of -O3's compile time, stack traces with file:line. NDEBUG is not
# defined, so Eigen's and nlohmann's assertions run too, and libstdc++ checks its containers.
# UBSan without three checks that cost a fifth of the build (token_biases_test: 113 s -> 88 s) and
# add nothing to ASan here: `null` and `object-size` (a dereference of null or past an object is
# ASan's report too) and `vptr` (ctformer has no virtual functions).
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1" \
  -DCMAKE_CXX_FLAGS="-D_GLIBCXX_ASSERTIONS" -DCTFORMER_SANITIZE=address,undefined \
  -DCTFORMER_SANITIZE_EXCEPT=null,object-size,vptr -DCTFORMER_CUDA=OFF "$@"
# What ctest and the soak run, not the examples and the other benchmarks (a sixth of the build).
cmake --build "$build" -j "$(nproc)" --target ctformer_test_programs soak_bench
echo "sanitize.sh: [${SECONDS} s] built; the tests"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -LE '^(package|compile_fail)$'

# The soak under the sanitizers: LeakSanitizer checks that nothing leaks when requests are
# cancelled, preempted and refused. Its memory check is off here (ASan's quarantine holds freed
# memory, so resident memory grows by design); scripts/soak.sh runs the full soak with it.
"$build/bench/soak/soak_bench" --requests 1000 --rss-checkpoint 500 --rss-tolerance 1000
echo "sanitize.sh: the CPU test suite and the soak passed under ASan + LSan + UBSan"
