#!/usr/bin/env python3
"""Sliding-window perplexity: `ctformer perplexity` side by side with Hugging Face transformers on
the same machine, model directory and text: both figures, their difference, and both times.

Needs: pip install torch transformers; a built ctformer CLI (build/tools/ctformer/ctformer).
Run:   python3 bench/perplexity/compare_transformers.py MODEL_DIR TEXT_FILE \
           [--ctformer build/tools/ctformer/ctformer] [--context N] [--stride N] \
           [--device cpu|cuda] [--dtype fp32|fp16|bf16]

transformers runs the loop of its perplexity guide (one window per forward pass, labels -100 over
each window's context), with each window's loss weighted by the tokens it really scores (the guide
weights the windows after the first by one token fewer); the text is tokenized once, by
transformers' GPT-2 tokenizer, and ctformer tokenizes the same file with its own. Prints a Markdown
table for docs/performance.md.
"""
import argparse
import json
import math
import subprocess
import time


def run_ctformer(binary, model_dir, text_file, context, stride, device, dtype):
    command = [binary, "perplexity", "--model", model_dir, "--file", text_file, "--device", device,
               "--dtype", dtype, "--json"]
    if context:
        command += ["--context", str(context)]
    if stride:
        command += ["--stride", str(stride)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def run_transformers(model_dir, text, context, stride, device, dtype):
    import torch
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast

    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    tokenizer = GPT2TokenizerFast.from_pretrained(model_dir)
    model = GPT2LMHeadModel.from_pretrained(model_dir, torch_dtype=torch_dtype).to(device).eval()
    ids = tokenizer(text, return_tensors="pt").input_ids.to(device)
    context = context or model.config.n_positions
    stride = stride or context // 2
    start = time.perf_counter()
    nll_sum, tokens, windows, prev_end = 0.0, 0, 0, 0
    for begin in range(0, ids.size(1), stride):
        end = min(begin + context, ids.size(1))
        target = end - prev_end
        input_ids = ids[:, begin:end]
        labels = input_ids.clone()
        labels[:, :-target] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=labels).loss
        scored = int((labels[0, 1:] != -100).sum())
        nll_sum += float(loss) * scored
        tokens += scored
        windows += 1
        prev_end = end
        if end == ids.size(1):
            break
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"text_tokens": ids.size(1), "scored_tokens": tokens, "windows": windows,
            "mean_nll": nll_sum / tokens, "perplexity": math.exp(nll_sum / tokens),
            "seconds": seconds, "context": context, "stride": stride,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("text_file")
    parser.add_argument("--ctformer", default="build/tools/ctformer/ctformer")
    parser.add_argument("--context", type=int, default=0)
    parser.add_argument("--stride", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    args = parser.parse_args()
    with open(args.text_file, encoding="utf-8") as f:
        text = f.read()

    ours = run_ctformer(args.ctformer, args.model_dir, args.text_file, args.context, args.stride,
                        args.device, args.dtype)
    theirs = run_transformers(args.model_dir, text, args.context, args.stride, args.device,
                              args.dtype)
    print(f"text: {args.text_file}, {theirs['text_tokens']} tokens (ctformer's tokenizer: "
          f"{ours['text_tokens']}); context {theirs['context']}, stride {theirs['stride']}, "
          f"{theirs['windows']} windows; {args.device} {args.dtype}; torch {theirs['torch']} "
          f"with {theirs['threads']} threads\n")
    print("| | perplexity | mean NLL (nats) | tokens scored | time | scored tokens/s |")
    print("|---|---|---|---|---|---|")
    for name, r in (("ctformer", ours), ("transformers", theirs)):
        print(f"| {name} | {r['perplexity']:.4f} | {r['mean_nll']:.6f} | {r['scored_tokens']} | "
              f"{r['seconds']:.2f} s | {r['scored_tokens'] / r['seconds']:.0f} |")
    print(f"\nmean NLL difference {abs(ours['mean_nll'] - theirs['mean_nll']):.2e} nats; "
          f"ctformer {theirs['seconds'] / ours['seconds']:.2f}x transformers' speed")
    if ours["text_tokens"] != theirs["text_tokens"]:
        print("WARNING: the two tokenizers gave different token counts")


if __name__ == "__main__":
    main()
