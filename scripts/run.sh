#!/usr/bin/env bash
# Sets up, builds and runs the main job: greedy generation on the seed workload (1,000 prompts
# "My example N", max_length 50) with the GPT-2 model in MODEL_DIR.
#   scripts/run.sh MODEL_DIR [--prompts N] [--batch-size N] [--dtype fp32|fp16|bf16]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ "${1:-}" = "--help" ]; then
  cat >&2 <<'USAGE'
usage: scripts/run.sh MODEL_DIR [--prompts N] [--batch-size N] [--dtype fp32|fp16|bf16]

MODEL_DIR is a Hugging Face GPT-2 folder with config.json, model.safetensors, vocab.json and
merges.txt (for example a copy of https://huggingface.co/openai-community/gpt2).
To make a random-weight GPT-2 124M of the same size and speed (needs pip install torch
transformers safetensors):   python3 tools/make_random_gpt2.py /tmp/gpt2-random
USAGE
  exit 2
fi
model_dir=$1
shift
for f in config.json model.safetensors vocab.json merges.txt; do
  if [ ! -f "$model_dir/$f" ]; then
    echo "run.sh: error: '$model_dir' has no $f; a GPT-2 model folder needs config.json," \
         "model.safetensors, vocab.json and merges.txt (see scripts/run.sh --help)" >&2
    exit 1
  fi
done

scripts/install-deps.sh
build=${CTFORMER_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target example_seed_workload ctformer_cli
exec "$build/examples/example_seed_workload" "$model_dir" "$@"
