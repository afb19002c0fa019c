#!/usr/bin/env bash
# One command for a machine with a CUDA GPU: configure for its architecture, build, run every test
# (the `cuda` ones included), compute-sanitizer (memcheck, racecheck) over the CUDA tests, the CUDA
# benchmark, the seed workload beside transformers on the same GPU, and a summary to paste into
# docs/gpu-log.md. Budget: under 10 minutes on an H100.
#   tools/gpu-check.sh [LOG_DIR]  (logs: LOG_DIR, else $OUT, else a new temporary folder;
#                                  build folder: build-gpu, or $CTFORMER_BUILD_DIR)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${CTFORMER_BUILD_DIR:-build-gpu}
jobs=$(nproc)
log=${1:-${OUT:-$(mktemp -d)}}
mkdir -p "$log"
summary=()
step() {  # step NAME COMMAND...: runs it, logs it, records PASS/FAIL and the time
  local name=$1; shift
  local start=$SECONDS
  echo "=== $name: $*"
  if "$@" >"$log/$name.log" 2>&1; then status=PASS; else status="FAIL (exit $?)"; fi
  tail -n 25 "$log/$name.log"
  summary+=("| $name | $status | $((SECONDS - start)) s |")
}

nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader \
  >"$log/gpu.txt" 2>&1 || echo "nvidia-smi failed: no GPU or driver?" >>"$log/gpu.txt"
step configure cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=native
step build cmake --build "$build" -j "$jobs"
step ctest ctest --test-dir "$build" --output-on-failure -j 4 --timeout 300
step ctest-cuda-verbose ctest --test-dir "$build" -L cuda -V --timeout 300
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for tool in memcheck racecheck; do
  for t in cuda_kernels_f16_test cuda_gpt2_f16_test cuda_kernels_f32_test; do
    step "$tool-$t" env CTFORMER_TEST_QUICK=1 "$sanitizer" --tool "$tool" --error-exitcode 1 \
      "$build/tests/cuda/$t"
  done
done
step bench "$build/bench/cuda/gpt2_cuda_bench"
# Issue 5's GPU comparison: a random-weight GPT-2 124M (outside the log folder: 500 MB), the CUDA
# CLI against transformers' batched pipeline, fp16 and fp32, on the first 256 seed prompts.
# Needs GPT-2's vocab.json and merges.txt: $CTFORMER_GPT2_DIR, else ../shared/gpt2.
vocab=${CTFORMER_GPT2_DIR:-../shared/gpt2}
model=$(mktemp -d)/gpt2-random
if [[ -f $vocab/vocab.json && -f $vocab/merges.txt ]]; then
  step random-model python3 tools/make_random_gpt2.py "$model" --vocab-dir "$vocab"
  for dtype in fp16 fp32; do
    step "compare-$dtype" timeout 300 python3 bench/seed_workload/compare_transformers.py \
      "$model" --prompts 256 --ctformer "$build/tools/ctformer/ctformer" --ctformer-batch 256 \
      --hf-batch-sizes 64,256 --device cuda --dtype "$dtype"
  done
else
  summary+=("| compare | SKIPPED: no GPT-2 vocabulary in $vocab (set CTFORMER_GPT2_DIR) | 0 s |")
fi

skipped=$(grep -c "Skipped" "$log/ctest.log" || true)
{
  echo
  echo "## $(date -u +%Y-%m-%d) $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '+dirty')"
  echo "GPU: $(cat "$log/gpu.txt")"
  echo
  echo "| step | result | time |"
  echo "|---|---|---|"
  printf '%s\n' "${summary[@]}"
  echo
  echo "ctest: $(grep -E 'tests passed' "$log/ctest.log") ($skipped skipped)"
  echo
  echo "Measured errors (cuda tests):"
  echo '```'
  grep -hE "error [0-9.e+-]+|worst|near-ties|tokens equal" "$log/ctest-cuda-verbose.log" | sed 's/\x1b\[[0-9;]*m//g' | head -60
  echo '```'
  echo "Benchmark:"
  echo '```'
  grep -E "GPU:|tokens/s" "$log/bench.log"
  echo '```'
  for dtype in fp16 fp32; do
    echo "Seed workload beside transformers, $dtype:"
    grep -sE "^\||prompts, greedy" "$log/compare-$dtype.log"
  done
} | tee "$log/summary.md"
echo "(logs in $log; paste the summary above into docs/gpu-log.md)"
! printf '%s\n' "${summary[@]}" | grep -q FAIL
