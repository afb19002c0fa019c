#!/usr/bin/env python3
"""Write the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) and the small byte-level BPE
vocabulary the tokenizer_encode target runs on when the real GPT-2 one is not found
(tests/fuzz/data/vocab.json, merges.txt).

The vocabulary is trained here, by plain byte-level BPE over GPT-2's pre-tokenization, on the text
below (no OpenAI file is copied). The seeds are well-formed inputs and the malformed variants that
tests/io and tests/tokenizer check, so that the fuzzer starts from every error path.

Run from the repository root (needs `pip install regex`); the output is deterministic:
    python3 tests/fuzz/make_seeds.py
libFuzzer finds more inputs from these; scripts/fuzz.sh keeps those in build-fuzz/, not here.
"""

import json
import os
import struct
from collections import Counter

import regex

ROOT = os.path.dirname(os.path.abspath(__file__))
EOT = "<|endoftext|>"
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

TRAINING_TEXT = """\
ctformer is a header-only, compile-time-composed GPT-2 inference library in C++20. Layers such as
the embedding, LayerNorm, causal self-attention with a paged KV cache, and the MLP are templates that
compose into a model type. It loads Hugging Face model folders with config.json, model.safetensors,
vocab.json and merges.txt, and has its own byte-exact tokenizer. The generator serves many requests
at once with continuous batching: each step admits waiting requests as cache space allows, runs one
forward pass that mixes prefill and decode, and samples every request's next token with its own
temperature, top-k, top-p and repetition penalty. Requests can be cancelled; their blocks return to
the pool. It's the model's context that limits a prompt; we'll see, they've said, you're right, I'd
rather not, she'll try. Numbers: 0 1 2 3 12 123 2024 3.14159 1,000,000 42nd 7x9=63.
Punctuation!? (parentheses) [brackets] {braces} "quotes" 'single' -- dashes... ellipsis; semi: colon
Whitespace   runs\tand\ttabs\n\nnew lines   and trailing spaces   
Français: élève, garçon, où, déjà vu, naïve café. Deutsch: Größe, Übung, Straße, schön.
Español: ¿Dónde está la biblioteca? ¡Mañana! Português: ação, coração, não.
Русский: привет, как дела? Ελληνικά: γειά σου κόσμε. עברית: שלום עולם. العربية: مرحبا بالعالم.
中文：你好，世界。日本語：こんにちは、世界。한국어: 안녕하세요 세계. हिन्दी: नमस्ते दुनिया. ไทย: สวัสดีชาวโลก
Emoji: 👋🌍 🎉🎉 👨‍👩‍👧‍👦 ❤️ 🇫🇷 ✨ Math: ∑ ∫ √ ≤ ≥ ≠ ∞ π θ λ. Symbols: © ® ™ € £ ¥ § ¶ • ° ± × ÷
"""


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()


def spell(bs: bytes) -> str:
    return "".join(B2U[b] for b in bs)


def train_bpe(text: str, merges_wanted: int):
    """Byte-level BPE: returns (tokens as bytes in id order, merges as byte pairs in rank order)."""
    words = Counter(tuple(bytes([b]) for b in piece.encode("utf-8"))
                    for piece in regex.findall(GPT2_PATTERN, text))
    tokens = [bytes([b]) for b in range(256)]
    known = set(tokens)
    merges = []
    while len(merges) < merges_wanted:
        pairs = Counter()
        for word, count in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += count
        if not pairs:
            break
        # The most frequent pair; ties by the pair's bytes, so that the result is deterministic.
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merged = a + b
        merges.append((a, b))
        if merged not in known:
            known.add(merged)
            tokens.append(merged)
        new_words = Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] += count
        words = new_words
    return tokens, merges


def vocab_json(tokens) -> str:
    vocab = {spell(t): i for i, t in enumerate(tokens)}
    vocab[EOT] = len(tokens)
    return json.dumps(vocab, ensure_ascii=False)


def merges_txt(merges) -> str:
    return "#version: 0.2\n" + "".join(f"{spell(a)} {spell(b)}\n" for a, b in merges)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, raw_header=None, claimed_len=None, extra=b""):
    """tensors: [(name, dtype, shape, bytes)] packed in order; or a raw header string."""
    data = b""
    if raw_header is None:
        header = {}
        if metadata is not None:
            header["__metadata__"] = metadata
        for name, dtype, shape, payload in tensors:
            header[name] = {"dtype": dtype, "shape": shape,
                            "data_offsets": [len(data), len(data) + len(payload)]}
            data += payload
        raw_header = json.dumps(header, separators=(",", ":"))
    h = raw_header.encode("utf-8")
    n = len(h) if claimed_len is None else claimed_len
    return struct.pack("<Q", n) + h + data + extra


def safetensors_seeds():
    f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
    f16 = lambda *v: struct.pack(f"<{len(v)}e", *v)
    bf16 = lambda *v: b"".join(struct.pack("<f", x)[2:] for x in v)
    sizes = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
             "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
    seeds = {
        "gpt2_like": safetensors([
            ("wte.weight", "F32", [4, 2], f32(0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8)),
            ("wpe.weight", "F16", [2, 2], f16(1.0, -1.0, 0.5, 65504.0)),
            ("h.0.ln_1.weight", "BF16", [2], bf16(1.0, -2.5)),
            ("h.0.attn.bias", "BOOL", [1, 1, 2, 2], b"\x01\x00\x01\x01"),
        ], metadata={"format": "pt"}),
        "transformer_prefix": safetensors([
            ("transformer.wte.weight", "F32", [2, 2], f32(1, 2, 3, 4)),
            ("lm_head.weight", "F32", [2, 2], f32(1, 2, 3, 4)),
        ]),
        "every_dtype": safetensors([(d.lower(), d, [3], bytes(range(3 * s))) for d, s in sizes.items()]),
        "scalar_and_empty": safetensors([("scalar", "F32", [], f32(3.5)),
                                         ("empty", "F16", [0, 7], b""),
                                         ("after", "BF16", [1], bf16(2.0))]),
        "special_floats": safetensors([("x", "F16", [6], f16(0.0, -0.0, float("inf"), float("-inf"),
                                                              float("nan"), 6e-8)),
                                       ("y", "BF16", [3], bf16(float("inf"), float("nan"), 1e-40))]),
        "header_padding": safetensors([], raw_header='{"a":{"dtype":"F32","shape":[1],'
                                      '"data_offsets":[0,4]}}    ', extra=f32(1.0)),
        "empty_header": safetensors([], raw_header="{}"),
        "only_metadata": safetensors([], metadata={"k": "v"}),
        # Malformed, one fault each (the cases of tests/io/safetensors_test.cpp).
        "truncated_length": b"\x05\x00\x00",
        "length_too_big": struct.pack("<Q", 1000) + b"{}",
        "length_huge": struct.pack("<Q", 2**64 - 1) + b"{}",
        "not_json": safetensors([], raw_header="{not json"),
        "not_object": safetensors([], raw_header="[1,2,3]"),
        "entry_not_object": safetensors([], raw_header='{"a":[1]}'),
        "unknown_dtype": safetensors([], raw_header='{"a":{"dtype":"F128","shape":[1],'
                                     '"data_offsets":[0,16]}}', extra=bytes(16)),
        "dtype_not_string": safetensors([], raw_header='{"a":{"dtype":4,"shape":[1],'
                                        '"data_offsets":[0,4]}}', extra=bytes(4)),
        "negative_dim": safetensors([], raw_header='{"a":{"dtype":"F32","shape":[-1],'
                                    '"data_offsets":[0,4]}}', extra=bytes(4)),
        "float_dim": safetensors([], raw_header='{"a":{"dtype":"F32","shape":[1.5],'
                                 '"data_offsets":[0,4]}}', extra=bytes(4)),
        "huge_dims": safetensors([], raw_header='{"a":{"dtype":"F32","shape":[1099511627776,'
                                 '1099511627776],"data_offsets":[0,0]}}'),
        "offsets_outside": safetensors([], raw_header='{"a":{"dtype":"F32","shape":[4],'
                                       '"data_offsets":[0,16]}}', extra=bytes(12)),
        "offsets_reversed": safetensors([], raw_header='{"a":{"dtype":"F32","shape":[1],'
                                        '"data_offsets":[8,4]}}', extra=bytes(8)),
        "offsets_three": safetensors([], raw_header='{"a":{"dtype":"F32","shape":[1],'
                                     '"data_offsets":[0,4,8]}}', extra=bytes(8)),
        "wrong_size": safetensors([], raw_header='{"a":{"dtype":"F32","shape":[2],'
                                  '"data_offsets":[0,4]}}', extra=bytes(4)),
        "overlap": safetensors([], raw_header='{"a":{"dtype":"F32","shape":[2],'
                               '"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],'
                               '"data_offsets":[4,12]}}', extra=bytes(12)),
        "nested_shape": safetensors([], raw_header='{"a":{"dtype":"F32","shape":[[[[[1]]]]],'
                                    '"data_offsets":[0,4]}}', extra=bytes(4)),
    }
    with open(os.path.join(ROOT, "..", "data", "dtypes.safetensors"), "rb") as f:
        seeds["dtypes_fixture"] = f.read()
    return seeds


def config_seeds():
    gpt2 = {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
        "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
        "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
        "resid_pdrop": 0.1, "summary_activation": None, "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True, "summary_type": "cls_index", "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": 50257,
    }
    seeds = {"gpt2": json.dumps(gpt2, indent=2)}
    for name in ("gpt2-h16", "gpt2-h32", "gpt2-h64"):
        with open(os.path.join(ROOT, "..", "data", "models", name, "config.json")) as f:
            seeds[name] = f.read()

    def variant(name, **changes):
        c = dict(gpt2)
        for k, v in changes.items():
            if v is ...:
                c.pop(k, None)
            else:
                c[k] = v
        seeds[name] = json.dumps(c)

    variant("n_ctx_only", n_positions=...)
    variant("n_inner", n_inner=3072, scale_attn_weights=False, tie_word_embeddings=True)
    variant("missing_vocab", vocab_size=...)
    variant("zero_head", n_head=0)
    variant("indivisible", n_head=7)
    variant("float_dim", n_embd=768.0)
    variant("string_dim", n_layer="12")
    variant("huge_dim", n_embd=2**62, n_inner=None)
    variant("negative_dim", n_positions=-1)
    variant("bad_eps", layer_norm_epsilon=0)
    variant("tiny_eps", layer_norm_epsilon=1e-300)
    variant("bad_activation", activation_function="relu")
    variant("other_model", model_type="llama")
    variant("cross_attention", add_cross_attention=True)
    variant("eos_out_of_range", eos_token_id=50257)
    variant("small_vocab_default_eos", vocab_size=100, bos_token_id=..., eos_token_id=...)
    variant("bool_scale", scale_attn_weights="yes")
    seeds["not_object"] = "[1, 2, 3]"
    seeds["empty_object"] = "{}"
    seeds["not_json"] = '{"vocab_size": 50257,'
    # generation_config.json: the same target reads every input as both files.
    seeds["generation_config_gpt2"] = json.dumps(
        {"_from_model_config": True, "bos_token_id": 50256, "eos_token_id": 50256,
         "transformers_version": "4.26.0.dev0"})
    seeds["generation_config_sampling"] = json.dumps(
        {"do_sample": True, "temperature": 0.7, "top_k": 40, "top_p": 0.95,
         "repetition_penalty": 1.2, "max_length": 100, "max_new_tokens": 64})
    seeds["generation_config_nulls"] = json.dumps({"max_length": None, "max_new_tokens": None})
    seeds["generation_config_bad"] = json.dumps(
        {"do_sample": "yes", "temperature": -1, "top_k": 1e30, "top_p": 2, "max_length": 1e300})
    return seeds


def tokenizer_load_seeds(tokens, merges):
    """Input format of tokenizer_load: vocab.json NUL merges.txt [NUL text to encode]."""
    small_tokens, small_merges = tokens[:256 + 48], merges[:48]
    vocab = vocab_json(small_tokens)
    m = merges_txt(small_merges)
    text = "Hello, world! It's a naïve café 👋 <|endoftext|> 12345   end"
    seeds = {
        "small": vocab + "\0" + m + "\0" + text,
        "small_crlf": vocab + "\0" + m.replace("\n", "\r\n") + "\0" + "a b c",
        "small_no_version": vocab + "\0" + m.split("\n", 1)[1] + "\0" + "the the the",
        "bytes_only": vocab_json(tokens[:256]) + "\0" + "#version: 0.2\n" + "\0" + "abc",
        "no_text": vocab + "\0" + m,
        "vocab_only": vocab,
    }
    v = json.loads(vocab)
    bad = dict(v)
    del bad[EOT]
    seeds["no_endoftext"] = json.dumps(bad) + "\0" + m
    bad = dict(v)
    bad[spell(b"a")] = 999999
    seeds["id_out_of_range"] = json.dumps(bad) + "\0" + m
    bad = dict(v)
    bad["x-dup"] = 5
    seeds["id_twice"] = json.dumps(bad, ensure_ascii=False) + "\0" + m
    bad = dict(v)
    bad[spell(b"a")] = "97"
    seeds["id_not_integer"] = json.dumps(bad, ensure_ascii=False) + "\0" + m
    bad = dict(v)
    bad["é"] = len(v)
    seeds["not_byte_alphabet"] = json.dumps(bad, ensure_ascii=False) + "\0" + m
    seeds["merge_one_part"] = vocab + "\0" + "#version: 0.2\nab\n"
    seeds["merge_three_parts"] = vocab + "\0" + "#version: 0.2\na b c\n"
    seeds["merge_unknown"] = vocab + "\0" + "#version: 0.2\nq z\n"
    seeds["merge_twice"] = vocab + "\0" + m + m.split("\n", 1)[1]
    seeds["vocab_array"] = "[1, 2]\0" + m
    seeds["vocab_empty"] = "{}\0"
    return seeds


def encode_seeds():
    texts = {
        "ascii": "Hello world! This is a test of the GPT-2 tokenizer.",
        "contractions": "It's I'm you're we've they'll she'd 'S 'LL don't' ''s",
        "whitespace": "a  b   c\t\td\n\ne \r\n f   \u00a0\u2003g    ",
        "numbers": "0 1 12 123 1234567890 3.14159 1,000 ١٢٣ ½ Ⅻ",
        "punctuation": "!!! ??? ... --- (([[{{}}]])) @#$%^&*",
        "unicode": "Français élève, Größe, привет, γειά, שלום, مرحبا, 你好世界, こんにちは, 안녕, नमस्ते",
        "emoji": "👋🌍🎉 👨‍👩‍👧‍👦 ❤️ 🇫🇷 a👋b",
        "endoftext": "<|endoftext|>first<|endoftext|><|endoftext|> last <|endoftext",
        "long_letters": "a" * 300 + " " + "ab" * 200,
        "long_digits": "9" * 400,
        "long_other": "=-" * 200,
        "long_unicode": "é" * 150 + "中" * 100,
        "empty": "",
        "one_space": " ",
        "training": TRAINING_TEXT,
    }
    raw = {
        "invalid_lone_continuation": b"abc\x80def",
        "invalid_truncated": b"caf\xc3",
        "invalid_overlong": b"\xc0\xaf \xe0\x80\xaf",
        "invalid_surrogate": b"\xed\xa0\x80x",
        "invalid_above_max": b"\xf4\x90\x80\x80 \xf5\x80",
        "invalid_mixed": "ok é ".encode() + b"\xff\xfe" + " 👋".encode() + b"\xf0\x9f\x91",
        "nul_bytes": b"a\x00b\x00\x00 c",
    }
    seeds = {k: v.encode("utf-8") for k, v in texts.items()}
    seeds.update(raw)
    return seeds


def prompt_file_seeds():
    return {
        "two_lines": b"Hello, I'm a language model,\nMy example 1\n",
        "no_final_newline": b"one\ntwo",
        "crlf": b"one\r\ntwo\r\n",
        "bare_cr": b"one\rtwo\r\r\n",
        "empty_line": b"one\n\nthree\n",
        "empty": b"",
        "only_newline": b"\n",
        "only_crlf": b"\r\n",
        "unicode": "ünïcödé 👋\n中文\n".encode(),
        "invalid_utf8": b"\xff\xfe\n\xc3\n",
        "nul": b"a\x00b\n",
        "long_line": b"x" * 5000 + b"\n",
    }


def completion_request_seeds():
    """Bodies of POST /v1/completions: each prompt form and field, and the refusals."""
    bodies = {
        "text": {"prompt": "My example 0", "max_tokens": 47, "temperature": 0},
        "all_fields": {"model": "served", "prompt": ["a", "b"], "max_tokens": 5,
                       "temperature": 0.7, "top_p": 0.9, "top_k": 40, "repetition_penalty": 1.2,
                       "n": 2, "best_of": 2, "seed": 7, "stop": ["\n", "."], "echo": True,
                       "ignore_eos": True, "stream": True,
                       "stream_options": {"include_usage": True}, "user": "u",
                       "presence_penalty": 0, "frequency_penalty": 0, "logit_bias": {},
                       "suffix": "", "logprobs": None},
        "ids": {"prompt": [1, 2, 3], "max_tokens": None},
        "ids_batch": {"prompt": [[1, 2], [3]], "n": 3},
        "mixed_batch": {"prompt": ["x", [4, 5]]},
        "bad_id": {"prompt": [99999999999]},
        "negative_id": {"prompt": [-1]},
        "float_id": {"prompt": [1.5]},
        "bad_n": {"prompt": "x", "n": 0},
        "big_n": {"prompt": ["x"] * 20, "n": 128},
        "bad_types": {"prompt": "x", "temperature": "hot", "stream": 1, "stop": [1]},
        "wrong_model": {"prompt": "x", "model": 3},
        "unsupported": {"prompt": "x", "suffix": "y", "best_of": 3},
        "biases": {"prompt": "x", "logit_bias": {"1": 2, "5": -100}, "presence_penalty": 1.5,
                   "frequency_penalty": -2, "min_p": 0.1, "min_tokens": 3,
                   "no_repeat_ngram_size": 2},
        "bad_biases": {"prompt": "x", "logit_bias": {"x": 1, "-1": 200, "1e3": 1},
                       "presence_penalty": 2.5},
        "logprobs": {"prompt": "caf\u00e9 x", "logprobs": 5, "echo": True, "max_tokens": 0},
        "bad_logprobs": {"prompt": [1, 2], "logprobs": 21},
        "huge_numbers": {"prompt": "x", "max_tokens": 1e300, "seed": 18446744073709551615,
                         "top_k": -2, "temperature": 1e39},
        "empty_prompt": {"prompt": ""},
        "empty_array": {"prompt": []},
        "no_prompt": {"max_tokens": 3},
    }
    seeds = {k: json.dumps(v).encode() for k, v in bodies.items()}
    seeds["not_object"] = b"[1, 2, 3]"
    seeds["unicode"] = rb'{"prompt": "caf\u00e9 \ud83d\udc4b", "stop": "\u00e9"}'
    return seeds


def main():
    tokens, merges = train_bpe(TRAINING_TEXT, 1200)
    data = os.path.join(ROOT, "data")
    write(os.path.join(data, "vocab.json"), vocab_json(tokens))
    write(os.path.join(data, "merges.txt"), merges_txt(merges))
    print(f"vocabulary: {len(tokens) + 1} tokens, {len(merges)} merges")

    corpora = {
        "safetensors": safetensors_seeds(),
        "config": config_seeds(),
        "tokenizer_load": tokenizer_load_seeds(tokens, merges),
        "tokenizer_encode": encode_seeds(),
        "prompt_file": prompt_file_seeds(),
        "completion_request": completion_request_seeds(),
    }
    for target, seeds in corpora.items():
        folder = os.path.join(ROOT, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        for name, content in seeds.items():
            write(os.path.join(folder, name), content)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
