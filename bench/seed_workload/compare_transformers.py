#!/usr/bin/env python3
"""The seed workload (../shared/SEED-WORKLOAD.md): ctformer side by side with Hugging Face
transformers, same machine, same model directory, same prompts, in one run, on the CPU or a GPU.

Needs: pip install torch transformers; a built ctformer: the CLI (build/tools/ctformer/ctformer,
`bench --json`; a CUDA build of it for --device cuda) or, on the CPU, examples/example_seed_workload.
Run:   python3 bench/seed_workload/compare_transformers.py MODEL_DIR [--prompts N] \
           [--ctformer build/examples/example_seed_workload] [--hf-batch-sizes 1,64] \
           [--device cpu|cuda] [--dtype fp32|fp16|bf16]

transformers runs the seed's own code path, pipeline("text-generation") with max_length=50 and
greedy decoding, at each batch size given (left padding, as batched GPT-2 generation needs), on the
same device and with the same weight dtype (torch_dtype) as ctformer. Both sides count real
generated tokens (not padding) and the seed's "words per second" (whitespace words of prompt +
generated text). Prints a Markdown table for docs/performance.md.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time


def run_ctformer(binary, model_dir, prompts, batch, device, dtype):
    if os.path.basename(binary) == "ctformer":  # the CLI: bench --json over a prompt file
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("".join(f"My example {i}\n" for i in range(prompts)))
        try:
            out = subprocess.run([binary, "bench", "--model", model_dir, "--prompts", f.name,
                                  "--batch-size", str(batch), "--device", device, "--dtype", dtype,
                                  "--json"], check=True, capture_output=True, text=True).stdout
        finally:
            os.unlink(f.name)
        j = json.loads(out)
        return {"seconds": j["seconds"], "generated": j["generated_tokens"],
                "tokens_per_s": j["tokens_per_second"],
                "words_per_s": j.get("words_per_second", float("nan"))}
    if device != "cpu":
        sys.exit("example_seed_workload runs on the CPU only: pass --ctformer PATH/TO/ctformer")
    out = subprocess.run([binary, model_dir, "--prompts", str(prompts), "--batch-size", str(batch),
                          "--dtype", dtype], check=True, capture_output=True, text=True).stdout
    field = lambda name: float(re.search(rf"^{name}\s+([\d.]+)", out, re.M).group(1))
    return {"seconds": field("time"), "generated": int(field("generated tokens")),
            "tokens_per_s": field("throughput"),
            "words_per_s": float(re.search(r"seed's measure\s+([\d.]+)", out).group(1))}


def run_transformers(model_dir, prompts, batch, threads, device, dtype):
    import torch
    from transformers import AutoTokenizer, pipeline
    torch.set_num_threads(threads)
    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    tokenizer.pad_token = tokenizer.eos_token
    pipe = pipeline("text-generation", model=model_dir, tokenizer=tokenizer, device=device,
                    torch_dtype=torch_dtype)
    texts = [f"My example {i}" for i in range(prompts)]
    start = time.perf_counter()
    # return_tensors gives the ids (prompt + generated, padding removed), so that real generated
    # tokens are counted; the text is decoded as the pipeline decodes it.
    outputs = pipe(texts, max_length=50, do_sample=False, batch_size=batch, return_tensors=True,
                   pad_token_id=tokenizer.eos_token_id)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    generated = words = 0
    for text, out in zip(texts, outputs):
        ids = out[0]["generated_token_ids"]
        generated += len(ids) - len(tokenizer(text)["input_ids"])
        words += len(tokenizer.decode(ids, skip_special_tokens=True).split())
    return {"seconds": seconds, "generated": generated, "tokens_per_s": generated / seconds,
            "words_per_s": words / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--ctformer", default="build/examples/example_seed_workload")
    parser.add_argument("--ctformer-batch", type=int, default=64)
    parser.add_argument("--hf-batch-sizes", default="1,64")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32")
    args = parser.parse_args()

    rows = []
    print(f"ctformer, batch {args.ctformer_batch} ...", file=sys.stderr)
    rows.append((f"ctformer (continuous batching, max batch {args.ctformer_batch})",
                 run_ctformer(args.ctformer, args.model_dir, args.prompts, args.ctformer_batch,
                              args.device, args.dtype)))
    for batch in [int(b) for b in args.hf_batch_sizes.split(",")]:
        print(f"transformers pipeline, batch {batch} ...", file=sys.stderr)
        rows.append((f"transformers pipeline, batch_size {batch}",
                     run_transformers(args.model_dir, args.prompts, batch, args.threads,
                                          args.device, args.dtype)))

    where = "GPU" if args.device == "cuda" else f"CPU ({os.cpu_count()} cores)"
    print(f"\n{args.prompts} prompts, greedy, max_length 50, {args.dtype} weights, {where}\n")
    print("| engine | seconds | generated tokens | tokens/s | words/s (seed's unit) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in rows:
        print(f"| {name} | {r['seconds']:.1f} | {r['generated']} | {r['tokens_per_s']:.1f} "
              f"| {r['words_per_s']:.1f} |")


if __name__ == "__main__":
    main()
