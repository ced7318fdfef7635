#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Must-not-build tests of kernel::virtio: type-level guarantees, checked by rustc.

    tools/testing/virtio_rs/mustnotbuild/run.py [-j N] [--flavour debug] [--out DIR] [CASE.rs...]

6.12's KUnit doctests ignore `compile_fail`, so what the types of
kernel::virtio forbid is tested here instead. Every CASE.rs next to this
script (or each one named) is a complete out-of-tree module, built on its
own, in a temporary directory, against the kernel tree of --flavour, the
way scripts/modules.sh builds the drivers (make -C $KSRC O=$KBUILD LLVM=1
M=...). Its header names what it expects:

    // expect: E0596                   rustc must reject it with error[E0596]
    // expect: lie inside its layout   ... with an error whose text has this
    // expect: builds                  a control: it must build, warning-free

and each must-fail case marks its forbidden line(s) with a comment line
right above:

    // forbidden: why this line must not build

A must-fail case passes only if the build fails, every error rustc reports
is an expected one (its message line has the text or code), every
expectation is met by some error (a case may list several, when rustc
refuses one line for more than one reason), and every forbidden line is
cited by some error. So a case broken in some other way (a typo, an API
change) fails instead of passing by accident. The control case is the same
driver without the forbidden lines: it builds, which shows that the
failures come from those lines, not from a broken setup.

Prints KTAP, one result per case, with the first lines of the diagnostics
before a "not ok"; exits 0 only if every case passed. --out DIR (make
check's run directory) keeps each case's build log there. Nothing is
written next to the cases.
"""

import argparse
import concurrent.futures
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../../../.."))
BUILD = os.environ.get("VRS_BUILD", os.path.join(ROOT, "build"))
BUILDS = "builds"
# How many diagnostic lines a "not ok" shows.
SHOWN = 12
# A rustc error (or warning) line that starts a diagnostic.
DIAG = re.compile(r"^(error|warning)(\[E\d{4}\])?: (.*)$")
# Summary lines that are not diagnostics of their own.
SUMMARY = re.compile(r"^(error|warning): (aborting due to|\d+ warnings? emitted)")
CODE = re.compile(r"^E\d{4}$")


def lib_value(name):
    """A NAME=value assignment of scripts/lib.sh (the kernel version)."""
    with open(os.path.join(ROOT, "scripts", "lib.sh")) as f:
        m = re.search(rf"^{name}=(\S+)$", f.read(), re.M)
    return m.group(1)


def header(path):
    """What case PATH expects ([BUILDS], or error texts or codes), and its forbidden lines."""
    name = os.path.basename(path)
    expects, forbidden, marked = [], [], False
    in_header = True
    with open(path) as f:
        for n, line in enumerate(f, 1):
            text = line.strip()
            if in_header and text and not text.startswith("//"):
                in_header = False
            m = re.match(r"//\s*expect:\s*(.+?)\s*$", text)
            if in_header and m:
                expects.append(m.group(1))
            if re.match(r"//\s*forbidden\b", text):
                marked = True
            elif marked and text and not text.startswith("//"):
                forbidden.append(n)
                marked = False
    if not expects or (BUILDS in expects and len(expects) > 1):
        raise ValueError(f"{name}: the header needs '// expect: builds' or one or more "
                         "'// expect: <error code or text>' lines")
    if (expects == [BUILDS]) != (not forbidden):
        raise ValueError(f"{name}: a must-fail case marks its forbidden lines with a "
                         "'// forbidden: why' line above each; a control marks none")
    return expects, forbidden


def diagnostics(log):
    """The rustc diagnostics of build LOG: (kind, lines) per diagnostic, in order."""
    diags, cur = [], None
    for line in log.splitlines():
        m = DIAG.match(line)
        if m and not SUMMARY.match(line):
            cur = (m.group(1), [line])
            diags.append(cur)
        elif m or line.startswith("make"):
            cur = None
        elif cur is not None:
            cur[1].append(line)
    return diags


def matches(expect, diag):
    """Whether one diagnostic (its lines) is the expected error: by its message line."""
    if CODE.match(expect):
        return diag[0].startswith(f"error[{expect}]")
    return expect in diag[0]


def cites(diag, name, line):
    """Whether one diagnostic points at line LINE of case NAME (in a --> or ::: line)."""
    where = re.compile(rf"^\s*(-->|:::)\s*(\S*/)?{re.escape(name)}\.rs:{line}:\d+$")
    return any(where.match(text) for text in diag)


def judge(name, expects, forbidden, rc, log):
    """(passed, why, diagnostic lines to show) for the build of case NAME."""
    diags = diagnostics(log)
    errors = [d for kind, d in diags if kind == "error"]
    warnings = [d for kind, d in diags if kind == "warning"]
    first = [line for d in (errors or warnings) for line in d][:SHOWN]
    if not first and rc != 0:
        first = [line for line in log.splitlines() if line.strip()][-SHOWN:]
    want = "; ".join(expects)
    if expects == [BUILDS]:
        if rc != 0:
            return False, "the control does not build", first
        if warnings:
            return False, "the control builds with warnings", first
        return True, "", []
    if rc == 0:
        return False, f"it builds, but must fail with: {want}", first
    if not errors:
        return False, f"the build failed without a rustc error; expected: {want}", first
    other = [d for d in errors if not any(matches(e, d) for e in expects)]
    if other:
        shown = [line for d in other for line in d][:SHOWN]
        return False, f"it fails for another reason; expected: {want}", shown
    unmet = [e for e in expects if not any(matches(e, d) for d in errors)]
    if unmet:
        return False, f"no error says: {'; '.join(unmet)}", first
    uncited = [n for n in forbidden if not any(cites(d, name, n) for d in errors)]
    if uncited:
        return False, f"no error points at forbidden line(s) {uncited}", first
    return True, "", []


def build(case, expects, forbidden, args, kbuild, ksrc, tmproot):
    """Builds CASE in a directory of its own; returns (name, passed, why, lines, seconds)."""
    name = os.path.basename(case)[:-3]
    t0 = time.time()
    work = tempfile.mkdtemp(prefix=f"{name}-", dir=tmproot)
    try:
        shutil.copy(case, os.path.join(work, f"{name}.rs"))
        with open(os.path.join(work, "Kbuild"), "w") as f:
            f.write(f"obj-m += {name}.o\n")
        cmd = ["make", "-C", ksrc, f"O={kbuild}", "ARCH=x86_64", "LLVM=1", f"M={work}",
               "modules"]
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace", timeout=args.timeout)
            rc, log = p.returncode, p.stdout
        except subprocess.TimeoutExpired as e:
            out = e.stdout or ""
            rc = -1
            log = (out.decode(errors="replace") if isinstance(out, bytes) else out) + \
                f"\nmake: timed out after {args.timeout} s\n"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        with open(os.path.join(args.out, f"{name}.log"), "w") as f:
            f.write(" ".join(cmd) + "\n" + log)
    # Paths of the temporary directory mean nothing once it is gone.
    log = log.replace(work + "/", "")
    passed, why, lines = judge(name, expects, forbidden, rc, log)
    return name, passed, why, lines, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help="the .rs cases (default: every one next to "
                    "this script)")
    ap.add_argument("--flavour", default="debug", help="the kernel tree to build against")
    ap.add_argument("-j", "--jobs", type=int, default=min(2, len(os.sched_getaffinity(0))),
                    help="cases built at once (default: 2, or fewer CPUs)")
    ap.add_argument("--out", help="keep each case's build log in this directory")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per case")
    args = ap.parse_args()
    if args.jobs < 1:
        sys.exit("run.py: -j needs a positive number")
    cases = args.cases or sorted(os.path.join(HERE, f) for f in os.listdir(HERE)
                                 if f.endswith(".rs"))
    if not cases:
        sys.exit(f"run.py: no cases in {HERE}")
    for c in cases:
        if not c.endswith(".rs") or not os.path.isfile(c):
            sys.exit(f"run.py: {c}: not a .rs file")
        if not re.match(r"^[a-z][a-z0-9_]*$", os.path.basename(c)[:-3]):
            sys.exit(f"run.py: {c}: a case name must be a module name ([a-z0-9_])")
    names = [os.path.basename(c)[:-3] for c in cases]
    if len(set(names)) != len(names):
        sys.exit("run.py: two cases have the same name")
    try:
        headers = [header(c) for c in cases]
    except ValueError as e:
        sys.exit(f"run.py: {e}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    ksrc = os.path.join(BUILD, f"linux-{lib_value('KVER')}")
    kbuild = os.path.join(BUILD, f"kbuild-{args.flavour}")

    print("KTAP version 1")
    print(f"1..{len(cases)}", flush=True)
    if not os.path.isfile(os.path.join(kbuild, "vmlinux")):
        print(f"# the {args.flavour} kernel is not built: run make kernel FLAVOUR={args.flavour}")
        for i, name in enumerate(names, 1):
            print(f"not ok {i} {name}")
        return 1
    # Not while scripts/kernel.sh rebuilds the tree: it holds this lock meanwhile.
    lock = open(os.path.join(BUILD, ".kernel.lock"), "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        print("# waiting for the kernel build that is running", flush=True)
        fcntl.flock(lock, fcntl.LOCK_SH)
    t0 = time.time()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="mustnotbuild-") as tmproot, \
            concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futs = [pool.submit(build, c, e, f, args, kbuild, ksrc, tmproot)
                for c, (e, f) in zip(cases, headers)]
        for i, (fut, (expect, _)) in enumerate(zip(futs, headers), 1):
            name, passed, why, lines, dt = fut.result()
            if passed:
                what = "builds" if expect == [BUILDS] else f"rejected: {'; '.join(expect)}"
                print(f"# {name}: {what} ({dt:.0f} s)")
                print(f"ok {i} {name}", flush=True)
                continue
            failed += 1
            print(f"# {name}: {why} ({dt:.0f} s)")
            for line in lines:
                print(f"#   {line}".rstrip())
            print(f"not ok {i} {name}", flush=True)
    print(f"# {len(cases)} cases in {time.time() - t0:.0f} s, -j{args.jobs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
