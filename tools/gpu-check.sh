#!/usr/bin/env bash
# One command for a machine with a CUDA GPU: every CUDA test (with CTFORMER_REQUIRE_GPU=1, so that a
# GPU the kernels cannot run on fails rather than skips), the CUDA benchmark, compute-sanitizer
# (memcheck, racecheck, initcheck) over the CUDA tests, a batch-1 decode step's kernels under Nsight
# Compute, the seed workload beside transformers on the same GPU, and a summary to paste into
# docs/gpu-log.md.
#
#   tools/gpu-check.sh [LOG_DIR]
#       configures for the GPU's own architecture, builds and runs every test (needs what
#       scripts/install-deps.sh installs: Eigen, Boost.Test, nlohmann-json);
#   tools/gpu-check.sh --bundle DIR [LOG_DIR]
#       runs the programs that tools/gpu-bundle.sh built on another machine (for GPU machines
#       without the build dependencies; the lent GPU machine of docs/gpu-log.md is one).
#
# Logs go to LOG_DIR, else a temporary folder; with $OUT set (the device tool), $OUT receives
# summary.md and logs.tgz only, as it returns at most 8 files.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=
if [[ ${1:-} == --bundle ]]; then
  bundle=$(realpath "${2:?--bundle needs the folder tools/gpu-bundle.sh wrote}")
  shift 2
fi
log=${1:-$(mktemp -d)}
mkdir -p "$log"
summary=()
# Steps run in order of importance; one that would start past the deadline is recorded as skipped.
# With a bundle the deadline is 540 s, since the device tool stops a command at 600 s.
deadline=${CTFORMER_GPU_CHECK_SECONDS:-$([[ -n $bundle ]] && echo 540 || echo 1800)}
step() {  # step NAME SECONDS COMMAND...: runs it with a time limit, logs it, records the result
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS status
  if ((deadline - SECONDS < 15)); then
    summary+=("| $name | SKIPPED: out of time (CTFORMER_GPU_CHECK_SECONDS=$deadline) | 0 s |")
    return
  fi
  ((limit > deadline - SECONDS)) && limit=$((deadline - SECONDS))
  echo "=== $name: $*"
  if timeout -k 10 "$limit" "$@" >"$log/$name.log" 2>&1; then status=PASS; else status="FAIL (exit $?)"; fi
  tail -n 15 "$log/$name.log"
  summary+=("| $name | $status | $((SECONDS - start)) s |")
  # Kept up to date in $OUT, so that a run killed from outside still tells how far it got.
  if [[ -n ${OUT:-} ]]; then printf '%s\n' "${summary[@]}" >"$OUT/steps.md"; fi
}

nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader \
  >"$log/gpu.txt" 2>&1 || echo "nvidia-smi failed: no GPU or driver?" >>"$log/gpu.txt"
export CTFORMER_REQUIRE_GPU=1
if [[ -n $bundle ]]; then
  # cuBLASLt is not in the bundle (hundreds of MB): the machine's CUDA toolkit or pip wheel has it.
  cublas=
  if ! ldconfig -p | grep -q 'libcublasLt.so.13 '; then
    cublas=$({
      find /usr/local/cuda*/ -name 'libcublasLt.so.13' 2>/dev/null
      python3 -c 'import glob, site
for d in site.getsitepackages(): print(*glob.glob(d + "/nvidia/**/libcublasLt.so.13", recursive=True))'
    } | head -1)
  fi
  # The bundle's libraries for its programs only: python and torch keep their own (cudart).
  libs=$bundle/lib${cublas:+:$(dirname "$cublas")}
  bin=$bundle/bin
  if env LD_LIBRARY_PATH="$libs" ldd "$bin/ctformer" 2>&1 | grep -q GLIBCXX; then
    libs+=:$bundle/lib/fallback  # this machine's C++ runtime is older than the build machine's
  fi
  run_bundled=(env "LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  wrapped=$(mktemp -d)  # the CLI, with its libraries, for the comparison script to run
  printf '#!/bin/sh\nexec %s %q "$@"\n' "${run_bundled[*]}" "$bin/ctformer" >"$wrapped/ctformer"
  chmod +x "$wrapped/ctformer"
  export CTFORMER_TEST_DATA_DIR=$PWD/tests/data CTFORMER_CLI=$bin/ctformer
  [[ -d $bundle/gpt2 ]] && export CTFORMER_GPT2_DIR=$bundle/gpt2
  cat "$bundle/manifest.txt" >>"$log/gpu.txt"
  # A bundle built from another commit would test other code.
  commit=$(git rev-parse --short HEAD 2>/dev/null)
  if [[ -n $commit ]]; then
    step bundle-is-this-commit 5 grep -q "commit $commit," "$bundle/manifest.txt"
  fi
  step libraries 10 bash -c "! ${run_bundled[*]} ldd $bin/* | grep 'not found'"
  for t in "$bin"/*_test; do
    step "$(basename "$t")" 120 "${run_bundled[@]}" "$t" --log_level=message
  done
  cli=$wrapped/ctformer bench_program=$bin/gpt2_cuda_bench tests=$bin
else
  build=${CTFORMER_BUILD_DIR:-build-gpu}
  step configure 120 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=native
  step build 600 cmake --build "$build" -j "$(nproc)"
  step ctest 600 ctest --test-dir "$build" --output-on-failure -j 4 --timeout 300
  step ctest-cuda 300 ctest --test-dir "$build" -L cuda -V --timeout 300
  cli=$build/tools/ctformer/ctformer bench_program=$build/bench/cuda/gpt2_cuda_bench
  tests=$build/tests/cuda run_bundled=(env)
fi

step bench 150 "${run_bundled[@]}" "$bench_program"

# Quick shapes under the sanitizers. The out-of-memory test's failing cudaMalloc is on purpose:
# API errors are the code's own to report (and it does), so the sanitizer reports memory only.
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
sanitize() {  # sanitize TOOL: the CUDA tests under compute-sanitizer's TOOL
  for t in cuda_kernels_f16_test cuda_gpt2_f16_test cuda_decode_graphs_test cuda_kernels_f32_test; do
    step "$1-$t" 90 "${run_bundled[@]}" CTFORMER_TEST_QUICK=1 "$sanitizer" --tool "$1" \
      --error-exitcode 1 --report-api-errors no "$tests/$t"
  done
}
sanitize memcheck

# Where a batch-1 decode step's GPU time goes, kernel by kernel (direct launches, fp16). Clocks and
# caches as in the benchmark (ncu would lock base clocks and flush caches before each kernel).
ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
if [[ -n $ncu ]]; then
  step profile-decode 120 "${run_bundled[@]}" "$ncu" --nvtx --nvtx-include decode-direct/ \
    --metrics gpu__time_duration.sum --csv --page raw --print-units base --clock-control none \
    --cache-control none "$bench_program" --batch 1 --decode-steps 4 --dtype fp16
  python3 tools/kernel_times.py "$log/profile-decode.log" --steps 4 >"$log/kernel-times.md" 2>&1
else
  summary+=("| profile-decode | SKIPPED: no ncu (Nsight Compute) on this machine | 0 s |")
fi

# The seed workload on the GPU: a random-weight GPT-2 124M, the CUDA CLI against transformers'
# batched pipeline, fp16, the first 256 prompts. Needs GPT-2's vocab.json and merges.txt.
vocab=${CTFORMER_GPT2_DIR:-../shared/gpt2}
model=$(mktemp -d)/gpt2-random
if [[ -f $vocab/vocab.json && -f $vocab/merges.txt ]] && python3 -c 'import torch, transformers' 2>/dev/null; then
  step random-model 60 python3 tools/make_random_gpt2.py "$model" --vocab-dir "$vocab"
  step compare-fp16 150 python3 bench/seed_workload/compare_transformers.py "$model" --prompts 256 \
    --ctformer "$cli" --ctformer-batch 256 --hf-batch-sizes 64,256 --device cuda --dtype fp16
  # The same prompts through `ctformer serve` on the GPU, from 64 concurrent streaming clients.
  step serve-fp16 90 python3 bench/serve/serve_load.py --prompts 256 --clients 64 --stream \
    --start "$cli serve --model $model --device cuda --dtype fp16 --batch-size 64"
  # Sliding-window perplexity of this repository's docs (160 KB of English) beside transformers:
  # logprob_kernel, every-token logits, and their agreement with transformers' loss.
  cat docs/*.md >"$log/perplexity-text.txt"
  step perplexity-fp16 120 python3 bench/perplexity/compare_transformers.py "$model" \
    "$log/perplexity-text.txt" --ctformer "$cli" --device cuda --dtype fp16
else
  summary+=("| compare-fp16 | SKIPPED: no GPT-2 vocabulary in $vocab, or no torch/transformers | 0 s |")
fi
sanitize racecheck
sanitize initcheck  # last: reads of device memory nothing wrote (skipped when out of time)

{
  echo
  echo "## $(date -u +%Y-%m-%d) $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '+dirty')"
  echo "GPU: $(cat "$log/gpu.txt")"
  echo
  echo "| step | result | time |"
  echo "|---|---|---|"
  printf '%s\n' "${summary[@]}"
  echo
  echo "Measured errors and test counts:"
  echo '```'
  cat "$log"/*test*.log "$log"/ctest*.log 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' |
    grep -hE "error [0-9.e+-]+|worst|near-ties|tokens equal|graphs against|SKIPPED|FAILED|tests passed|detected" | head -80
  echo '```'
  echo "Sanitizer findings:"
  echo '```'
  grep -hE "ERROR SUMMARY|RACECHECK SUMMARY" "$log"/memcheck-*.log "$log"/racecheck-*.log \
    "$log"/initcheck-*.log 2>/dev/null
  echo '```'
  echo "Benchmark:"
  echo '```'
  grep -hE "GPU:|tokens/s|graphs failed" "$log/bench.log"
  echo '```'
  echo "Batch-1 decode step, kernel by kernel (fp16, Nsight Compute, tools/kernel_times.py):"
  cat "$log/kernel-times.md" 2>/dev/null
  echo
  echo "Seed workload beside transformers, fp16:"
  grep -shE "^\||prompts, greedy" "$log/compare-fp16.log"
  echo
  echo "The same through ctformer serve, 64 streaming clients (bench/serve/serve_load.py):"
  echo '```'
  grep -shE "^(requests|errors|generated_tokens_per_s|ttft_ms_p50|inter_token_ms_p50) " "$log/serve-fp16.log"
  echo '```'
  echo
  echo "Sliding-window perplexity beside transformers, fp16 (bench/perplexity/compare_transformers.py):"
  grep -shE "^\||^text:|difference" "$log/perplexity-fp16.log"
} | tee "$log/summary.md"
if [[ -n ${OUT:-} ]]; then
  cp "$log/summary.md" "$OUT/summary.md"
  tar czf "$OUT/logs.tgz" -C "$log" .
fi
echo "(logs in $log; paste the summary above into docs/gpu-log.md)"
! printf '%s\n' "${summary[@]}" | grep -q FAIL
