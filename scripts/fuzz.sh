#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan + libFuzzer) and runs each for
# a fixed time, starting from its committed seeds (tests/fuzz/corpus/<target>) and regression inputs
# (tests/fuzz/regressions/<target>). Fails on any crash, hang, leak, out-of-memory, sanitizer report
# or broken invariant, and says where the input that caused it was saved.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     SECONDS per target: 30 by default (CI); longer by hand
#
# Targets: safetensors config tokenizer_load tokenizer_encode prompt_file completion_request (all
# by default).
# Build folder: build-fuzz/ (override with CTFORMER_FUZZ_BUILD_DIR). Inputs the fuzzer finds
# interesting accumulate in build-fuzz/fuzz-corpus/<target> (not committed); crash inputs land in
# build-fuzz/fuzz-artifacts/<target>/. A fixed crash input belongs in tests/fuzz/regressions/<target>/,
# which the ordinary test suite replays (fuzz_replay_test). Figures: docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-${CTFORMER_FUZZ_SECONDS:-30}}
[ $# -gt 0 ] && shift
all_targets=(safetensors config tokenizer_load tokenizer_encode prompt_file completion_request)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "fuzz.sh: error: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi
for t in "${targets[@]}"; do
  if [[ ! " ${all_targets[*]} " =~ " $t " ]]; then
    echo "fuzz.sh: error: unknown target '$t' (targets: ${all_targets[*]})" >&2
    exit 2
  fi
done

scripts/install-deps.sh
# clang with its sanitizer and libFuzzer runtimes (Debian: clang-14, libclang-rt-14-dev).
cxx=${CXX:-}
cc=${CC:-}
if [ -z "$cxx" ]; then
  for v in clang++-14 clang++; do command -v "$v" >/dev/null 2>&1 && { cxx=$v; break; }; done
fi
if [ -z "$cxx" ] || ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
    "$cxx" -x c++ -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1; then
  echo "fuzz.sh: error: no clang with libFuzzer found (CXX=${cxx:-unset});" \
       "scripts/install-deps.sh installs it (Debian: clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi
if [ -z "$cc" ]; then cc=${cxx/clang++/clang}; fi

build=${CTFORMER_FUZZ_BUILD_DIR:-build-fuzz}
CC=$cc CXX=$cxx cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCTFORMER_FUZZ=ON \
  -DCTFORMER_CUDA=OFF -DCTFORMER_BUILD_TOOLS=OFF -DCTFORMER_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")
echo "fuzz.sh: [${SECONDS} s] built; running each target for ${seconds} s"

# tokenizer_encode runs on GPT-2's real vocabulary when it is there (as the tests find it), else on
# the small committed one (tests/fuzz/data).
if [ -z "${CTFORMER_GPT2_DIR:-}" ] && [ -f ../shared/gpt2/vocab.json ]; then
  CTFORMER_GPT2_DIR=$(cd ../shared/gpt2 && pwd)
  export CTFORMER_GPT2_DIR
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

summary="$build/fuzz-summary.txt"
printf '%-18s %8s %12s %10s %8s %9s\n' target seconds executions exec/s corpus findings | tee "$summary"
failed=()
for t in "${targets[@]}"; do
  work="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t"
  log="$build/fuzz-$t.log"
  if [ -n "$(ls -A "$artifacts" 2>/dev/null)" ]; then  # keep the last run's findings aside
    rm -rf "$artifacts.previous"
    mv "$artifacts" "$artifacts.previous"
  fi
  mkdir -p "$work" "$artifacts" "tests/fuzz/regressions/$t"
  dict=()
  [ -f "tests/fuzz/dicts/$t.dict" ] && dict=("-dict=tests/fuzz/dicts/$t.dict")
  # -timeout: an input that runs 10 s is a hang; -rss_limit_mb: more than 2 GiB is a finding;
  # -max_len: fixed, rather than guessed from the largest input in the corpus.
  status=0
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" \
    "$work" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "$work" -type f | wc -l)
  findings=$(find "$artifacts" -type f | wc -l)
  printf '%-18s %8s %12s %10s %8s %9s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$corpus" \
    "$findings" | tee -a "$summary"
  if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
    failed+=("$t")
    echo "--- fuzz_$t failed (exit $status); the end of $log:" >&2
    tail -40 "$log" >&2
    echo "--- inputs: $(find "$artifacts" -type f | tr '\n' ' ')" >&2
    echo "    reproduce: $build/tests/fuzz/fuzz_$t INPUT; once fixed, copy INPUT into" \
         "tests/fuzz/regressions/$t/ so that fuzz_replay_test keeps it fixed" >&2
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: every target ran ${seconds} s with no finding (summary: $summary)"
