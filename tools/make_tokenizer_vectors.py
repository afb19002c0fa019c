#!/usr/bin/env python3
"""Write tests/tokenizer/data/gpt2_vectors.json: GPT-2 tokenizer reference vectors made by two
independent implementations, tiktoken and Hugging Face (transformers.GPT2TokenizerFast, i.e. the Rust
`tokenizers` library), both built from the same local vocab.json + merges.txt (no network).

Every string is encoded by both references; the script stops if they disagree, so each committed
vector is what both produce.  The file holds
  "strings": [{"category", "text", "ids", ["ids_plain"]}]
      ids        -- encode with <|endoftext|> recognised as the special token 50256
                    (tiktoken allowed_special="all"; Hugging Face's default, which splits on added tokens)
      ids_plain  -- encode with <|endoftext|> treated as ordinary text (tiktoken disallowed_special=()),
                    only present when it differs from ids
  "invalid_utf8": [{"hex", "error_offset", "lossy_ids"}]
      error_offset -- Python's UnicodeDecodeError.start for bytes.decode("utf-8")
      lossy_ids    -- both references' encoding of bytes.decode("utf-8", "replace") (U+FFFD for each
                      maximal invalid subpart, the Unicode-recommended practice)
  "decode": [{"ids", "hex"}]  -- random id sequences and tiktoken's decode_bytes of them (may be
                                 invalid UTF-8: a token can end inside a character)

Run (from the repository root; needs `pip install tiktoken tokenizers transformers`):
    python3 tools/make_tokenizer_vectors.py [--vocab-dir ../shared/gpt2] [--out tests/tokenizer/data/gpt2_vectors.json]
The output is deterministic (fixed random seed).
"""

import argparse
import json
import os
import random
import sys

SEED = 20240611
EOT = "<|endoftext|>"


def load_references(vocab_dir):
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str
    from transformers import GPT2TokenizerFast

    vocab = os.path.join(vocab_dir, "vocab.json")
    merges = os.path.join(vocab_dir, "merges.txt")
    ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=merges, encoder_json_file=vocab)
    tik = tiktoken.Encoding("gpt2-local", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                            special_tokens={EOT: 50256})
    hf = GPT2TokenizerFast(vocab=vocab, merges=merges)
    assert hf.eos_token_id == 50256 and len(hf) == 50257, "Hugging Face tokenizer did not load"
    return tik, hf


# ---------------------------------------------------------------- the corpus
def corpus(rng):
    out = []

    def add(category, items):
        for s in items:
            out.append((category, s))

    add("empty", [""])
    add("ascii", [
        "Hello world", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
        "GPT-2 is a large transformer-based language model.", "a", " ", "A", "hello", " hello",
        "  hello", "hello ", "hello  ", "Hello World HELLO world hElLo", "x=1; y = x*2 + 3;",
        "def f(x):\n    return x ** 2\n", "int main() { return 0; }", "https://example.com/a?b=c&d=e",
        "user@example.org", "#include <vector>", "C++20 and C# and F#", "~!@#$%^&*()_+`-=[]\\{}|;':\",./<>?",
        "The year 1999 was followed by 2000.", "ALL CAPS SENTENCE HERE", "camelCaseIdentifier",
        "snake_case_identifier", "kebab-case-identifier", "SCREAMING_SNAKE_CASE", "Mr. Smith's dog",
        "e.g. i.e. etc.", "It's 5 o'clock somewhere", "\"Quoted\" and 'single quoted'",
        "(parenthesised) [bracketed] {braced}", "Tabs\tbetween\twords", "a b c d e f g",
        "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
        "pneumonoultramicroscopicsilicovolcanoconiosis", "Lorem ipsum dolor sit amet, consectetur "
        "adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
        "\x00\x01\x02\x7f", "bell\x07 and escape\x1b[0m", "form\x0cfeed and vertical\x0btab",
    ])
    add("seed_prompts", [f"My example {i}" for i in (0, 1, 7, 10, 42, 99, 100, 123, 500, 999)])

    # every contraction, in every case, in several contexts
    contr = []
    for c in ("s", "t", "re", "ve", "m", "ll", "d"):
        cases = {c, c.upper(), c.capitalize()}
        if len(c) == 2:
            cases |= {c[0] + c[1].upper(), c[0].upper() + c[1]}
        for v in sorted(cases):
            for tpl in ("'{}", "it'{}", "IT'{}", " '{}", "x '{}", "'{}x", "'{} ", "''{}", "!'{}",
                        "1'{}", "it'{}'{}", "\t'{}", "\n'{}", "don'{}t", "'{}'"):
                contr.append(tpl.format(v, v))
    add("contractions", contr)
    add("contractions_text", [
        "I'm, you're, he's, she'd, we've, they'll, can't, won't, shouldn't",
        "I'M, YOU'RE, HE'S, SHE'D, WE'VE, THEY'LL, CAN'T, WON'T, SHOULDN'T",
        "I’m curly ’s ‘quote’", "rock 'n' roll", "'tis 'twas", "y'all'd've", "o'clock",
        "the '90s", "'", "''", "'''", "' s", "'x", "'sss", "'lll", "'reve", "’s", "ʼs",
    ])

    ws = [" " * n for n in range(1, 11)] + ["\t" * n for n in range(1, 5)] + \
         ["\n" * n for n in range(1, 5)] + ["\r\n", "\r\n\r\n", "\r", "\n\r"]
    ws_items = list(ws)
    for w in ws:
        ws_items += [f"a{w}b", f"{w}a", f"a{w}", f"a{w}!", f"a{w}1", f"!{w}!"]
    ws_items += ["a \t b", "a\t b", "a \tb", "a \n b", "line1\r\nline2\r\n", " \n \n ", "\n \n",
                 "end with spaces   ", "   start with spaces", "a  \n  b", "x\u00a0y", "x \u00a0y",
                 "\u00a0\u00a0", "\u3000full width\u3000space", "a\u2028b\u2029c", "a\x85b",
                 "a\u2003\u2003b", "a \u2009b", "  \u200b  ", "\x1c\x1d\x1e\x1f", "a\x0b\x0cb"]
    add("whitespace", ws_items)

    add("digits", [
        "123", "1234567890", " 123", "  123", "abc123", "123abc", "a1b2c3d4", "1,000,000",
        "3.14159", "v2.0.1", "2023-01-01T12:00:00Z", "0x1F3A", "1e-10", "+44 20 7946 0958",
        "१२३४", "٠١٢٣٤٥٦٧٨٩", "۱۲۳", "１２３", "²³", "½ ¾ ⅞", "Ⅻ ⅻ ↀ", "①②③", "𝟙𝟚𝟛",
        "〇一二三", "12th 3rd 1st", "100%", "$9.99", "€5,00", "#1", "A1 B2 C3", "x2 + y2 = z2",
    ])
    add("punctuation", [
        "!!!", "...", "?!", "?!?!", "--", "---", "—", "–", "«»", "„“", "''", '""', "'''", "...!!!???",
        "(!)", "[...]", "::", ";;", "//", "/* */", "<!-- -->", "->", "=>", "!==", "&&||", "@@", "¡¿",
        "§¶†‡", "•", "…", " ...", "  !!", "a!b", "a ! b", "~~~", "___", "***bold***", "¯\\_(ツ)_/¯",
    ])
    add("latin", [
        "café", "naïve", "résumé", "Ærøskøbing", "Straße", "ĳ", "ǅ", "Ångström", "façade",
        "jalapeño", "Zürich", "Kraków", "İstanbul", "e\u0301", "cafe\u0301", "n\u0303o",
        "ÀÁÂÃÄÅ àáâãäå", "Œuvre œuvre", "ﬁnancial ﬂow", "Ǆemal",
    ])
    add("scripts", [
        "Καλημέρα κόσμε", "ΑΒΓΔ αβγδ", "Привет, мир!", "ПРИВЕТ мир", "Ёлка ёлка", "Ґанок",
        "你好，世界", "中文字符测试", "日本語のテキスト", "カタカナ ひらがな", "한국어 텍스트", "안녕하세요",
        "مرحبا بالعالم", "שלום עולם", "สวัสดีชาวโลก", "नमस्ते दुनिया", "ქართული", "Հայերեն", "ᚠᚢᚦ",
        "𐌰𐌱𐌲", "𓀀𓀁", "ꯀꯁ", "ᏣᎳᎩ", "ትግርኛ", "ܣܘܪܝܝܐ", "ދިވެހި", "ꦗꦮ", "𖹀", "\u1c89\u1c8a",
        "𐵐𐵑", "\U00031350\U000323af", "\U00010940", "\ue000\uf8ff", "\U000f0000", "\ufffd", "\uffff",
        "\U0010ffff", "\U0001d400\U0001d41a", "ℕℤℚℝ", "Ⓐⓐ", "ªº",
    ])
    add("emoji", [
        "😀", "😀😃😄", "👍", "👍🏽", "👍🏿👍🏻", "🇺🇸", "🇯🇵🇩🇪", "👨‍👩‍👧‍👦", "❤️", "❤", "1️⃣",
        "🏳️‍🌈", "👩🏽‍💻", "I ❤️ NY", "hello 😀 world", "😀hello", "hello😀", " 😀", "😀 ", "🤖🤖🤖",
        "🫠", "🧑‍🚀", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "✌🏼", "☃", "⚡️",
    ])
    add("zero_width_nbsp", [
        "\u200b", "a\u200bb", "\u200c", "a\u200cb", "\u200d", "a\u200db", "\ufeff", "\ufeffhello",
        "\u2060", "a\u00adb", "a\u00a0b", "a\u202fb", "a\u2007b", "\u00a0", " \u00a0", "\u00a0 ",
        "1\u00a0000", "word\u200b word", "\u200b\u200b\u200b",
    ])
    add("special_token", [
        EOT, f"a{EOT}b", f"{EOT}{EOT}", f" {EOT} ", f"{EOT}hello", f"hello{EOT}", "<|endoftext|",
        "<|endoftext", "|endoftext|>", "<|ENDOFTEXT|>", f"{EOT}'s", f"x{EOT}'s", f"\n{EOT}\n",
        f"<{EOT}>", f"<|{EOT}|>", f"My example 1{EOT}My example 2", f"  {EOT}  ", f"😀{EOT}😀",
        "<|endoftext|>"[:-1] + " >", f"{EOT}<|endoftext", "endoftext",
    ])
    add("long", [
        " " * 300, "\n" * 100, "a" * 500, "ab" * 300, "😀" * 50,
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(800)),
        "".join(rng.choice("0123456789") for _ in range(300)),
        "".join(rng.choice("!@#$%^&*()") for _ in range(300)),
        "word " * 200,
    ])

    # random mixtures of fragments from every category above, and of random code points
    pool = [s for _, s in out if s and len(s) < 80]
    chars = sorted({ch for s in pool for ch in s})
    mixes = []
    for _ in range(180):
        k = rng.randint(1, 6)
        mixes.append(rng.choice(["", " ", "\n"]).join(rng.choice(pool) for _ in range(k)))
    for _ in range(120):
        mixes.append("".join(rng.choice(chars) for _ in range(rng.randint(1, 30))))
    add("random_mix", mixes)

    def random_scalar():
        r = rng.random()
        if r < 0.3:
            return chr(rng.randint(0x20, 0x7E))
        if r < 0.5:
            return chr(rng.choice([0x20, 0x20, 0x0A, 0x09, 0x0D, 0xA0, 0x3000, 0x2028, 0x27]))
        if r < 0.8:
            cp = rng.randint(0x80, 0xFFFF)
        else:
            cp = rng.randint(0x10000, 0x10FFFF)
        if 0xD800 <= cp <= 0xDFFF:
            cp = 0xFFFD
        return chr(cp)
    add("random_codepoints", ["".join(random_scalar() for _ in range(rng.randint(1, 25)))
                              for _ in range(100)])
    return out


INVALID = [
    b"\x80", b"\xbf", b"a\x80b", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xfe", b"\xff",
    b"\xfe\xff", b"\xe2\x82", b"abc\xe2\x82", b"\xe2\x82abc", b"\xf0\x9f\x98", b"\xf0\x9f\x98 x",
    b"\xc3", b"hello \xc3 world", b"caf\xe9", b"\xc3\xa9\xe9\xc3\xa9", b"\xe2\x28\xa1",
    b"\xf0\x28\x8c\xbc", b"\xf8\x88\x80\x80\x80", b"ok\xff\xfeok", b"My example 1\x80",
    b"<|endoftext|>\x80", b"\xe0\xa0", b"\xef\xbf", b"\xf4\x8f\xbf", b"  \x80  ",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--vocab-dir", default=os.environ.get("CTFORMER_GPT2_DIR") or
                    os.path.join(root, "..", "shared", "gpt2"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "tokenizer", "data",
                                                  "gpt2_vectors.json"))
    args = ap.parse_args()

    tik, hf = load_references(args.vocab_dir)
    rng = random.Random(SEED)

    def both(text, special):
        a = tik.encode(text, allowed_special="all") if special else \
            tik.encode(text, disallowed_special=())
        b = hf.encode(text, split_special_tokens=not special)
        if a != b:
            sys.exit(f"references disagree on {text!r} (special={special}):\n  tiktoken {a}\n"
                     f"  tokenizers {b}")
        return a

    strings = []
    for category, text in corpus(rng):
        ids = both(text, True)
        entry = {"category": category, "text": text, "ids": ids}
        plain = both(text, False)
        if plain != ids:
            entry["ids_plain"] = plain
        assert tik.decode_bytes(plain) == text.encode("utf-8")
        strings.append(entry)

    invalid = []
    for raw in INVALID:
        try:
            raw.decode("utf-8")
            sys.exit(f"{raw!r} is valid UTF-8")
        except UnicodeDecodeError as e:
            offset = e.start
        invalid.append({"hex": raw.hex(), "error_offset": offset,
                        "lossy_ids": both(raw.decode("utf-8", "replace"), True)})

    decode = []
    for _ in range(60):
        ids = [rng.randrange(50257) for _ in range(rng.randint(0, 12))]
        decode.append({"ids": ids, "hex": tik.decode_bytes(ids).hex()})

    doc = {
        "generator": "tools/make_tokenizer_vectors.py",
        "references": {"tiktoken": __import__("tiktoken").__version__,
                       "tokenizers": __import__("tokenizers").__version__},
        "strings": strings, "invalid_utf8": invalid, "decode": decode,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("{\n")
        for key in ("generator", "references"):
            f.write(f"{json.dumps(key)}: {json.dumps(doc[key])},\n")
        for i, key in enumerate(("strings", "invalid_utf8", "decode")):
            f.write(f"{json.dumps(key)}: [\n")
            f.write(",\n".join(json.dumps(e, ensure_ascii=True) for e in doc[key]))
            f.write("\n]" + (",\n" if i < 2 else "\n"))
        f.write("}\n")
    print(f"wrote {args.out}: {len(strings)} strings, {len(invalid)} invalid byte strings, "
          f"{len(decode)} decode vectors, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
