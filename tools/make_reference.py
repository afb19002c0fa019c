#!/usr/bin/env python3
"""Makes the Hugging Face transformers fixtures that ctformer's model tests compare against.

Needs: pip install torch transformers safetensors   (not run in CI; its output is committed)
Run:   python3 tools/make_reference.py [--out tests/data]

For each of three random-weight GPT2LMHeadModel configurations (head sizes 16, 32 and 64, differing
in heads, layers, vocabulary, context and MLP width) it writes
  <out>/models/<name>/            a Hugging Face model directory (config.json, model.safetensors)
  <out>/reference/<name>.safetensors  logits of every position for fixed token sequences (fp32;
                                      the first model's include one of n_positions tokens)
  <out>/reference/<name>.json         those sequences, and greedy `generate` outputs (32 new tokens)
and <out>/dtypes.safetensors, the same values stored as F32, F16 and BF16 with torch's conversions.
One model is written with the hub's layout (no "transformer." prefix, with the attn.bias buffers that
openai-community/gpt2's file carries); the others as save_pretrained writes them.
"""
import argparse
import json
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

MODELS = {
    # name: (config kwargs, save with the hub's unprefixed layout)
    "gpt2-h16": (dict(vocab_size=320, n_positions=128, n_embd=32, n_layer=2, n_head=2), False),
    "gpt2-h32": (dict(vocab_size=500, n_positions=96, n_embd=64, n_layer=2, n_head=2,
                      layer_norm_epsilon=1e-6), True),
    "gpt2-h64": (dict(vocab_size=400, n_positions=128, n_embd=128, n_layer=1, n_head=2,
                      n_inner=320), False),
}
SEQUENCE_LENGTHS = [1, 5, 17, 40]
GREEDY_PROMPT_LENGTHS = [1, 4, 9]
GREEDY_NEW_TOKENS = 32


def randomize(model, generator):
    """HF's init leaves biases at 0 and LayerNorm at 1; give every parameter a random value so
    that each one is exercised, with magnitudes that keep greedy choices well separated."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
            else:
                p.copy_(0.1 * noise)


def greedy_margin(model, ids):
    """Smallest gap between the best and second-best logit along the greedy path."""
    with torch.no_grad():
        logits = model(ids).logits[0]
    top2 = logits.topk(2, dim=-1).values
    return float((top2[:, 0] - top2[:, 1]).min())


def make_model(name, kwargs, hub_layout, out, seed, first_model):
    generator = torch.Generator().manual_seed(seed)
    vocab = kwargs["vocab_size"]
    config = GPT2Config(**kwargs, bos_token_id=vocab - 1, eos_token_id=vocab - 1)
    model = GPT2LMHeadModel(config).eval()
    randomize(model, generator)

    model_dir = os.path.join(out, "models", name)
    os.makedirs(model_dir, exist_ok=True)
    if hub_layout:
        config.save_pretrained(model_dir)
        state = {k.removeprefix("transformer."): v.contiguous()
                 for k, v in model.state_dict().items() if k != "lm_head.weight"}
        for i in range(config.n_layer):  # the causal-mask buffer the hub's gpt2 file carries
            state[f"h.{i}.attn.bias"] = torch.tril(
                torch.ones(config.n_positions, config.n_positions)).view(
                    1, 1, config.n_positions, config.n_positions)
        save_file(state, os.path.join(model_dir, "model.safetensors"), metadata={"format": "pt"})
    else:
        model.save_pretrained(model_dir, safe_serialization=True)
    for extra in ("generation_config.json",):
        path = os.path.join(model_dir, extra)
        if os.path.exists(path):
            os.remove(path)

    sequences = [torch.randint(0, vocab, (n,), generator=generator).tolist()
                 for n in SEQUENCE_LENGTHS + [config.n_positions] * first_model]
    tensors = {}
    with torch.no_grad():
        for i, seq in enumerate(sequences):
            tensors[f"logits.{i}"] = model(torch.tensor([seq])).logits[0].contiguous()
    save_file(tensors, os.path.join(out, "reference", f"{name}.safetensors"))

    greedy = []
    for n in GREEDY_PROMPT_LENGTHS:
        prompt = torch.randint(0, vocab, (n,), generator=generator)
        with torch.no_grad():
            output = model.generate(prompt[None], max_new_tokens=GREEDY_NEW_TOKENS,
                                    do_sample=False, pad_token_id=config.eos_token_id,
                                    attention_mask=torch.ones(1, n, dtype=torch.long))
        generated = output[0, n:].tolist()
        margin = greedy_margin(model, output[:, :-1])
        print(f"{name}: greedy prompt of {n} tokens -> {len(generated)} tokens, "
              f"smallest top-1/top-2 logit gap {margin:.4f}")
        greedy.append({"prompt": prompt.tolist(), "generated": generated,
                       "smallest_top2_gap": margin})

    with open(os.path.join(out, "reference", f"{name}.json"), "w") as f:
        json.dump({"model": name, "sequences": sequences, "greedy": greedy,
                   "max_new_tokens": GREEDY_NEW_TOKENS,
                   "made_with": {"torch": torch.__version__,
                                 "transformers": transformers.__version__}}, f)
        f.write("\n")


def make_dtypes(out):
    values = torch.tensor([0.0, -0.0, 1.0, -2.5, 3.140625, 65504.0, 6.1e-5, 5.96e-8, 1e-7,
                           70000.0, 1e-40, 0.1, -123.456, float("inf"), float("-inf")])
    save_file({"f32": values,
               "f16": values.half(), "f16_as_f32": values.half().float(),
               "bf16": values.bfloat16(), "bf16_as_f32": values.bfloat16().float(),
               "i64": torch.arange(4, dtype=torch.int64)},
              os.path.join(out, "dtypes.safetensors"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
    args = parser.parse_args()
    torch.manual_seed(0)
    os.makedirs(os.path.join(args.out, "reference"), exist_ok=True)
    for seed, (name, (kwargs, hub_layout)) in enumerate(MODELS.items()):
        make_model(name, kwargs, hub_layout, args.out, seed=1234 + seed, first_model=seed == 0)
    make_dtypes(args.out)


if __name__ == "__main__":
    main()
