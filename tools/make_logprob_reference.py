#!/usr/bin/env python3
"""Makes the Hugging Face transformers fixtures that ctformer's log-probability tests compare against.

Needs: pip install torch transformers safetensors   (not run in CI; its output is committed)
Run:   python3 tools/make_logprob_reference.py [--data tests/data]

For each model that tools/make_reference.py wrote into <data>/models, it reads the fixtures in
<data>/reference/<name>.json and writes <data>/reference/<name>.logprobs.json:
  greedy[i]     for the prompt followed by transformers' greedy continuation: each token's
                log-probability after the first (torch.log_softmax of the model's logits, in fp32),
                and the TOP most likely tokens at each place, with theirs
  sequences[i]  for each reference sequence: transformers' own language-modelling loss
                (GPT2LMHeadModel(ids, labels=ids).loss, the mean negative log-likelihood of the
                tokens after the first), and that of its first half and its second half given the
                first (labels -100 over the context), as a sliding-window perplexity sums it
  sliding       a random text three contexts long scored with a sliding window (transformers'
                perplexity guide: windows of n_positions tokens every n_positions / 2 tokens, each
                scoring the tokens after the previous window's end), its negative log-likelihood
                summed exactly over the tokens scored (the guide's loop counts one token fewer
                per window after the first)
  disjoint      the same text in windows that do not overlap (stride = n_positions): each window's
                first token has nothing before it in the window and is not scored
"""
import argparse
import json
import os

import torch
import transformers
from transformers import GPT2LMHeadModel

TOP = 5


def token_logprobs(model, ids):
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    out = []
    for t in range(1, len(ids)):
        row = logprobs[t - 1]
        # Most likely first; of equal ones the lower id first (a stable sort of the negation).
        order = torch.sort(-row, stable=True).indices[:TOP].tolist()
        out.append({"token": ids[t], "logprob": float(row[ids[t]]),
                    "top": [[i, float(row[i])] for i in order]})
    return out


def loss(model, ids, context=0):
    labels = torch.tensor([ids])
    labels[0, :context] = -100
    with torch.no_grad():
        return float(model(torch.tensor([ids]), labels=labels).loss)


def sliding_window(model, ids, context, stride):
    nll_sum, tokens, windows, prev_end = 0.0, 0, 0, 0
    for begin in range(0, len(ids), stride):
        end = min(begin + context, len(ids))
        target = end - prev_end
        labels = torch.tensor([ids[begin:end]])
        labels[0, :-target] = -100
        with torch.no_grad():
            mean = model(torch.tensor([ids[begin:end]]), labels=labels).loss
        scored = int((labels[0, 1:] != -100).sum())
        nll_sum += float(mean) * scored
        tokens += scored
        windows += 1
        prev_end = end
        if end == len(ids):
            break
    return {"ids": ids, "context": context, "stride": stride, "windows": windows,
            "tokens": tokens, "nll_sum": nll_sum}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
    args = parser.parse_args()
    for name in sorted(os.listdir(os.path.join(args.data, "models"))):
        model = GPT2LMHeadModel.from_pretrained(os.path.join(args.data, "models", name)).eval()
        with open(os.path.join(args.data, "reference", f"{name}.json")) as f:
            ref = json.load(f)
        greedy = [token_logprobs(model, g["prompt"] + g["generated"]) for g in ref["greedy"]]
        sequences = []
        for ids in ref["sequences"]:
            if len(ids) < 2:
                continue
            half = len(ids) // 2
            sequences.append({"tokens": len(ids), "loss": loss(model, ids),
                              "first_half_loss": loss(model, ids[:half + 1]),
                              "second_half_loss": loss(model, ids, context=half + 1)})
        context = model.config.n_positions
        generator = torch.Generator().manual_seed(99)
        text = torch.randint(0, model.config.vocab_size, (3 * context + 7,), generator=generator)
        sliding = sliding_window(model, text.tolist(), context, context // 2)
        disjoint = sliding_window(model, text.tolist(), context, context)
        with open(os.path.join(args.data, "reference", f"{name}.logprobs.json"), "w") as f:
            json.dump({"model": name, "top": TOP, "greedy": greedy, "sequences": sequences,
                       "sliding": sliding, "disjoint": disjoint,
                       "made_with": {"torch": torch.__version__,
                                     "transformers": transformers.__version__}}, f)
            f.write("\n")
        print(f"{name}: {len(greedy)} greedy cases, {len(sequences)} sequences")


if __name__ == "__main__":
    main()
