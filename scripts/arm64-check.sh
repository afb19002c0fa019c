#!/usr/bin/env bash
# Cross-builds ctformer for 64-bit ARM Linux (AArch64) and runs its tests under qemu-user, on an
# emulated CPU with Armv8.6's BF16 extension (qemu's `max`: the neon_bf16 kernel) and on one
# without (Cortex-A72, the Raspberry Pi 4's: the neon kernel). qemu checks results, not speed.
#   scripts/arm64-check.sh           every test but the CUDA emulator's, the hub's, and the
#                                    package and compile-failure ones (which build for the host)
#   scripts/arm64-check.sh --quick   the projection kernels and the model against its fixtures
#                                    (.ci/run runs this after scripts/test.sh)
# Build folder: build-arm64/ (override with CTFORMER_ARM64_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --arm64
build=${CTFORMER_ARM64_BUILD_DIR:-build-arm64}
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
  -DCTFORMER_CUDA=OFF -DCTFORMER_NATIVE=OFF -DCMAKE_BUILD_TYPE=Release
if [ "${1:-}" = "--quick" ]; then
  cmake --build "$build" -j "$(nproc)" --target packed_matmul_test gpt2_reference_test
  tests=(-R "^(packed_matmul_test|gpt2_reference_test.*)$")
else
  cmake --build "$build" -j "$(nproc)"
  # The CUDA emulator's tests take minutes natively (hours under qemu) and test no ARM code. The hub
  # tests hang under qemu-user 7.2 (Debian 12's) where their fake hub's server thread starts (the
  # last call qemu -strace shows: rt_sigaction of signal 33, glibc's thread-cancel signal).
  tests=(-E "^(cuda_emulated_.*|package_.*|compile_fail_.*|hub_.*)$")
fi
# The kernels' target attributes against builds for particular CPUs (-mcpu=neoverse-n1 once failed
# to inline a helper into the BFDOT kernel): every kernel instantiation, compiled only.
for flag in -mcpu=neoverse-n1 -march=armv8.4-a -mcpu=neoverse-v1; do
  echo "arm64-check: compiling the kernels with $flag"
  aarch64-linux-gnu-g++ "$flag" -std=c++20 -O2 -Wall -Wextra -Werror -Iinclude -Itests \
    -I/usr/include/eigen3 -DBOOST_TEST_DYN_LINK -c tests/ops/packed_matmul_test.cpp -o /dev/null
done
# No accumulator of any kernel block spilled to the stack in its FMA loop (qemu cannot time them).
python3 tools/neon_kernel_loops.py
for cpu in max cortex-a72; do
  echo "arm64-check: tests on qemu's $cpu CPU"
  QEMU_CPU=$cpu ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "${tests[@]}"
done
