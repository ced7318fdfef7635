#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Run the virtio-rs selftests in guests and summarise them.

Each entry of SUITES is one selftest script run in one guest per transport.
The guest prints KTAP on its control channel; we parse it with the kernel's
own tools/testing/kunit/kunit_parser.py. Every guest run also gets one more
test of its own: the console log must be free of kernel splats (BUG,
WARNING, KASAN, lockdep, Oops, panic, sleeping in atomic context, kmemleak).
The last line printed is "N passed, N failed"; the exit status is 0 only if
nothing failed.
"""

import argparse
import io
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("VRS_BUILD", os.path.join(ROOT, "build"))
KVER = "6.12.117"
sys.path.insert(0, os.path.join(BUILD, f"linux-{KVER}", "tools/testing/kunit"))

ALL_TRANSPORTS = [("pci", "split"), ("pci-legacy", "split"), ("mmio", "split"), ("pci", "packed")]
# microvm has 8 virtio-mmio slots, so "every device" takes two mmio guests.
MMIO_HALVES = ["rng,blk,net,console,balloon,scsi,9p,gpu", "keyboard,mouse,tablet"]
SELFTESTS = "/selftests/virtio_rs"
# The blk suites' guest: blk0 with one queue, blk1 with two, blk2 read-only
# (QEMU then offers VIRTIO_BLK_F_RO); discard reaches the image files.
BLK_DEVICES = "blk,blk1,blk2"
BLK_VM_ARGS = ["--device-props", "blk=num-queues=1", "--device-props", "blk1=num-queues=2",
               "--drive-props", "blk=discard=unmap", "--drive-props", "blk1=discard=unmap",
               "--drive-props", "blk2=readonly=on"]

# name: the suite; script: what runs in the guest (with its arguments);
# runs: (transport, ring) or (transport, ring, devices) tuples;
# devices/drivers: as scripts/vm takes them; vm_args: more scripts/vm
# options; append: kernel command line; timeout: seconds per guest;
# default=False: run only when named with --suite.
SUITES = [
    dict(name="kunit", script="kunit.sh", runs=[("pci", "split")], devices="none",
         drivers="none", append=["kunit.enable=1"], timeout=900),
    dict(name="pipeline", script="pipeline.sh", runs=[("pci", "split")], devices="none",
         drivers="none"),
    dict(name="rng", script="rng.sh", runs=ALL_TRANSPORTS, devices="rng,rng1", drivers="none"),
    # virtio-blk on three devices: one queue, two queues, read-only. "blk"
    # tests virtio_blk_rs; "blk-c" runs the same tests on the C virtio_blk,
    # the reference every test must pass on.
    dict(name="blk", script="blk.sh rust", runs=ALL_TRANSPORTS, devices=BLK_DEVICES,
         drivers="none", vm_args=BLK_VM_ARGS),
    dict(name="blk-c", script="blk.sh c", runs=ALL_TRANSPORTS, devices=BLK_DEVICES,
         drivers="none", vm_args=BLK_VM_ARGS, default=False),
    # "input" tests virtio_input_rs; "input-c" runs the same tests on the C
    # virtio_input, the reference every test must pass on.
    dict(name="input", script="input.sh rust", runs=ALL_TRANSPORTS,
         devices="keyboard,mouse,tablet", drivers="none"),
    dict(name="input-c", script="input.sh c", runs=ALL_TRANSPORTS,
         devices="keyboard,mouse,tablet", drivers="none", default=False),
    # A lying vhost-user rng (build/baddev): oversized, zero and huge used lengths.
    dict(name="badrng", script="badrng.sh", runs=[("pci", "split")], devices="badrng",
         drivers="none"),
    # kernel::virtio with handles that outlive the device (test_modules/virtio_leak_rs).
    dict(name="leak", script="leak.sh", runs=ALL_TRANSPORTS, devices="rng,rng1",
         drivers="none"),
    # What the types of kernel::virtio forbid: small modules that must not
    # build (and a control that must), built on the host against the debug tree.
    dict(name="mustnotbuild", host=["tools/testing/virtio_rs/mustnotbuild/run.py"],
         runs=[("pci", "split")], devices="none", drivers="none"),
    # One tiny benchmark round: proves the harness works, asserts no speed.
    dict(name="bench-smoke", host=["scripts/bench.py", "--smoke", "--flavour", "debug"],
         runs=[("pci", "split")], devices="rng", drivers="none"),
    dict(name="c-baseline", script="c_baseline.sh", devices="all", drivers="c",
         runs=[("pci", "split"), ("pci-legacy", "split"), ("pci", "packed")] +
         [("mmio", "split", half) for half in MMIO_HALVES]),
]

SPLAT = re.compile(
    r"BUG: |WARNING: |kernel BUG at|Oops|Kernel panic|general protection fault|"
    r"KASAN|UBSAN|possible circular locking|possible recursive locking|"
    r"inconsistent lock state|suspicious RCU usage|lock inversion|DEBUG_LOCKS_WARN_ON|sleeping function called from invalid context|"
    r"scheduling while atomic|suspected memory leak|unreferenced object|"
    r"rust_kernel: panicked|Call Trace:")
# Lines that mention those words without being a splat.
NOT_SPLAT = re.compile(r"RCU lockdep checking is enabled|MAX_LOCKDEP|lockdep: .*(per-cpu|"
                       r"initialized)|Lock dependency validator|kasan: KernelAddressSanitizer|"
                       r"kmemleak: Kernel memory leak detector initialized")


def splats(log):
    try:
        with open(log, errors="replace") as f:
            return [l.rstrip() for l in f if SPLAT.search(l) and not NOT_SPLAT.search(l)]
    except FileNotFoundError:
        return ["console log missing"]


def parse_ktap(text, parsed_log):
    import kunit_parser
    import kunit_printer
    buf = io.StringIO()
    kunit_parser.stdout = kunit_printer.Printer(buf)
    try:
        test = kunit_parser.parse_run_tests(text.splitlines())
    except Exception as e:  # noqa: BLE001 - malformed output is a failure, not a crash
        with open(parsed_log, "w") as f:
            f.write(buf.getvalue() + f"\nparse error: {e}\n")
        return 0, 1, [f"KTAP output could not be parsed: {e}"]
    with open(parsed_log, "w") as f:
        f.write(buf.getvalue())
    failed = []

    def walk(t, prefix):
        name = f"{prefix}/{t.name}" if prefix else t.name
        if not t.subtests:
            if t.status in (kunit_parser.TestStatus.FAILURE, kunit_parser.TestStatus.TEST_CRASHED):
                failed.append(name)
        for s in t.subtests:
            walk(s, name if t.name else prefix)
    walk(test, "")
    c = test.counts
    nfail = c.failed + c.crashed + c.errors
    if nfail and not failed:
        failed.append(test.name or "KTAP output")
    return c.passed, nfail, failed


def main():
    ap = argparse.ArgumentParser(prog="make check")
    ap.add_argument("--suite", default="",
                    help="comma-separated suites to run (default: all but those --list marks "
                    "as not run by default)")
    ap.add_argument("--transport", default="", help="only this transport")
    ap.add_argument("--flavour", default="debug")
    ap.add_argument("--list", action="store_true", help="list the runs and exit")
    args = ap.parse_args()
    names = [s["name"] for s in SUITES]
    wanted = [s for s in args.suite.split(",") if s]
    for w in wanted:
        if w not in names:
            sys.exit(f"check: unknown suite '{w}' (valid: {', '.join(names)})")
    if args.transport and args.transport not in ("pci", "pci-legacy", "mmio", "packed"):
        sys.exit("check: unknown transport (valid: pci, pci-legacy, mmio, packed)")
    runs = []
    for s in SUITES:
        if wanted and s["name"] not in wanted:
            continue
        if not wanted and not s.get("default", True):
            continue
        for run in s["runs"]:
            transport, ring = run[:2]
            devices = run[2] if len(run) > 2 else s["devices"]
            if args.transport and args.transport not in (transport, ring):
                continue
            runs.append((s, transport, ring, devices))
    if args.list:
        for s, t, r, d in runs:
            print(f"{s['name']:14} {t}/{r:8} devices={d} drivers={s['drivers']}")
        extra = [s["name"] for s in SUITES if not s.get("default", True) and s["name"] not in wanted]
        if extra:
            print(f"not run by default (name them with --suite): {', '.join(extra)}")
        return 0

    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(BUILD, "check", stamp)
    os.makedirs(outdir)
    latest = os.path.join(BUILD, "check", "latest")
    if os.path.islink(latest):
        os.remove(latest)
    os.symlink(stamp, latest)
    total_pass = total_fail = 0
    failures = []
    start = time.time()
    for i, (s, transport, ring, devices) in enumerate(runs, 1):
        tag = f"{i:02}-{s['name']}-{transport}-{ring}"
        rdir = os.path.join(outdir, tag)
        os.makedirs(rdir)
        console, output = os.path.join(rdir, "console.log"), os.path.join(rdir, "ktap.txt")
        cmd = [os.path.join(ROOT, "scripts/vm"), "--flavour", args.flavour,
               "--transport", transport, "--ring", ring, "--devices", devices,
               "--drivers", s["drivers"], "--timeout", str(s.get("timeout", 600)),
               "--log", console, "--output", output, "--quiet-runner"]
        for a in s.get("append", []):
            cmd += ["--append", a]
        cmd += s.get("vm_args", [])
        cmd += ["--", f"sh {SELFTESTS}/{s.get('script')}"]
        t0 = time.time()
        if "host" in s:
            # A host-side harness: one test, passing if it exits 0.
            with open(os.path.join(rdir, "host.log"), "w") as log:
                r = subprocess.run([sys.executable, *s["host"], "--out", rdir], cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT, text=True)
            ok = r.returncode == 0
            total_pass += ok
            total_fail += not ok
            mark = "ok  " if ok else "FAIL"
            print(f"[{i:2}/{len(runs)}] {mark} {s['name']:12} {'host':18} "
                  f"{int(ok):4} passed, {int(not ok)} failed  ({time.time() - t0:.0f} s)", flush=True)
            if not ok:
                failures.append(f"{tag}: exit status {r.returncode}")
                print(f"          logs: {rdir}/host.log", flush=True)
            continue
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        dt = time.time() - t0
        try:
            with open(output, errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        npass, nfail, failed = parse_ktap(text, os.path.join(rdir, "parsed.txt"))
        bad = splats(console)
        # The run's own test: the guest finished and its console is clean.
        guest_ok = r.returncode in (0, 1) and not bad
        if guest_ok:
            npass += 1
        else:
            nfail += 1
            why = r.stderr.strip().splitlines()[-1] if r.returncode not in (0, 1) and r.stderr.strip() \
                else f"splat in console: {bad[0][:120]}" if bad else f"guest status {r.returncode}"
            failed.append(f"guest: {why}")
        total_pass += npass
        total_fail += nfail
        mark = "ok  " if not nfail else "FAIL"
        print(f"[{i:2}/{len(runs)}] {mark} {s['name']:12} {transport + '/' + ring:18} "
              f"{npass:4} passed, {nfail} failed  ({dt:.0f} s)", flush=True)
        for f in failed:
            print(f"          not ok: {f}", flush=True)
            failures.append(f"{tag}: {f}")
        if nfail:
            print(f"          logs: {rdir}/", flush=True)
    print(f"check: {len(runs)} guest runs in {time.time() - start:.0f} s; logs in {outdir}")
    for f in failures:  # all in one place, for a long run
        print(f"check: not ok: {f}")
    print(f"{total_pass} passed, {total_fail} failed")
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
