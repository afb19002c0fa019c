#!/usr/bin/env python3
"""Makes the Hugging Face transformers fixtures that ctformer's token-bias tests compare against.

Needs: pip install torch transformers safetensors   (not run in CI; its output is committed)
Run:   python3 tools/make_token_bias_reference.py [--data tests/data]

For each model that tools/make_reference.py wrote into <data>/models, it takes the greedy prompts of
<data>/reference/<name>.json and writes <data>/reference/<name>.biases.json: greedy `generate`
outputs of transformers under the parameters of each case below, and the smallest gap between the
best and second-best processed score along each output (a gap near 0 would make the comparison
depend on rounding).
  logit_bias           transformers' sequence_bias with single tokens (OpenAI's logit_bias): one
                       token raised, the unbiased greedy choice banned (-inf)
  min_new_tokens       end-of-text raised far above the rest, banned until min_new_tokens
  min_length           the same with min_length (prompt included)
  no_repeat_ngram_*    no_repeat_ngram_size 1, 2 and 3
  penalties_*          OpenAI's presence and frequency penalties, which transformers lacks: a
                       logits processor below that follows OpenAI's definition (each generated
                       token's logit lowered by presence_penalty, and by frequency_penalty times its
                       count), alone and after transformers' repetition penalty (vLLM's order)
  bias_then_repetition a logit bias and the repetition penalty together (the bias first, as both
                       transformers and vLLM apply them)
"""
import argparse
import json
import os

import torch
import transformers
from transformers import GPT2LMHeadModel, LogitsProcessor, LogitsProcessorList

NEW_TOKENS = 24


class OpenAIPenalties(LogitsProcessor):
    """OpenAI's presence and frequency penalties on the tokens generated after the prompt."""

    def __init__(self, prompt_length, presence, frequency):
        self.prompt_length, self.presence, self.frequency = prompt_length, presence, frequency

    def __call__(self, input_ids, scores):
        generated = input_ids[:, self.prompt_length:]
        counts = torch.zeros_like(scores)
        counts.scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


def run(model, prompt, params):
    """transformers' greedy generate under `params` (ctformer's names), and its smallest gap."""
    eos = model.config.eos_token_id
    kwargs = dict(max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=eos,
                  attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                  output_scores=True, return_dict_in_generate=True)
    if "logit_bias" in params:
        kwargs["sequence_bias"] = {(int(t),): b for t, b in params["logit_bias"].items()}
    for key in ("min_new_tokens", "min_length", "no_repeat_ngram_size", "repetition_penalty"):
        if key in params:
            kwargs[key] = params[key]
    if "presence_penalty" in params or "frequency_penalty" in params:
        kwargs["logits_processor"] = LogitsProcessorList([OpenAIPenalties(
            len(prompt), params.get("presence_penalty", 0.0), params.get("frequency_penalty", 0.0))])
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), **kwargs)
    gap = min(float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in out.scores)
    return out.sequences[0, len(prompt):].tolist(), gap


def cases(model, prompt):
    eos = model.config.eos_token_id
    plain, _ = run(model, prompt, {})
    first, other = plain[0], (plain[0] + 7) % model.config.vocab_size
    return {
        "logit_bias": {"logit_bias": {str(first): float("-inf"), str(other): 2.5}},
        "min_new_tokens": {"logit_bias": {str(eos): 30.0}, "min_new_tokens": 5},
        "min_length": {"logit_bias": {str(eos): 30.0}, "min_length": len(prompt) + 3},
        "no_repeat_ngram_1": {"no_repeat_ngram_size": 1},
        "no_repeat_ngram_2": {"no_repeat_ngram_size": 2},
        "no_repeat_ngram_3": {"no_repeat_ngram_size": 3},
        "penalties": {"presence_penalty": 0.6, "frequency_penalty": 0.4},
        "penalties_negative": {"presence_penalty": -0.3, "frequency_penalty": 0.9},
        "penalties_after_repetition": {"repetition_penalty": 1.3, "presence_penalty": 0.5,
                                       "frequency_penalty": 0.25},
        "bias_then_repetition": {"logit_bias": {str(first): 1.5, str(prompt[-1]): -0.75},
                                 "repetition_penalty": 1.6},
    }


def to_json(params):
    """-inf (a ban) as the string "-inf": JSON has no infinities."""
    out = dict(params)
    if "logit_bias" in out:
        out["logit_bias"] = {t: "-inf" if b == float("-inf") else b
                             for t, b in out["logit_bias"].items()}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
    args = parser.parse_args()
    for name in sorted(os.listdir(os.path.join(args.data, "models"))):
        model = GPT2LMHeadModel.from_pretrained(os.path.join(args.data, "models", name)).eval()
        with open(os.path.join(args.data, "reference", f"{name}.json")) as f:
            ref = json.load(f)
        out = []
        for g in ref["greedy"]:
            prompt = g["prompt"]
            for case, params in cases(model, prompt).items():
                generated, gap = run(model, prompt, params)
                out.append({"case": case, "prompt": prompt, "params": to_json(params),
                            "generated": generated, "smallest_top2_gap": gap})
                print(f"{name} {case} prompt {len(prompt)}: {len(generated)} tokens, gap {gap:.4f}")
        with open(os.path.join(args.data, "reference", f"{name}.biases.json"), "w") as f:
            json.dump({"model": name, "max_new_tokens": NEW_TOKENS, "cases": out,
                       "made_with": {"torch": torch.__version__,
                                     "transformers": transformers.__version__}}, f)
            f.write("\n")


if __name__ == "__main__":
    main()
