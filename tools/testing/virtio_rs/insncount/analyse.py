#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Instructions per I/O by function, from an insncount run (see run.sh).

usage: analyse.py COUNTS GUEST_OUTPUT [--top N] [--c MODULE] [--rust MODULE]

COUNTS is the plugin's output (windows of "address count" lines);
GUEST_OUTPUT the guest command's output (insncount-guest): its
"@@INSNCOUNT window=K module=M ios=I" lines say which window is which, and
the lines between "@@KALLSYMS begin/end" are the guest's /proc/kallsyms
text symbols. For each module, the windows of N and 2N I/Os are
subtracted, function by function, and divided by N: instructions per I/O
with everything that happens once per fio run cancelled.
"""
import argparse
import bisect
import collections
import re
import subprocess
import sys


def read_windows(path):
    wins, cur = {}, None
    with open(path) as f:
        for line in f:
            a, b = line.split()
            if a == "window":
                cur = wins[int(b)] = {}
            elif a == "end":
                cur = None
            else:
                cur[int(a, 16)] = int(b)
    return wins


def read_guest(path):
    marks, syms, fio, inks = [], [], [], False
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.startswith("@@KALLSYMS begin"):
                inks = True
            elif line.startswith("@@KALLSYMS end"):
                inks = False
            elif inks:
                p = line.split()
                if len(p) >= 3:
                    syms.append((int(p[0], 16), p[2], p[3].strip("[]") if len(p) > 3 else "vmlinux"))
            elif line.startswith("@@INSNCOUNT window="):
                marks.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
            elif line.startswith("@@INSNCOUNT fio"):
                fio.append(dict(kv.split("=", 1) for kv in line.split()[2:]))
    return marks, syms, fio


def demangle(names):
    """Rust v0 (and C++) names through c++filt, crate hashes dropped."""
    mangled = [n for n in names if n.startswith("_R") or n.startswith("_Z")]
    out = {}
    if mangled:
        r = subprocess.run(["c++filt"], input="\n".join(mangled) + "\n",
                           capture_output=True, text=True)
        for m, d in zip(mangled, r.stdout.splitlines()):
            out[m] = re.sub(r"\[[0-9a-f]+\]", "", d)
    return out


def short(name):
    """Generic arguments nested in generic arguments become "..", and
    paths lose their crates and modules (a function keeps its last module):
    <kernel::virtio::virtqueue::Virtqueue<kernel::blk_virtio::Command<
    virtio_blk_rs::Blk>>>::add is <Virtqueue<Command<..>>>::add."""
    out, depth = [], 0
    for ch in name:
        if ch == "<":
            depth += 1
            if depth == 3:
                out.append("<..>")
        if depth < 3:
            out.append(ch)
        if ch == ">":
            depth -= 1
    name = "".join(out)
    name = re.sub(r"\b(?:[A-Za-z_][A-Za-z0-9_]*::)+(?=[A-Z])", "", name)
    return re.sub(r"\b(?:[A-Za-z_][A-Za-z0-9_]*::)*([A-Za-z_][A-Za-z0-9_]*::)(?=[a-z_])", r"\1", name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("counts")
    ap.add_argument("guest_output")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--c", default="virtio_blk")
    ap.add_argument("--rust", default="virtio_blk_rs")
    ap.add_argument("--full", dest="short", action="store_false",
                    help="full demangled names (default: shortened)")
    ap.add_argument("--width", type=int, default=100, help="function name column width")
    a = ap.parse_args()

    wins = read_windows(a.counts)
    marks, syms, fio = read_guest(a.guest_output)
    if not syms:
        sys.exit("analyse: no @@KALLSYMS symbols in the guest output")
    for f in fio:
        if f.get("error") != "0":
            sys.exit(f"analyse: a fio run failed: {f}")
    syms.sort()
    addrs = [s[0] for s in syms]
    dem = demangle({s[1] for s in syms})

    rust_names = set()

    def func_of(addr):
        if addr == 0:
            return "[user space]"
        i = bisect.bisect_right(addrs, addr) - 1
        if i < 0 or addr - addrs[i] > 1 << 16:
            return "[unknown]"
        _, raw, mod = syms[i]
        name = short(dem.get(raw, raw)) if a.short else dem.get(raw, raw)
        name = name if mod == "vmlinux" else f"{name} [{mod}]"
        if raw.startswith("_R"):
            rust_names.add(name)
        return name

    starts = set(addrs)

    def by_func(win):
        d = collections.Counter()
        for addr, n in win.items():
            d[func_of(addr)] += n
        return d

    def entries(win):
        """Executions of each function's first instruction: its calls (and any jumps back
        to its start)."""
        d = collections.Counter()
        for addr, n in win.items():
            if addr in starts:
                d[func_of(addr)] += n
        return d

    per_io, stderr, calls = {}, {}, {}
    for mod in (a.c, a.rust):
        ms = [m for m in marks if m["module"] == mod]
        ns = sorted({int(m["ios"]) for m in ms})
        if len(ns) != 2 or ns[1] != 2 * ns[0]:
            sys.exit(f"analyse: want windows of N and 2N I/Os for {mod}, have {ns}")
        n = ns[0]
        reps = collections.defaultdict(dict)
        for m in ms:
            w = int(m["window"])
            if w not in wins:
                sys.exit(f"analyse: window {w} missing from {a.counts}")
            reps[m.get("rep", "1")][int(m["ios"])] = w
        pairs = [(v[n], v[2 * n]) for v in reps.values() if len(v) == 2]
        f1, f2 = collections.Counter(), collections.Counter()
        e1, e2 = collections.Counter(), collections.Counter()
        spread, each = [], []
        for w1, w2 in pairs:
            b1, b2 = by_func(wins[w1]), by_func(wins[w2])
            f1.update(b1)
            f2.update(b2)
            e1.update(entries(wins[w1]))
            e2.update(entries(wins[w2]))
            spread.append((sum(b2.values()) - sum(b1.values())) / n)
            each.append((b1, b2))
        per_io[mod] = {k: (f2[k] - f1[k]) / (n * len(pairs)) for k in set(f1) | set(f2)}
        calls[mod] = {k: (e2[k] - e1[k]) / (n * len(pairs)) for k in set(e1) | set(e2)}
        # the standard error of each function's mean over the pairs
        se = {}
        for k in per_io[mod]:
            xs = [(b2[k] - b1[k]) / n for b1, b2 in each]
            m = sum(xs) / len(xs)
            se[k] = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)) ** 0.5 if len(xs) > 1 else 0.0
        stderr[mod] = se
        print(f"{mod}: {len(pairs)} pairs of windows of {n} and {2 * n} I/Os; whole guest "
              f"per I/O by pair: {' '.join(f'{x:.0f}' for x in spread)}")

    c, r = per_io[a.c], per_io[a.rust]
    keys = set(c) | set(r)
    rows = sorted(keys, key=lambda k: (-abs(r.get(k, 0) - c.get(k, 0)), k))
    w = a.width
    print()
    print(f"{'function':<{w}} {'C':>9} {'Rust':>9} {'Rust-C':>9} {'+/-':>6} {'calls C':>8} {'Rust':>6}")
    for k in rows[:a.top]:
        cv, rv = c.get(k, 0), r.get(k, 0)
        noise = (stderr[a.c].get(k, 0) ** 2 + stderr[a.rust].get(k, 0) ** 2) ** 0.5
        name = k if len(k) <= w else k[:w - 3] + "..."
        print(f"{name:<{w}} {cv:9.1f} {rv:9.1f} {rv - cv:+9.1f} {noise:6.1f}"
              f" {calls[a.c].get(k, 0):8.2f} {calls[a.rust].get(k, 0):6.2f}")
    print("(+/-: standard error of Rust-C from the spread over the pairs; a row whose"
          " difference is not well above it is noise. calls: executions of the function's"
          " first instruction per I/O)")

    def total(d, pred):
        return sum(v for k, v in d.items() if pred(k))

    print()
    groups = [
        ("kernel, all", lambda k: k != "[user space]"),
        (f"  in [{a.c}]", lambda k: k.endswith(f"[{a.c}]")),
        (f"  in [{a.rust}]", lambda k: k.endswith(f"[{a.rust}]")),
        ("  in other modules", lambda k: k.endswith("]") and not k.startswith("[")
         and not k.endswith(f"[{a.c}]") and not k.endswith(f"[{a.rust}]")),
        ("  in vmlinux", lambda k: not k.endswith("]")),
        ("    of which Rust (the kernel crate)", lambda k: not k.endswith("]") and k in rust_names),
        ("  [unknown]", lambda k: k == "[unknown]"),
        ("user space", lambda k: k == "[user space]"),
        ("whole guest", lambda k: True),
    ]
    print(f"{'total':<{w}} {'C':>9} {'Rust':>9} {'Rust-C':>9}")
    for name, pred in groups:
        cv, rv = total(c, pred), total(r, pred)
        print(f"{name:<{w}} {cv:9.1f} {rv:9.1f} {rv - cv:+9.1f}")


if __name__ == "__main__":
    main()
