#!/usr/bin/env python3
"""What ptxas gives each CUDA kernel (registers, shared memory, stack, spills), checked without a GPU.

A kernel whose per-thread arrays are indexed by a loop that was not unrolled, or that needs more
registers than its launch bounds allow, gets a stack frame in local memory: every access is then a
memory round trip. A kernel that copies elements out of global memory with memcpy through a
reference (rather than from a register) gets one-byte loads: 16 of them for a 16-byte piece. In
neither case does anything fail; the kernel is just slow, and no test on a GPU notices. Both show
at compile time, in ptxas's report and in the PTX, so they are checked on every build, GPU or not:

    kernel_resources.py capture REPORT -- nvcc ... -c x.cu -o x.o
        The compiler launcher (CMake's CUDA_COMPILER_LAUNCHER, tests/cuda/CMakeLists.txt): runs the
        compile with --resource-usage, keeping its PTX in a temporary folder, and writes ptxas's
        report and the count of one-byte global loads of each function to REPORT; other output
        passes on.
    kernel_resources.py check REPORT...
        Fails (exit 1) if any ctformer kernel, or device function ptxas did not inline, has a
        stack frame or spills, or loads from global memory a byte at a time (ctformer's kernels
        read no byte-sized data), for any architecture; or if the reports hold no ctformer kernel
        or no PTX at all. Kernels of other libraries (CUB) are listed, not judged. --table prints
        every one.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")
PROPERTIES = re.compile(r"Function properties for (\S+)")
FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USED = re.compile(r"Used (\d+) registers")
SMEM = re.compile(r"(\d+) bytes smem")
CUMULATIVE_STACK = re.compile(r"(\d+) bytes cumulative stack size")
# In the PTX: where a function starts, its target, and a one-byte load from global memory (or
# through a generic pointer, which may be global).
PTX_FUNCTION = re.compile(r"^\s*(?:\.visible\s+|\.weak\s+)?\.(?:entry|func)\s+(?:\([^)]*\)\s*)?(\w+)")
PTX_TARGET = re.compile(r"^\s*\.target\s+(sm_\w+)")
PTX_BYTE_LOAD = re.compile(r"^\s*(?:@!?%p\d+\s+)?ld(?:\.global)?(?:\.[\w:]+)*\.[usb]8\s")
PTX_NOT_GLOBAL = re.compile(r"\bld\.(?:param|shared|local|const)\b")
# What capture() adds to a report, after ptxas's lines.
SCANNED = re.compile(r"^ptx scanned (sm_\w+): (\d+) functions")
BYTE_LOADS = re.compile(r"^ptx byte loads (sm_\w+) (\S+) (\d+)")


def byte_loads(ptx_text):
    """(arch, {function: one-byte global loads}, functions seen) of one PTX file."""
    arch, function, counts, seen = None, None, {}, 0
    for line in ptx_text.splitlines():
        if m := PTX_TARGET.match(line):
            arch = m.group(1)
        elif m := PTX_FUNCTION.match(line):
            function, seen = m.group(1), seen + 1
        elif function and PTX_BYTE_LOAD.match(line) and not PTX_NOT_GLOBAL.search(line):
            counts[function] = counts.get(function, 0) + 1
    return arch, counts, seen


def capture(report, command):
    with tempfile.TemporaryDirectory() as keep:
        result = subprocess.run(command + ["--resource-usage", "--keep", f"--keep-dir={keep}"],
                                stderr=subprocess.PIPE, text=True, errors="replace")
        scans = []
        for name in sorted(os.listdir(keep)):
            if name.endswith(".ptx"):
                with open(os.path.join(keep, name), errors="replace") as f:
                    scans.append(byte_loads(f.read()))
    os.makedirs(os.path.dirname(os.path.abspath(report)), exist_ok=True)
    ptxas, other = [], []
    for line in result.stderr.splitlines(keepends=True):
        (ptxas if line.startswith("ptxas info") or FRAME.search(line) else other).append(line)
    with open(report, "w") as f:
        f.writelines(ptxas)
        for arch, counts, seen in scans:
            f.write(f"ptx scanned {arch}: {seen} functions\n")
            for function, count in sorted(counts.items()):
                f.write(f"ptx byte loads {arch} {function} {count}\n")
    sys.stderr.writelines(other)
    return result.returncode


def parse(text):
    """Functions of one report, kernels and the device functions ptxas did not inline:
    {(mangled name, arch): {registers, smem, stack, spill_stores, spill_loads}}. A report holds one
    architecture after another; a device function's properties follow its architecture's
    kernels."""
    functions, arch, properties_of, current_entry = {}, None, None, None

    def function(name):
        return functions.setdefault((name, arch), {"registers": 0, "smem": 0, "stack": 0,
                                                   "spill_stores": 0, "spill_loads": 0})

    for line in text.splitlines():
        if m := ENTRY.search(line):
            arch, current_entry = m.group(2), m.group(1)
            function(current_entry)
        elif (m := PROPERTIES.search(line)) and arch:
            properties_of = m.group(1)
        elif (m := FRAME.search(line)) and properties_of:
            function(properties_of).update(stack=int(m.group(1)), spill_stores=int(m.group(2)),
                                           spill_loads=int(m.group(3)))
        elif (m := USED.search(line)) and current_entry:
            smem, stack = SMEM.search(line), CUMULATIVE_STACK.search(line)
            f = function(current_entry)
            f.update(registers=int(m.group(1)), smem=int(smem.group(1)) if smem else 0)
            if stack:  # the kernel's frame and those of the functions it calls
                f["stack"] = max(f["stack"], int(stack.group(1)))
    return functions


def parse_ptx_scan(text):
    """What capture() found in the PTX: ({arch}, {(mangled name, arch): one-byte global loads})."""
    archs, loads = set(), {}
    for line in text.splitlines():
        if m := SCANNED.match(line):
            archs.add(m.group(1))
        elif m := BYTE_LOADS.match(line):
            loads[(m.group(2), m.group(1))] = int(m.group(3))
    return archs, loads


def demangle(names):
    if not names or not shutil.which("c++filt"):
        return {n: n for n in names}
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True)
    return dict(zip(names, out.stdout.splitlines()))


def is_ours(mangled):
    return "8ctformer" in mangled  # the namespace, as the Itanium ABI spells it


def check(reports, table):
    functions = {}
    missing = [r for r in reports if not os.path.exists(r)]
    if missing:
        print(f"kernel_resources: no report {', '.join(missing)}: build the project first (the "
              "compile of each kernel test writes one)")
        return 1
    scanned, loads = set(), {}
    for report in reports:
        with open(report) as f:
            text = f.read()
        functions.update(parse(text))
        archs, report_loads = parse_ptx_scan(text)
        scanned |= archs
        loads.update(report_loads)
    names = demangle(sorted({name for name, _ in functions} | {name for name, _ in loads}))
    ours = {k: v for k, v in functions.items() if is_ours(k[0])}
    if not ours:
        print(f"kernel_resources: no ctformer kernel in {', '.join(reports)}: was the CUDA code "
              "compiled through the capture launcher?")
        return 1
    if not scanned:
        print(f"kernel_resources: no PTX scanned in {', '.join(reports)}: rebuild the kernel "
              "tests (an older capture did not keep the PTX)")
        return 1
    bad = {k: v for k, v in ours.items() if v["stack"] or v["spill_stores"] or v["spill_loads"]}
    byte_bad = {k: n for k, n in loads.items() if is_ours(k[0])}
    if table:
        print("| arch | kernel | registers | smem (B) | stack (B) | spills (B, st/ld) |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        by_arch_and_name = sorted(functions.items(), key=lambda kv: (kv[0][1], names[kv[0][0]]))
        for (name, arch), v in by_arch_and_name:
            print(f"| {arch} | {names[name][:140]} | {v['registers']} | {v['smem']} | "
                  f"{v['stack']} | {v['spill_stores']}/{v['spill_loads']} |")
    archs = sorted({arch for _, arch in ours})
    print(f"kernel_resources: {len(ours)} ctformer functions ({', '.join(archs)}) in "
          f"{len(reports)} reports; {len(functions) - len(ours)} of other libraries, not judged; "
          f"PTX scanned for one-byte global loads ({', '.join(sorted(scanned))})")
    for (name, arch), v in sorted(bad.items(), key=lambda kv: (kv[0][1], names[kv[0][0]])):
        print(f"FAIL {arch} {names[name]}: {v['stack']} bytes stack frame, {v['spill_stores']}/"
              f"{v['spill_loads']} bytes spilled (stores/loads). Per-thread arrays must be indexed "
              "by constants only (unroll the loops over them), and registers must fit the launch "
              "bounds.")
    for (name, arch), n in sorted(byte_bad.items(), key=lambda kv: (kv[0][1], names[kv[0][0]])):
        print(f"FAIL {arch} {names[name]}: {n} one-byte loads from global memory in its PTX. "
              "Elements copied out of memory with memcpy through a reference are read a byte at "
              "a time; load the whole word into a register first.")
    return 1 if bad or byte_bad else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    cap = sub.add_parser("capture")
    cap.add_argument("report")
    cap.add_argument("command", nargs=argparse.REMAINDER)
    chk = sub.add_parser("check")
    chk.add_argument("reports", nargs="+")
    chk.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.mode == "capture":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        return capture(args.report, command)
    return check(args.reports, args.table)


if __name__ == "__main__":
    sys.exit(main())
