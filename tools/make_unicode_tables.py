#!/usr/bin/env python3
"""Generate include/ctformer/tokenizer/unicode_tables.hpp: the character classes of GPT-2's
pre-tokenizer regex for every Unicode code point.

GPT-2's pattern  '(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
only ever asks four questions about a code point: is it a letter (\\p{L}: general category L*), a
number (\\p{N}: Nd, Nl, No), white space (\\s: the White_Space property, which is also what the
reference regex engines use), or none of these ("other").  The header stores that class, 2 bits per
code point, in a two-stage table (blocks of 128 code points; code points >= 0x40000 are all "other").

Unicode version.  The reference implementations this project is tested against -- tiktoken 0.14
(Rust `regex` crate) and Hugging Face `tokenizers` 0.23 (Oniguruma) -- both classify code points by
Unicode 16.0 (probe: U+1C89, added in 16.0, is a letter to both; U+10940, added in 17.0, is not).
Debian bookworm's `unicode-data` package is Unicode 15.0, which would misclassify the ~5,000 letters
and numbers added in 15.1 and 16.0.  So by default the general categories come from the
`unicodedata2` Python package pinned to 16.0.0 (Unicode's own data, compiled); White_Space (unchanged
since Unicode 6.3) comes from PropList.txt of the `unicode-data` package.  `--ucd-dir DIR` takes the
categories from DIR/UnicodeData.txt instead (e.g. Debian's 15.0 files), for comparison.

Run (from the repository root):
    pip install 'unicodedata2==16.0.0'          # apt-get install unicode-data  for PropList.txt
    python3 tools/make_unicode_tables.py         # rewrites include/ctformer/tokenizer/unicode_tables.hpp
    python3 tools/make_unicode_tables.py --verify   # also checks every code point against tiktoken and
                                                    # Hugging Face tokenizers (pip install tiktoken tokenizers)

--verify probes the references themselves: for each code point c it asks whether the reference's
pre-tokenizer keeps "a"+c, "1"+c and "!"+c together (c is a letter, a number, or "other"; none of the
three means white space), so it tests the regex engines' real behaviour, not a second copy of the data.
"""

import argparse
import os
import sys

OTHER, LETTER, NUMBER, SPACE = 0, 1, 2, 3
BLOCK = 128
LIMIT = 0x40000  # planes 0-3; above this every code point is "other" (checked below)
HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "include", "ctformer",
                      "tokenizer", "unicode_tables.hpp")


def read_white_space(ucd_dir):
    ws = set()
    with open(os.path.join(ucd_dir, "PropList.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if not line:
                continue
            rng, prop = [x.strip() for x in line.split(";")]
            if prop == "White_Space":
                a, _, b = rng.partition("..")
                ws.update(range(int(a, 16), int(b or a, 16) + 1))
    return ws


def categories_from_ucd(ucd_dir):
    cats = ["Cn"] * 0x110000
    first = None
    with open(os.path.join(ucd_dir, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fields = line.split(";")
            cp, name, cat = int(fields[0], 16), fields[1], fields[2]
            if name.endswith(", First>"):
                first = cp
            elif name.endswith(", Last>"):
                for c in range(first, cp + 1):
                    cats[c] = cat
            else:
                cats[cp] = cat
    with open(os.path.join(ucd_dir, "ReadMe.txt"), encoding="utf-8", errors="replace") as f:
        version = next((w for line in f for w in line.split() if w[:1].isdigit() and
                        w.count(".") == 2), "unknown")
    return cats, f"Unicode {version} UnicodeData.txt from {ucd_dir}"


def categories_from_unicodedata2():
    import unicodedata2
    cats = [unicodedata2.category(chr(cp)) for cp in range(0x110000)]
    return cats, f"Unicode {unicodedata2.unidata_version} (Python package unicodedata2)"


def classify(cats, ws):
    table = []
    for cp in range(0x110000):
        if cp in ws:
            table.append(SPACE)
        elif cats[cp][0] == "L":
            table.append(LETTER)
        elif cats[cp][0] == "N":
            table.append(NUMBER)
        else:
            table.append(OTHER)
    return table


def write_header(table, source, ws_source):
    assert all(c == OTHER for c in table[LIMIT:]), "a code point >= 0x40000 is not 'other'"
    blocks, stage1 = {}, []
    for start in range(0, LIMIT, BLOCK):
        key = tuple(table[start:start + BLOCK])
        stage1.append(blocks.setdefault(key, len(blocks)))
    assert len(blocks) <= 256
    stage2 = []
    for key in blocks:  # dicts keep insertion order = block index order
        for i in range(0, BLOCK, 4):
            stage2.append(key[i] | key[i + 1] << 2 | key[i + 2] << 4 | key[i + 3] << 6)

    def rows(values, per_line=24):
        out = []
        for i in range(0, len(values), per_line):
            out.append("    " + ",".join(str(v) for v in values[i:i + per_line]) + ",")
        return "\n".join(out)

    counts = [table.count(k) for k in (OTHER, LETTER, NUMBER, SPACE)]
    text = f"""// GENERATED by tools/make_unicode_tables.py -- do not edit by hand.
// Character classes of GPT-2's pre-tokenizer regex (\\p{{L}}, \\p{{N}}, \\s, other) per code point.
// General categories: {source}.
// White_Space: {ws_source}.
// Totals: {counts[1]} letters, {counts[2]} numbers, {counts[3]} white space, {counts[0]} other.
#pragma once

#include <cstdint>

namespace ctformer::tokenizer::detail {{

enum class CharClass : std::uint8_t {{ other = 0, letter = 1, number = 2, space = 3 }};

inline constexpr std::uint32_t kClassBlockShift = 7;  // blocks of {BLOCK} code points
inline constexpr std::uint32_t kClassTableLimit = 0x{LIMIT:X};  // every code point above is "other"

// clang-format off
// Block index of each block of {BLOCK} code points below kClassTableLimit.
inline constexpr std::uint8_t kClassStage1[{len(stage1)}] = {{
{rows(stage1)}
}};

// {len(blocks)} distinct blocks, 2 bits per code point (4 per byte, lowest bits first).
inline constexpr std::uint8_t kClassStage2[{len(stage2)}] = {{
{rows(stage2)}
}};
// clang-format on

inline constexpr CharClass char_class(std::uint32_t cp) noexcept {{
  if (cp >= kClassTableLimit) return CharClass::other;
  const std::uint32_t block = kClassStage1[cp >> kClassBlockShift];
  const std::uint32_t offset = cp & ((1u << kClassBlockShift) - 1);
  const std::uint32_t byte = kClassStage2[block * ({BLOCK} / 4) + (offset >> 2)];
  return static_cast<CharClass>((byte >> ((offset & 3) * 2)) & 3);
}}

}}  // namespace ctformer::tokenizer::detail
"""
    with open(HEADER, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {os.path.normpath(HEADER)}: {len(blocks)} blocks, {len(text)} bytes")


def probe_references(chunk=0x8000):
    """Class of every code point as tiktoken's and Hugging Face's GPT-2 pre-tokenizers see it."""
    import tiktoken
    from tiktoken_ext.openai_public import r50k_pat_str
    from tokenizers import pre_tokenizers

    codepoints = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    tik = {}
    hf = {}
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_map = {b: chr(c) for b, c in zip(bs, cs)}

    def mapped(s):
        return "".join(byte_map[b] for b in s.encode("utf-8"))

    for start in range(0, len(codepoints), chunk):
        part = codepoints[start:start + chunk]
        for prefix, cls in (("a", LETTER), ("1", NUMBER), ("!", OTHER)):
            ranks = {bytes([i]): i for i in range(256)}
            joined_token = {}
            for cp in part:
                b = (prefix + chr(cp)).encode("utf-8")
                for k in range(2, len(b) + 1):
                    if b[:k] not in ranks:
                        ranks[b[:k]] = len(ranks)
                joined_token[ranks[b]] = cp
            enc = tiktoken.Encoding(f"probe{start}{prefix}", pat_str=r50k_pat_str,
                                    mergeable_ranks=ranks, special_tokens={})
            # "\n" between probes: a lone newline before a letter/number/other is its own piece.
            text = "".join(prefix + chr(cp) + "\n" for cp in part)
            for tok in enc.encode(text, disallowed_special=()):
                if tok in joined_token:
                    tik[joined_token[tok]] = cls
            pieces = {p for p, _ in byte_level.pre_tokenize_str(text)}
            for cp in part:
                if mapped(prefix + chr(cp)) in pieces:
                    hf[cp] = cls
        print(f"  probed up to U+{part[-1]:04X}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return tik, hf


def verify(table):
    tik, hf = probe_references()
    ok = True
    for name, probed in (("tiktoken", tik), ("tokenizers", hf)):
        bad = []
        for cp in range(0x110000):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            ref = probed.get(cp, SPACE)  # joined with none of the prefixes: white space
            if ref != table[cp]:
                bad.append((cp, ref, table[cp]))
        print(f"{name}: {len(bad)} code points classified differently from the table")
        for cp, ref, mine in bad[:20]:
            print(f"  U+{cp:04X}: reference {ref}, table {mine}")
        ok = ok and not bad
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ucd-dir", help="take general categories from DIR/UnicodeData.txt instead of "
                    "the unicodedata2 package")
    ap.add_argument("--proplist-dir", default="/usr/share/unicode",
                    help="folder holding PropList.txt (White_Space); default %(default)s")
    ap.add_argument("--verify", action="store_true",
                    help="compare every code point with tiktoken and tokenizers")
    ap.add_argument("--no-write", action="store_true", help="do not rewrite the header")
    args = ap.parse_args()

    ws = read_white_space(args.proplist_dir)
    cats, source = categories_from_ucd(args.ucd_dir) if args.ucd_dir else \
        categories_from_unicodedata2()
    table = classify(cats, ws)
    if not args.no_write:
        write_header(table, source, f"PropList.txt from {args.proplist_dir}")
    if args.verify and not verify(table):
        sys.exit(1)


if __name__ == "__main__":
    main()
