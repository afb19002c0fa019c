#!/usr/bin/env python3
"""Makes a full-size GPT-2 (124M, openai-community/gpt2's configuration) with random weights, as a
Hugging Face model directory, for benchmarks: its speed is that of the trained model.

Needs: pip install torch transformers safetensors
Run:   python3 tools/make_random_gpt2.py OUT_DIR [--vocab-dir DIR] [--seed N]
The tokenizer files (vocab.json, merges.txt) are copied from --vocab-dir, else $CTFORMER_GPT2_DIR,
else ../shared/gpt2 beside the repository.
"""
import argparse
import os
import shutil

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--vocab-dir", default=os.environ.get(
        "CTFORMER_GPT2_DIR",
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "gpt2")))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    for name in ("vocab.json", "merges.txt"):
        if not os.path.isfile(os.path.join(args.vocab_dir, name)):
            raise SystemExit(f"error: {name} not found in {args.vocab_dir}; pass --vocab-dir DIR "
                             "(a folder with GPT-2's vocab.json and merges.txt)")
    torch.manual_seed(args.seed)
    model = GPT2LMHeadModel(GPT2Config()).eval()  # the defaults are gpt2 (124M)
    model.save_pretrained(args.out_dir, safe_serialization=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(args.vocab_dir, name), os.path.join(args.out_dir, name))
    print(f"wrote a random-weight GPT-2 124M to {args.out_dir}")


if __name__ == "__main__":
    main()
