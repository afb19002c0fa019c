#!/usr/bin/env python3
"""Load for `ctformer serve` (or any OpenAI-compatible completions server): the seed workload's
prompts, "My example 0" ... "My example N-1", sent by C concurrent clients, each request greedy with
max_tokens 47 (max_length 50 for the 3-token prompts). Reports generated tokens/s over the whole run,
the seed's words/s, request latency and, with --stream, time to first token and between tokens.

    build/tools/ctformer/ctformer serve --model gpt2 --port 8000 &
    python3 bench/serve/serve_load.py --url http://127.0.0.1:8000 --clients 64
or, starting the server on a free port and stopping it (SIGTERM) at the end:
    python3 bench/serve/serve_load.py --start "build/tools/ctformer/ctformer serve --model gpt2"

Python's standard library only (one thread per client). Progress goes to stderr every 100 requests.
"""
import argparse
import http.client
import json
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=64, help="concurrent connections")
    parser.add_argument("--prompts", type=int, default=1000, help="seed prompts to send")
    parser.add_argument("--max-tokens", type=int, default=47)
    parser.add_argument("--stream", action="store_true", help="stream, and time each token")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--start", metavar="COMMAND",
                        help="start this server command with --port 0, load it, then stop it")
    args = parser.parse_args()

    server = None
    if args.start:
        server = subprocess.Popen(shlex.split(args.start) + ["--port", "0"], stdout=subprocess.PIPE,
                                  text=True)
        line = server.stdout.readline()  # "... on http://HOST:PORT (...)"
        if " on http://" not in line:
            server.kill()
            sys.exit(f"serve_load: the server did not start (first line: {line.strip()!r})")
        args.url = line.split(" on ", 1)[1].split()[0]
        print(f"serve_load: started {args.start} at {args.url}", file=sys.stderr, flush=True)
    try:
        return load(args)
    finally:
        if server:
            server.terminate()
            if server.wait(timeout=60) != 0:
                print(f"serve_load: the server exited with {server.returncode}", file=sys.stderr)


def load(args):

    url = urllib.parse.urlsplit(args.url)
    host, port = url.hostname, url.port or 80
    try:  # the server's model name, and a clear message when nothing listens
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/v1/models")
        model = json.loads(conn.getresponse().read())["data"][0]["id"]
    except OSError as e:
        sys.exit(f"serve_load: no server at {args.url} ({e}); start one with "
                 "`ctformer serve --model DIR|NAME --port PORT`")

    lock = threading.Lock()
    next_prompt = [0]
    latencies, ttfts, gaps, errors = [], [], [], []
    totals = {"completion_tokens": 0, "prompt_tokens": 0, "words": 0, "done": 0}

    def client():
        conn = http.client.HTTPConnection(host, port, timeout=600)
        while True:
            with lock:
                i = next_prompt[0]
                if i >= args.prompts:
                    return
                next_prompt[0] += 1
            prompt = f"My example {i}"
            body = {"model": model, "prompt": prompt, "max_tokens": args.max_tokens,
                    "temperature": 0, "stream": args.stream}
            if args.stream:
                body["stream_options"] = {"include_usage": True}
            start = time.perf_counter()
            try:
                conn.request("POST", "/v1/completions", json.dumps(body),
                             {"Content-Type": "application/json"})
                response = conn.getresponse()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {response.read()[:200]!r}")
                times, text, usage = [], "", None
                if args.stream:
                    for line in response:
                        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
                            continue
                        chunk = json.loads(line[6:])
                        if chunk.get("usage"):
                            usage = chunk["usage"]
                        for c in chunk["choices"]:
                            if c["text"]:
                                times.append(time.perf_counter())
                            text += c["text"]
                else:
                    answer = json.loads(response.read())
                    text, usage = answer["choices"][0]["text"], answer["usage"]
            except (OSError, RuntimeError, ValueError) as e:
                with lock:
                    errors.append(f"prompt {i}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=600)
                continue
            end = time.perf_counter()
            with lock:
                latencies.append(end - start)
                if times:
                    ttfts.append(times[0] - start)
                    gaps.extend(b - a for a, b in zip(times, times[1:]))
                totals["completion_tokens"] += usage["completion_tokens"]
                totals["prompt_tokens"] += usage["prompt_tokens"]
                totals["words"] += len((prompt + text).split())  # the seed's count
                totals["done"] += 1
                if totals["done"] % 100 == 0:
                    print(f"serve_load: {totals['done']}/{args.prompts} requests, "
                          f"{time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began

    summary = {
        "server": args.url, "model": model, "clients": args.clients, "requests": totals["done"],
        "errors": len(errors), "wall_s": round(wall, 3),
        "prompt_tokens": totals["prompt_tokens"], "generated_tokens": totals["completion_tokens"],
        "generated_tokens_per_s": round(totals["completion_tokens"] / wall, 1),
        "words_per_s": round(totals["words"] / wall, 1),
        "latency_ms_p50": round(1000 * percentile(latencies, 50), 1),
        "latency_ms_p99": round(1000 * percentile(latencies, 99), 1),
    }
    if args.stream:
        summary.update({
            "ttft_ms_p50": round(1000 * percentile(ttfts, 50), 1),
            "ttft_ms_p99": round(1000 * percentile(ttfts, 99), 1),
            "inter_token_ms_p50": round(1000 * percentile(gaps, 50), 2),
            "inter_token_ms_p99": round(1000 * percentile(gaps, 99), 2),
        })
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:24} {value}")
    for e in errors[:5]:
        print(f"serve_load: error: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
