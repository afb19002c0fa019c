#!/usr/bin/env python3
"""Checks the inner loops of the AArch64 projection kernels (include/ctformer/ops/packed_matmul_neon.hpp)
as GCC compiles them, since no ARM machine is at hand to time them.

Compiles every block the kernels instantiate (row tiles of 1 to 12 rows; fp32, fp16, split bf16
and BFDOT) with the cross compiler at -O3, finds each block's FMA loop (the loop with the most
FMLA-by-element or BFDOT instructions) and fails if the loop touches the stack: a spilled
accumulator costs a load and a store every step, which no result check notices (GCC 12 did this
twice while the kernel was written). With llvm-mca, also prints its estimate of the cycles a step
of four blocks takes on a Cortex-A72 (llvm-mca 14 has no model of the Neoverse cores).

    tools/neon_kernel_loops.py [--cxx aarch64-linux-gnu-g++] [--cxxflags "-mcpu=neoverse-n1"]
"""
import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
TYPES = [("float", "float"), ("Eigen::half", "float"), ("Eigen::bfloat16", "float"),
         ("Eigen::bfloat16", "std::uint32_t")]
# (block, what it is, FMAs a step) for llvm-mca's estimate.
MCA_BLOCKS = [("block<6, 4, 12, float>", "fp32, 6 x 16", 24),
              ("block<6, 4, 12, Eigen::half>", "fp16, 6 x 16", 24),
              ("block<4, 4, 12, Eigen::bfloat16>", "split bf16, 4 x 16", 32),
              ("block<2, 8, 2, float>", "fp32, 2 x 32", 16)]
LANE_FMA = re.compile(r"\t(fmla\t.*\.s\[|bfdot\t)")
# b, b.ne, bgt, cbnz x0, tbz w1, #3 ...: any branch to a local label.
BRANCH = re.compile(r"\t(?:b(?:\.?[a-z]{2})?|cbn?z|tbn?z)\t(?:[^,\n]*,\s*)*(\.L\d+)$")


def compile_blocks(cxx, cxxflags, out):
    lines = ['#include "ctformer/ops/packed_matmul.hpp"', "using namespace ctformer::ops;"]
    for rows in range(1, 13):
        for t, a in TYPES:
            lines.append(f"template void packed::neon::tile<{rows}, {t}, {a}>(std::int64_t, const "
                         f"{a}*, const {t}*, const float*, Epilogue, float*, std::int64_t, int);")
    source = out / "blocks.cpp"
    source.write_text("\n".join(lines) + "\n")
    asm = out / "blocks.s"
    subprocess.run([cxx, "-std=c++20", "-O3", "-DNDEBUG", *cxxflags.split(), f"-I{ROOT}/include",
                    "-I/usr/include/eigen3", "-S", "-o", str(asm), str(source)], check=True)
    return asm.read_text().split("\n")


def fma_loops(asm):
    """{demangled block name: its FMA loop's instructions}"""
    bodies, name = {}, None
    for line in asm:
        m = re.match(r"^(_Z\S+):$", line)
        if m:
            name = m.group(1)
            bodies[name] = []
        elif name:
            bodies[name].append(line)
    names = subprocess.run(["c++filt"], input="\n".join(bodies), capture_output=True, text=True,
                           check=True).stdout.split("\n")
    loops = {}
    for mangled, demangled in zip(bodies, names):
        m = re.search(r"neon::(block(?:_pairs)?<[^>]*>)", demangled)
        if not m:
            continue
        body, labels, best = bodies[mangled], {}, (0, [])
        for i, line in enumerate(body):
            if re.match(r"^\.L\d+:", line):
                labels[line[:-1]] = i
            b = BRANCH.search(line)
            if b and labels.get(b.group(1), i) < i:
                loop = body[labels[b.group(1)]:i + 1]
                fmas = sum(1 for x in loop if LANE_FMA.search(x))
                if fmas > best[0]:
                    best = (fmas, loop)
        loops[m.group(1)] = [x for x in best[1] if x.startswith("\t") and not x.startswith("\t.")]
    return loops


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cxx", default="aarch64-linux-gnu-g++")
    parser.add_argument("--cxxflags", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        loops = fma_loops(compile_blocks(args.cxx, args.cxxflags, pathlib.Path(tmp)))
        missing = sorted(n for n, loop in loops.items() if not loop)
        for n in missing:
            print(f"neon_kernel_loops: no FMA loop found in {n}")
        spilling = {n: sum("[sp" in x for x in loop) for n, loop in loops.items()
                    if any("[sp" in x for x in loop)}
        print(f"neon_kernel_loops: {len(loops)} blocks, {len(spilling)} with stack access in the "
              f"FMA loop ({args.cxx} -O3 {args.cxxflags})".rstrip())
        for n, count in sorted(spilling.items()):
            print(f"  {n}: {count} loads/stores of the stack a step")
        mca = shutil.which("llvm-mca-14") or shutil.which("llvm-mca")
        if mca:
            for block, what, fmas in MCA_BLOCKS:
                loop = pathlib.Path(tmp) / "loop.s"
                loop.write_text("\n".join(loops[block]) + "\n")
                report = subprocess.run([mca, "-mtriple=aarch64", "-mcpu=cortex-a72",
                                         "-iterations=200", str(loop)], capture_output=True,
                                        text=True, check=True).stdout
                cycles = int(re.search(r"Total Cycles:\s+(\d+)", report).group(1)) / 200
                print(f"  llvm-mca, Cortex-A72: {what}: {cycles:.1f} cycles for {fmas} FMAs a step "
                      f"({fmas / cycles:.0%} of one 128-bit FMA a cycle)")
    return 1 if spilling or missing or not loops else 0


if __name__ == "__main__":
    sys.exit(main())
