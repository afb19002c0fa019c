#!/usr/bin/env python3
"""Checks `ctformer serve` with OpenAI's own Python client (pip install openai): a completion, the
same completion streamed, two choices streamed side by side, log-probabilities (of the prompt too,
with echo), logit_bias and the penalties, the model list, and the errors the client maps to its
exception types.

    build/tools/ctformer/ctformer serve --model gpt2 --port 8000 --api-key KEY &
    python3 tools/openai_client_check.py --url http://127.0.0.1:8000/v1 --api-key KEY

Exits 0 when every check passes; prints what it saw either way. CI does not install the client,
so this is run by hand (docs/serving.md records the versions checked).
"""
import argparse
import sys

import openai
from openai import OpenAI


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key", default="unused")
    args = parser.parse_args()
    client = OpenAI(base_url=args.url, api_key=args.api_key)
    model = client.models.list().data[0].id
    print(f"openai {openai.__version__}, model {model!r}")

    whole = client.completions.create(model=model, prompt="My example 0", max_tokens=8,
                                      temperature=0)
    print("completion:", repr(whole.choices[0].text), whole.choices[0].finish_reason, whole.usage)
    parts, usage = [], None
    for chunk in client.completions.create(model=model, prompt="My example 0", max_tokens=8,
                                           temperature=0, stream=True,
                                           stream_options={"include_usage": True}):
        parts.extend(c.text for c in chunk.choices)
        usage = chunk.usage or usage
    print("streamed:  ", repr("".join(parts)), usage)
    assert "".join(parts) == whole.choices[0].text, "the streamed text differs"
    assert usage.completion_tokens == whole.usage.completion_tokens

    # Two choices streamed: their chunks interleave, each carrying its index; put together they
    # are the same request's choices unstreamed.
    texts = ["", ""]
    for chunk in client.completions.create(model=model, prompt="My example 0", max_tokens=8, n=2,
                                           seed=5, stream=True):
        for c in chunk.choices:
            texts[c.index] += c.text
    whole_n = client.completions.create(model=model, prompt="My example 0", max_tokens=8, n=2,
                                        seed=5)
    print("n=2:       ", texts)
    assert texts == [c.text for c in sorted(whole_n.choices, key=lambda c: c.index)]

    scored = client.completions.create(model=model, prompt="My example 0", max_tokens=4,
                                       temperature=0, logprobs=3, echo=True)
    lp = scored.choices[0].logprobs
    print("logprobs:  ", list(zip(lp.tokens, lp.token_logprobs)), lp.text_offset)
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(v <= 0 for v in lp.token_logprobs[1:])
    assert all(len(top) <= 4 and lp.tokens[i + 1] in top
               for i, top in enumerate(lp.top_logprobs[1:]))
    assert "".join(lp.tokens) == scored.choices[0].text
    assert scored.choices[0].text.startswith("My example 0")

    # logit_bias and the penalties as the client sends them (vLLM's extensions in extra_body):
    # +100 on " the" (262) makes every token " the"; no_repeat_ngram_size 2 then allows it twice.
    the = client.completions.create(model=model, prompt="My example 0", max_tokens=4,
                                    temperature=0, logit_bias={"262": 100})
    print("logit_bias:", repr(the.choices[0].text))
    assert the.choices[0].text == " the" * 4
    once = client.completions.create(model=model, prompt="My example 0", max_tokens=4,
                                     temperature=0, logit_bias={"262": 100}, presence_penalty=1.0,
                                     frequency_penalty=0.5,
                                     extra_body={"no_repeat_ngram_size": 2, "min_tokens": 4,
                                                 "min_p": 0.05})
    print("penalties: ", repr(once.choices[0].text))
    assert once.choices[0].text.startswith(" the the") and once.choices[0].text != " the" * 4

    def refused(error_type, **request):
        try:
            client.completions.create(model=model, prompt="x", **request)
        except error_type as e:
            print(f"{error_type.__name__}: {e.status_code} {e.message}")
            return
        raise AssertionError(f"{request} was not refused with {error_type.__name__}")

    refused(openai.BadRequestError, logprobs=21)
    refused(openai.BadRequestError, logit_bias={"1": 101})
    refused(openai.BadRequestError, presence_penalty=2.5)
    refused(openai.NotFoundError, extra_body={"model": "no-such-model"})
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("the chat API answered")
    except openai.NotFoundError as e:
        print(f"chat: NotFoundError {e.status_code} {e.message}")
    print("openai_client_check: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
