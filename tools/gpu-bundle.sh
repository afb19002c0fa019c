#!/usr/bin/env bash
# Builds, on a machine without a GPU, everything tools/gpu-check.sh runs on one, and gathers it in a
# folder small enough to copy there: the CUDA test programs, the CUDA CLI and benchmark, the shared
# libraries they need that a CUDA machine may lack (Boost.Test, the C++ and OpenMP runtimes,
# cudart, cpp-httplib and its Brotli for `ctformer serve`; cuBLASLt is taken from the CUDA machine), and GPT-2's vocabulary when it is at hand.
#   tools/gpu-bundle.sh [CUDA_ARCH]    (default 90: Hopper; the folder: build-gpu-bundle/bundle)
# Then, on the GPU machine, from a checkout of the same commit:
#   tools/gpu-check.sh --bundle build-gpu-bundle/bundle [LOG_DIR]
# Built without -march=native (CTFORMER_NATIVE=OFF), since the GPU machine's CPU is not this one.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-90}
build=build-gpu-bundle
bundle=$build/bundle
targets=(cuda_device_probe_test cuda_host_side_test cuda_decode_graphs_test cli_cuda_test ctformer_cli
  gpt2_cuda_bench)
for p in f32 f16 bf16; do targets+=("cuda_kernels_${p}_test" "cuda_gpt2_${p}_test"); done

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCTFORMER_CUDA=ON -DCTFORMER_NATIVE=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"
cp "$build"/tests/cuda/cuda_*_test "$build/tests/cli/cli_cuda_test" "$build/tools/ctformer/ctformer" \
  "$build/bench/cuda/gpt2_cuda_bench" "$bundle/bin/"
# The C++ runtime goes to lib/fallback, used only where the GPU machine's own is older.
mkdir -p "$bundle/lib/fallback"
deps=$(ldd "$bundle"/bin/*)
for lib in libboost_unit_test_framework libgomp libcudart libcpp-httplib libbrotlienc libbrotlidec \
  libbrotlicommon libstdc++ libgcc_s; do
  path=$(awk -v l="$lib" 'index($1, l) == 1 && $3 ~ /^\// {print $3}' <<<"$deps" | head -1)
  to=$bundle/lib
  [[ $lib == libstdc++ || $lib == libgcc_s ]] && to=$bundle/lib/fallback
  if [[ -n $path ]]; then cp -L "$path" "$to/"; fi
done
vocab=${CTFORMER_GPT2_DIR:-../shared/gpt2}
if [[ -f $vocab/vocab.json && -f $vocab/merges.txt ]]; then
  mkdir -p "$bundle/gpt2"
  cp "$vocab/vocab.json" "$vocab/merges.txt" "$bundle/gpt2/"
fi
{
  echo "bundle: commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'), sm_$arch,"
  echo "  built $(date -u +%Y-%m-%dT%H:%MZ) with $(nvcc --version | tail -1)"
} >"$bundle/manifest.txt"
du -sh "$bundle"
echo "carry $bundle; run: tools/gpu-check.sh --bundle $bundle"
