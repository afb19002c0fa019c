#!/usr/bin/env python3
"""Where a decode step's GPU time goes: Nsight Compute's per-launch durations, summed by kernel.

    ncu --nvtx --nvtx-include decode-direct/ --metrics gpu__time_duration.sum --csv --page raw \\
        --print-units base --clock-control none --cache-control none \\
        gpt2_cuda_bench --batch 1 --decode-steps 8 --dtype fp16 > profile.csv
    tools/kernel_times.py profile.csv --steps 8

Prints a Markdown table, largest total first: kernel, launches per step, microseconds per step and
per launch, share of the step; then the sum, which is the step's GPU time without launch gaps (the
bench's step time minus it is what launching and host work add).
"""
import argparse
import collections
import csv
import io
import re
import sys

# Older ncu spells units out, newer ncu abbreviates them.
SCALE = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3, "second": 1e6,
         "ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


def short_name(kernel):
    """'void ns::attention_kernel<__half, 64, ...>(...)' -> 'attention_kernel'. Generic wrappers
    (cutlass::Kernel2<cutlass_80_tensorop_...>) keep their first template argument, which names the
    GEMM; cuBLASLt's own names (sm90_xmma_gemm_...) stay whole."""
    name = kernel.strip().replace("(anonymous namespace)::", "")
    name = re.sub(r"^void ", "", name)
    depth, base, first_argument = 0, "", ""
    for ch in name:
        if ch == "(" and depth == 0:
            break  # the parameter list
        if depth == 0 and ch not in "<>":
            base += ch
        elif depth == 1 and ch not in "<>":
            first_argument += ch
        depth += (ch == "<") - (ch == ">")
    base = base.split("::")[-1] or kernel
    if base in ("Kernel", "Kernel2", "device_kernel"):
        return f"{base}<{first_argument.split(',')[0].split('::')[-1].strip()}>"
    return base


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="ncu --csv --page raw output ('-' for standard input)")
    parser.add_argument("--steps", type=int, required=True, help="decode steps profiled")
    args = parser.parse_args()
    text = sys.stdin.read() if args.csv == "-" else open(args.csv, encoding="utf-8").read()
    # ncu prints its own lines (==PROF== ...) before the CSV: the table starts at its header.
    start = text.find('"ID"')
    if start < 0:
        sys.exit("kernel_times: no ncu CSV table in the input (did ncu fail? see its log)")
    rows = list(csv.reader(io.StringIO(text[start:])))
    header, units, launches = rows[0], rows[1], rows[2:]
    try:
        name_at, time_at = header.index("Kernel Name"), header.index("gpu__time_duration.sum")
    except ValueError:
        sys.exit(f"kernel_times: expected columns 'Kernel Name' and 'gpu__time_duration.sum', "
                 f"found {header}")
    scale = SCALE.get(units[time_at])
    if scale is None:
        sys.exit(f"kernel_times: unknown time unit '{units[time_at]}'")
    total = collections.Counter()
    count = collections.Counter()
    for row in launches:
        if len(row) <= max(name_at, time_at) or not row[time_at]:
            continue
        name = short_name(row[name_at])
        total[name] += float(row[time_at].replace(",", "")) * scale
        count[name] += 1
    step_us = sum(total.values()) / args.steps
    print("| kernel | launches / step | us / step | us / launch | share |")
    print("|---|---|---|---|---|")
    for name, us in total.most_common():
        print(f"| {name} | {count[name] / args.steps:g} | {us / args.steps:.1f} | "
              f"{us / count[name]:.2f} | {100 * us / args.steps / step_us:.1f}% |")
    launches_per_step = sum(count.values()) / args.steps
    print(f"\nGPU time per decode step (sum of kernels): {step_us:.1f} us in "
          f"{launches_per_step:g} launches")


if __name__ == "__main__":
    main()
