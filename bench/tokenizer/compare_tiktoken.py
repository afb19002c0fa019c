#!/usr/bin/env python3
"""Encode the same corpus with ctformer's GPT-2 tokenizer (bench/tokenizer/tokenizer_bench) and with
tiktoken, single-threaded, and report MB/s (10^6 bytes per second) and tokens/s side by side. The
ids of both are compared token for token, so the benchmark is also a 10+ MB correctness check.

tiktoken is built from the same local vocab.json + merges.txt (no download), with GPT-2's pattern.
Both encode the whole corpus as one text (tiktoken.Encoding.encode runs on one thread; ctformer's
encode is single-threaded); each is timed --repeat times and the best and median are reported.

The default corpus is made from Debian package text already on the machine: the copyright files and
decompressed changelog.Debian.gz files under /usr/share/doc, package by package in sorted order,
truncated to --corpus-mb megabytes (English prose, licence text, names, version numbers, some code).
--corpus-kind translations instead gathers the translated messages of the .mo catalogues under
/usr/share/locale (dozens of languages: Latin, Cyrillic, Greek, CJK, Arabic, Indic scripts...).
Pass --corpus FILE to use any other UTF-8 file.

Run (from the repository root, after building the bench target):
    cmake -S . -B build-tok -DCMAKE_BUILD_TYPE=Release && cmake --build build-tok --target tokenizer_bench
    pip install tiktoken
    python3 bench/tokenizer/compare_tiktoken.py --bench build-tok/bench/tokenizer/tokenizer_bench
"""

import argparse
import gzip
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array


def make_corpus(path, megabytes):
    limit = int(megabytes * 1e6)
    parts, total = [], 0
    doc = "/usr/share/doc"
    for pkg in sorted(os.listdir(doc)):
        for name in ("copyright", "changelog.Debian.gz"):
            p = os.path.join(doc, pkg, name)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            try:
                raw = gzip.open(p).read() if name.endswith(".gz") else open(p, "rb").read()
            except OSError:
                continue
            text = raw.decode("utf-8", "replace")
            parts.append(text)
            total += len(text.encode("utf-8"))
        if total >= limit:
            break
    data = "".join(parts).encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")
    if len(data) < limit * 0.99:
        sys.exit(f"only {len(data)} bytes of Debian text found under {doc}; pass --corpus FILE")
    with open(path, "wb") as f:
        f.write(data)
    return path


def make_translations_corpus(path, megabytes):
    """Multilingual text: the translated messages (msgstr) of every .mo catalogue under
    /usr/share/locale, catalogue by catalogue in sorted order, one message per line."""
    import gettext
    limit = int(megabytes * 1e6)
    out, total = [], 0
    for dirpath, dirnames, filenames in sorted(os.walk("/usr/share/locale")):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.endswith(".mo"):
                continue
            try:
                with open(os.path.join(dirpath, name), "rb") as f:
                    catalog = gettext.GNUTranslations(f)._catalog
            except Exception:
                continue
            for key in sorted(catalog, key=str):
                if key and isinstance(catalog[key], str):
                    out.append(catalog[key])
                    total += len(catalog[key].encode("utf-8")) + 1
            if total >= limit:
                break
        if total >= limit:
            break
    data = "\n".join(out).encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")
    if len(data) < limit * 0.99:
        sys.exit(f"only {len(data)} bytes of translations found; pass --corpus FILE")
    with open(path, "wb") as f:
        f.write(data)
    return path


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", required=True, help="path of the built tokenizer_bench program")
    ap.add_argument("--model", default=os.environ.get("CTFORMER_GPT2_DIR") or
                    os.path.join(root, "..", "shared", "gpt2"),
                    help="folder with vocab.json and merges.txt (default: $CTFORMER_GPT2_DIR or "
                         "../shared/gpt2)")
    ap.add_argument("--corpus", help="UTF-8 text file (default: build one from /usr/share/doc)")
    ap.add_argument("--corpus-kind", choices=["debian-docs", "translations"], default="debian-docs",
                    help="corpus to build when --corpus is not given: Debian copyright/changelog "
                         "text (mostly English), or the messages of /usr/share/locale's .mo files "
                         "(many languages and scripts)")
    ap.add_argument("--corpus-mb", type=float, default=16.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    tmp = tempfile.mkdtemp(prefix="ctformer_tok_bench_")
    if args.corpus:
        corpus = args.corpus
    elif args.corpus_kind == "translations":
        corpus = make_translations_corpus(os.path.join(tmp, "corpus.txt"), args.corpus_mb)
    else:
        corpus = make_corpus(os.path.join(tmp, "corpus.txt"), args.corpus_mb)
    with open(corpus, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")

    ids_file = os.path.join(tmp, "ids.bin")
    out = subprocess.run([args.bench, "--model", args.model, "--corpus", corpus, "--repeat",
                          str(args.repeat), "--ids-out", ids_file],
                         check=True, capture_output=True, text=True).stdout
    print(out, end="")
    ours = array("i")
    with open(ids_file, "rb") as f:
        ours.frombytes(f.read())
    ours_times = None
    for line in out.splitlines():
        if line.startswith("ctformer encode: best"):
            ours_times = line

    vocab = os.path.join(args.model, "vocab.json")
    merges = os.path.join(args.model, "merges.txt")
    t0 = time.perf_counter()
    enc = tiktoken.Encoding("gpt2-local", pat_str=r50k_pat_str,
                            mergeable_ranks=data_gym_to_mergeable_bpe_ranks(merges, vocab),
                            special_tokens={"<|endoftext|>": 50256})
    load = time.perf_counter() - t0
    times, ref = [], None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ref = enc.encode(text, allowed_special="all")
        times.append(time.perf_counter() - t0)
    best, median = min(times), statistics.median(times)
    mb = len(data) / 1e6
    print(f"tiktoken {tiktoken.__version__} load: {load * 1e3:.1f} ms")
    print(f"tiktoken encode: best {best:.3f} s = {mb / best:.2f} MB/s, {len(ref) / best:.0f} tokens/s; "
          f"median {median:.3f} s = {mb / median:.2f} MB/s, {len(ref) / median:.0f} tokens/s "
          f"({args.repeat} runs)")

    try:  # the same without building a Python list of ints (tiktoken >= 0.6 with numpy)
        import numpy  # noqa: F401
        np_times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            n = len(enc.encode_to_numpy(text, allowed_special="all"))
            np_times.append(time.perf_counter() - t0)
        b, m = min(np_times), statistics.median(np_times)
        print(f"tiktoken encode_to_numpy: best {b:.3f} s = {mb / b:.2f} MB/s, {n / b:.0f} tokens/s; "
              f"median {m:.3f} s = {mb / m:.2f} MB/s, {n / m:.0f} tokens/s ({args.repeat} runs)")
    except (ImportError, AttributeError):
        pass

    same = len(ref) == len(ours) and all(a == b for a, b in zip(ref, ours))
    if not same:
        first = next((i for i, (a, b) in enumerate(zip(ref, ours)) if a != b),
                     min(len(ref), len(ours)))
        print(f"MISMATCH: ctformer {len(ours)} tokens, tiktoken {len(ref)} tokens; first "
              f"difference at token {first}")
    else:
        print(f"ids identical: {len(ref)} tokens")
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}")
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
