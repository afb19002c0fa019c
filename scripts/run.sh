#!/usr/bin/env bash
# Sets up, builds and runs the main job: greedy generation on the seed workload (1,000 prompts
# "My example N", max_length 50) with a GPT-2 model: MODEL_DIR, a hub name, or by default gpt2
# from the Hugging Face cache (downloaded into it by `ctformer download gpt2` when missing).
#   scripts/run.sh [MODEL_DIR|NAME] [--prompts N] [--batch-size N] [--dtype fp32|fp16|bf16]
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
usage: scripts/run.sh [MODEL_DIR|NAME] [--prompts N] [--batch-size N] [--dtype fp32|fp16|bf16]

MODEL_DIR is a Hugging Face GPT-2 folder with config.json, model.safetensors, vocab.json and
merges.txt (for example a copy of https://huggingface.co/openai-community/gpt2).
NAME is a hub model: gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, or owner/name.
Without either, gpt2 is used: from the Hugging Face cache (~/.cache/huggingface/hub, or HF_HOME,
HF_HUB_CACHE) when it is there, else downloaded into it with `ctformer download gpt2` (this needs
network access to huggingface.co, or a mirror in HF_ENDPOINT; see docs/download.md).
Without network access, pass a model folder. To make a random-weight GPT-2 124M of the same size
and speed (needs pip install torch transformers safetensors):
    python3 tools/make_random_gpt2.py /tmp/gpt2-random && scripts/run.sh /tmp/gpt2-random
USAGE
}

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  usage
  exit 0
fi

check_model_dir() {
  for f in config.json model.safetensors vocab.json merges.txt; do
    if [ ! -f "$1/$f" ]; then
      echo "run.sh: error: '$1' has no $f; a GPT-2 model folder needs config.json," \
           "model.safetensors, vocab.json and merges.txt (see scripts/run.sh --help)" >&2
      exit 1
    fi
  done
}

# The first argument, unless it is an option, names the model.
model_dir=
model_name=gpt2
if [ $# -ge 1 ] && [[ "$1" != -* ]]; then
  if [ -d "$1" ]; then
    model_dir=$1
    check_model_dir "$model_dir"
  elif [[ "$1" =~ ^(gpt2|gpt2-medium|gpt2-large|gpt2-xl|distilgpt2)$ ]] ||
       [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$ && ! -e "$1" ]]; then
    model_name=$1
  else
    echo "run.sh: error: '$1' is neither a model folder nor a hub model name (gpt2," \
         "gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, owner/name); see scripts/run.sh --help" >&2
    exit 1
  fi
  shift
fi

scripts/install-deps.sh
build=${CTFORMER_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target example_seed_workload ctformer_cli

if [ -z "$model_dir" ]; then
  # Prints the model folder. Files already in the cache are not fetched again, and when the hub
  # cannot be reached a model in the cache is used as it is; progress and errors go to stderr.
  if ! model_dir=$("$build/tools/ctformer/ctformer" download "$model_name"); then
    echo "run.sh: error: could not get $model_name from the Hugging Face hub (the reason is above);" \
         "if this machine has no network access to the hub, give a model folder instead:" \
         "scripts/run.sh MODEL_DIR (see scripts/run.sh --help to make one)" >&2
    exit 1
  fi
  check_model_dir "$model_dir"
fi
exec "$build/examples/example_seed_workload" "$model_dir" "$@"
