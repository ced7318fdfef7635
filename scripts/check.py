#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Run the virtio-rs selftests in guests and summarise them.

Each entry of SUITES is one selftest script run in one guest per transport,
or a host-side test program. The guest prints KTAP on its control channel;
we parse it with the kernel's own tools/testing/kunit/kunit_parser.py, and
count "ok N name # SKIP reason" lines as skipped (a SKIP without a reason is
a failure). Every guest run also gets one more test of its own: the console
log must be free of kernel splats (scripts/splat.py). Guests run in
parallel, -j of them at a time (default: one per CPU), with one vCPU each
unless the suite asks for more. The last line printed is "N passed, N
failed, N skipped"; the exit status is 0 only if nothing failed.
"""

import argparse
import concurrent.futures
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time

from splat import NOT_SPLAT, SPLAT, splats  # noqa: F401 - scripts/bench.py uses check.splats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("VRS_BUILD", os.path.join(ROOT, "build"))
KVER = "6.12.117"
sys.path.insert(0, os.path.join(BUILD, f"linux-{KVER}", "tools/testing/kunit"))

ALL_TRANSPORTS = [("pci", "split"), ("pci-legacy", "split"), ("mmio", "split"), ("pci", "packed")]
# The guest-time budget keeps the drivers that are done (rng, input, and the leak checks) to
# pci/split by default (blk, net and console cover virtio-mmio, packed rings and the legacy
# interface in the core); FULL=1 adds mmio, pci-legacy and packed rings.
SHORT_TRANSPORTS = [("pci", "split")]
LEGACY = ("pci-legacy", "split")
SHORT_FULL = [r for r in ALL_TRANSPORTS if r not in SHORT_TRANSPORTS]
# microvm has 8 virtio-mmio slots, so "every device" takes two mmio guests.
MMIO_HALVES = ["rng,blk,net,console,balloon,scsi,9p,gpu", "keyboard,mouse,tablet"]
SELFTESTS = "/selftests/virtio_rs"
# The blk suites' guest: blk0 with one queue, blk1 with two, blk2 read-only
# (QEMU then offers VIRTIO_BLK_F_RO); discard reaches the image files.
BLK_DEVICES = "blk,blk1,blk2"
# The net suites' second NIC reports its link's speed and duplex.
NET_VM_ARGS = ["--device-props", "net1=speed=10000,duplex=full"]
BLK_VM_ARGS = ["--device-props", "blk=num-queues=1", "--device-props", "blk1=num-queues=2",
               "--drive-props", "blk=discard=unmap", "--drive-props", "blk1=discard=unmap",
               "--drive-props", "blk2=readonly=on"]

# name: the suite; script: what runs in the guest (with its arguments);
# runs: (transport, ring), (transport, ring, devices) or (transport, ring,
# devices, variant) tuples, a variant being a dict: tag (in the run's name),
# args (appended to script), vm_args (more scripts/vm options);
# full_runs: more of them, run only by make check FULL=1 (--full);
# devices/drivers: as scripts/vm takes them; vm_args: more scripts/vm
# options; append: kernel command line; timeout: seconds per guest or host
# program (the hard limit, default 600); budget: minutes one run should take
# at most under TCG with -j2 (a run over it is a warning, not a failure;
# default 10); smp: vCPUs per guest (default 1); default=False: run only
# when named with --suite, or with FULL=1.
# host: a program run on the host instead (in ROOT, with --out RUNDIR
# added), one test passing if it exits 0, or with ktap=True one test per
# KTAP result it prints; without runs it boots no guest and runs once.
# leaks=True: the suite leaks memory on purpose, so kmemleak's reports in
# its console are not splats (every other kind still is). storms=True: the
# suite storms an interrupt on purpose, so one stack trace per "irq N:
# nobody cared" report is not a splat either.
# The request-lie disks of the blk-reqlies suites, one baddev backend each.
BLK_REQ_LIES = ",".join(f"badblk:req-{lie}" for lie in (
    "honest", "ioerr", "unsupp", "used-len-huge", "used-len-0", "bad-id", "dup-id", "never",
    "irq-storm"))
# The RX paths of virtio-net (net.sh's PATH0 PATH1), as QEMU properties of a NIC on a tap:
# mergeable buffers (QEMU's default; host_mtu 9000 for the MTU test), big packets (no
# mergeable buffers, guest GSO or a large MTU), small buffers (neither).
NET_PATHS = {
    "mrg": "host_mtu=9000",
    "big": "host_mtu=9000,mrg_rxbuf=off",
    "small": "mrg_rxbuf=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off",
}


def net_tap(transport, ring, path0, path1, queues=1, rss=False, smp=1):
    """A run of net.sh on the tap backend, NIC a (net) on PATH0, b (net1) on PATH1; both
    with host_mtu 9000 (net.sh's MTU test) unless one is on small buffers, and QUEUES queue
    pairs each (multiqueue above 1: net.sh's ethtool -L and per-queue traffic tests), with
    RSS and hash reports if RSS (net.sh's RSS tests), in a guest with SMP vCPUs (two: the
    pairs spread over two CPUs, and CPU 1 goes offline and online, in net.sh's interrupt
    affinity and XPS tests)."""
    mtu = "" if "small" in (path0, path1) else " 9000"
    mq = ["--net-queues", str(queues)] if queues > 1 else []
    mq += ["--net-rss"] if rss else []
    return (transport, ring, "net,net1",
            dict(tag=f"{path0}-{path1}" + (f"-mq{queues}" if queues > 1 else "")
                 + ("-rss" if rss else ""),
                 args=f" {path0} {path1}{mtu}", smp=smp,
                 vm_args=["--net-backend", "tap", "--device-props", f"net={NET_PATHS[path0]}",
                          "--device-props", f"net1={NET_PATHS[path1]}", *mq]))


SUITES = [
    dict(name="kunit", script="kunit.sh", runs=[("pci", "split")], devices="none",
         drivers="none", append=["kunit.enable=1"], timeout=900, budget=3),
    dict(name="pipeline", script="pipeline.sh", runs=[("pci", "split")], devices="none",
         drivers="none", budget=2),
    # rng2 is dry (max-bytes=0): its readers block for real. rng.sh keeps
    # rng_core's fill thread, which reads the current device now and then,
    # asleep while rng2 is current (see fill_thread_asleep there).
    dict(name="rng", script="rng.sh", runs=SHORT_TRANSPORTS, full_runs=SHORT_FULL,
         devices="rng,rng1,rng2",
         drivers="none", vm_args=["--device-props", "rng2=max-bytes=0,period=60000"],
         budget=3),
    # virtio-blk on three devices: one queue, two queues, read-only. "blk"
    # tests virtio_blk_rs on every transport; "blk-c" runs the same tests on
    # the C virtio_blk, the reference every test must pass on: on pci/split by
    # default, on the other transports with FULL=1.
    # Two vCPUs: the num-queues=2 disk gets at most one queue per CPU.
    # pci-legacy with FULL=1, for the guest-time budget: net-tap covers the legacy transport.
    dict(name="blk", script="blk.sh rust", runs=[r for r in ALL_TRANSPORTS if r != LEGACY],
         full_runs=[LEGACY], devices=BLK_DEVICES,
         drivers="none", vm_args=BLK_VM_ARGS, smp=2, budget=6),
    dict(name="blk-c", script="blk.sh c", runs=[("pci", "split")],
         full_runs=[r for r in ALL_TRANSPORTS if r != ("pci", "split")], devices=BLK_DEVICES,
         drivers="none", vm_args=BLK_VM_ARGS, smp=2, budget=6),
    # "input" tests virtio_input_rs; "input-c" runs the same tests on the C
    # virtio_input, the reference every test must pass on (pci/split by
    # default, every transport with FULL=1).
    dict(name="input", script="input.sh rust", runs=SHORT_TRANSPORTS, full_runs=SHORT_FULL,
         devices="keyboard,mouse,tablet", drivers="none", budget=4),
    dict(name="input-c", script="input.sh c", runs=[("pci", "split")],
         full_runs=[r for r in ALL_TRANSPORTS if r != ("pci", "split")],
         devices="keyboard,mouse,tablet", drivers="none", budget=4),
    # "console" tests virtio_console_rs's named ports on one virtio-serial device with one
    # virtserialport on a host socket (vrs-host port): names, /dev/virtio-ports links, bytes
    # both ways, poll and O_NONBLOCK, host disconnect and reconnect, the features C
    # negotiates, and qemu-guest-agent on a second port, org.qemu.guest_agent.0 (vrs-host ga)
    # (pci, mmio and packed rings; pci-legacy with FULL=1); "console-c" runs the
    # same tests on the C virtio_console, the reference.
    dict(name="console", script="console.sh rust",
         runs=[("pci", "split"), ("mmio", "split")],
         full_runs=[LEGACY, ("pci", "packed")],
         devices="console", drivers="none", vm_args=["--hvc"], budget=2, timeout=420),
    dict(name="console-c", script="console.sh c", runs=[("pci", "split")],
         full_runs=[r for r in ALL_TRANSPORTS if r != ("pci", "split")], devices="console",
         drivers="none", vm_args=["--hvc"], budget=2, timeout=420),
    # "net" tests virtio_net_rs on two NICs on one QEMU hub, each in its own guest network
    # namespace (ping, iperf3 TCP and UDP both ways, counters, set_link, the features C
    # negotiates; net1 reports a speed and a duplex, VIRTIO_NET_F_SPEED_DUPLEX, for ethtool),
    # on pci and mmio (packed rings and pci-legacy with FULL=1, for the
    # guest-time budget); "net-c" runs the same tests on the C virtio_net, the reference
    # every test must pass on (pci/split by default, every transport with FULL=1).
    # "net-tap" and "net-tap-c" run net.sh on taps with vnet headers (scripts/vm
    # --net-backend tap): QEMU offers the offloads (TSO, checksums), each run puts its two
    # NICs on the RX paths it names (NET_PATHS: mergeable, big packets, small buffers; by
    # default Rust has every path, and with the hub runs every transport), and
    # only these runs do the tests that change the devices' state the hardest
    # (freeze/restore, C beside Rust, rmmod and hot-unplug under iperf3); the pci runs marked
    # queues=2 give both NICs two queue pairs (multiqueue taps: net.sh's ethtool -L and
    # per-pair traffic tests), rss=True also RSS and hash reports (net.sh's ethtool -x/-X,
    # flows steered by the table, rx-flow-hash). A guest whose
    # driver oopses cannot reboot: shorter hard limits than the default.
    dict(name="net", script="net.sh rust", runs=[("pci", "split"), ("mmio", "split")],
         full_runs=[("pci", "packed"), ("pci-legacy", "split")], devices="net,net1",
         vm_args=NET_VM_ARGS, drivers="none", budget=4, timeout=360),
    dict(name="net-c", script="net.sh c", runs=[("pci", "split")],
         full_runs=[r for r in ALL_TRANSPORTS if r != ("pci", "split")], devices="net,net1",
         vm_args=NET_VM_ARGS, drivers="none", budget=4, timeout=360),
    # "net-ctrl" tests virtio_net_rs's control queue as QEMU sees it (QMP query-rx-filter:
    # promiscuous and all-multicast modes, the MAC, multicast and VLAN tables, the address;
    # announce-self), the second NIC as the peer; "net-ctrl-c" runs the same tests on the C
    # virtio_net.
    dict(name="net-ctrl", script="net_ctrl.sh rust", runs=[("pci", "split")],
         full_runs=[("mmio", "split"), ("pci", "packed"), ("pci-legacy", "split")],
         devices="net,net1", drivers="none", budget=2),
    dict(name="net-ctrl-c", script="net_ctrl.sh c", runs=[("pci", "split")],
         full_runs=[r for r in ALL_TRANSPORTS if r != ("pci", "split")], devices="net,net1",
         drivers="none", budget=2),
    dict(name="net-tap", script="net.sh rust",
         runs=[net_tap("pci-legacy", "split", "small", "mrg"),
               net_tap("pci", "packed", "mrg", "big", queues=2, rss=True)],
         # Two vCPUs only without host_mtu: with host_mtu=9000, two pairs in use from
         # probe (as many as CPUs) carry no traffic on QEMU 7.2's multiqueue tap, C's
         # virtio_net too.
         full_runs=[net_tap("pci", "split", "big", "small", queues=2, smp=2),
                    net_tap("mmio", "split", "mrg", "small")],
         devices="net,net1", drivers="none", budget=5, timeout=600),
    dict(name="net-tap-c", script="net.sh c",
         runs=[net_tap("pci", "split", "mrg", "big", queues=2, rss=True)],
         full_runs=[net_tap("pci", "split", "small", "mrg"), net_tap("pci", "split", "big", "small"),
                    net_tap("pci-legacy", "split", "mrg", "big"), net_tap("mmio", "split", "mrg", "big"),
                    net_tap("pci", "packed", "mrg", "big")],
         devices="net,net1", drivers="none", budget=5, timeout=600),
    # Both input drivers on virtio-input devices that the test module vrs_badinput plays in
    # the guest (QEMU 7.2's vhost-user-input needs KVM): an honest multitouch screen whose
    # status log shows the LEDs the driver sent, lying absinfo and slot counts, short events
    # and an event flood. The device is the module, not QEMU: one run, on pci/split. Tests
    # C cannot pass are marked "(Rust only)" and SKIP on C; Documentation/hardening.rst
    # records what C does.
    dict(name="input-lies", script="input_lies.sh rust", runs=[("pci", "split")],
         devices="none", drivers="none", budget=2, timeout=420),
    dict(name="input-lies-c", script="input_lies.sh c", runs=[("pci", "split")],
         devices="none", drivers="none", budget=2, timeout=420),
    # Both net drivers on virtio-net devices that the test module vrs_badnet plays in the
    # guest, whose receive queue lies about used lengths (mergeable, big and small buffers):
    # each lie is dropped and counted as C's virtio_net counts it, and an honest frame after
    # it arrives. One run, on pci/split (the device is the module, not QEMU).
    dict(name="net-lies", script="net_lies.sh rust", runs=[("pci", "split")],
         devices="none", drivers="none", budget=2, timeout=300),
    dict(name="net-lies-c", script="net_lies.sh c", runs=[("pci", "split")],
         devices="none", drivers="none", budget=2, timeout=300),
    # A lying vhost-user rng (build/baddev): oversized, zero and huge used lengths.
    dict(name="badrng", script="badrng.sh", runs=[("pci", "split")], devices="badrng",
         drivers="none", budget=2),
    # Lying vhost-user disks (build/baddev), one per config preset (serial =
    # preset): the driver refuses each probe cleanly or clamps the value.
    # "blk-lies-c" runs the same on the C virtio_blk; on these lies C is
    # recorded in Documentation/hardening.rst, not required. A probe that
    # crashes holds its device lock for good, and the guest cannot reboot:
    # a shorter hard limit than the default (a healthy run takes 2-4 min).
    dict(name="blk-lies", script="blk_lies.sh rust", runs=[("pci", "split")],
         devices="badblk:honest,badblk:blk-size-0,badblk:blk-size-3,badblk:blk-size-2g,"
         "badblk:pbexp-63,badblk:align-255,badblk:io-sizes,badblk:seg-max-0,badblk:capacity-2e63",
         drivers="none", budget=4, timeout=420),
    dict(name="blk-lies-c", script="blk_lies.sh c", runs=[("pci", "split")],
         devices="badblk:honest,badblk:blk-size-0,badblk:blk-size-3,badblk:blk-size-2g,"
         "badblk:pbexp-63,badblk:align-255,badblk:io-sizes,badblk:seg-max-0,badblk:capacity-2e63",
         drivers="none", default=False, budget=4, timeout=420),
    # virtio-blk drivers on vhost-user disks whose answers to requests lie (baddev blk
    # --lie: IOERR, UNSUPP, used lengths 0xffffffff and 0, an out-of-range and a repeated
    # used id), and baddev's request log read through `vrs-host baddev`. What C does is
    # recorded in Documentation/hardening.rst; blk-reqlies-c runs the same on C, which
    # passes every test: a reference run, on pci/split by default like blk-c.
    # fallocate (util-linux, from the host) punches a hole: a WRITE_ZEROES that may not fall
    # back to writing zeroes, so UNSUPP reaches userspace (a discard's never does).
    # req-irq-storm makes the kernel's spurious-interrupt detector report
    # "irq N: nobody cared" with a stack trace, and disable the line: that
    # report is the kernel protecting itself, and expected (storms=True).
    dict(name="blk-reqlies", script="blk_reqlies.sh rust", runs=[("pci", "split")],
         devices=BLK_REQ_LIES, drivers="none", vm_args=["--add-bin", "fallocate"],
         budget=4, timeout=420, storms=True),
    dict(name="blk-reqlies-c", script="blk_reqlies.sh c", runs=[("pci", "split")],
         devices=BLK_REQ_LIES, drivers="none", vm_args=["--add-bin", "fallocate"],
         budget=4, timeout=420),
    # kernel::virtio with handles that outlive the device (test_modules/virtio_leak_rs).
    # Its test module leaks a handle and a notifier per probe on purpose (leaks=True:
    # kmemleak's report of them is not a failure; KASAN and the rest are).
    dict(name="leak", script="leak.sh", runs=SHORT_TRANSPORTS, full_runs=SHORT_FULL,
         devices="rng,rng1",
         drivers="none", budget=3, leaks=True),
    # 6.12's in-tree Rust null block driver (rnull_mod) on our block::mq:
    # load, fio randrw without verify (it stores no data), unload.
    dict(name="rnull", script="rnull.sh", runs=[("pci", "split")], devices="none",
         drivers="none", budget=2),
    # One tiny benchmark round: proves the harness works, asserts no speed. With FULL=1
    # only, for the guest-time budget: blk-switch below runs the same harness (bench.py,
    # its switches, measurements and statistics) by default.
    dict(name="bench-smoke", host=["scripts/bench.py", "--smoke", "--flavour", "debug"],
         runs=[("pci", "split")], devices="rng", drivers="none", budget=4, default=False),
    # The bench's own switch sequence (C, Rust, C... by sysfs unbind/bind, both disks
    # together, on null-co and a cache=none,aio=threads file), three rounds: every
    # switch and measurement must finish before the bench's watchdog fires. It is
    # the sequence that lost interrupts on a 1-vCPU TCG guest (Documentation/
    # benchmarks.rst, "The stall"). Asserts completion, no speed.
    dict(name="blk-switch", host=["scripts/bench.py", "--device", "blk", "--flavour", "debug",
                                  "--rounds", "3", "--seconds", "0.5", "--workloads",
                                  "null-randread-4k-qd32,file-randread-4k-qd32,"
                                  "file-randwrite-4k-qd32"],
         runs=[("pci", "split")], devices="blk,blk1", drivers="none", budget=5, timeout=900),
    # Do a guest's full barriers order it against QEMU's threads? The store-buffering
    # litmus over an ivshmem BAR, in a guest booted as scripts/vm boots them all
    # (asserted), and with QEMU's own 1-vCPU setting (recorded). The host side spins
    # on a CPU of its own: counted as a second vCPU.
    # With FULL=1 only, for the guest-time budget: it measures QEMU's TCG and the host, not
    # a driver (and on a loaded host its control sees no reordering, so it skips).
    dict(name="litmus", host=["tools/testing/virtio_rs/litmus/run.py", "--ktap"], ktap=True,
         runs=[("pci", "split")], devices="none", drivers="none", smp=2, budget=3,
         default=False),
    # mmio, pci-legacy and packed only with FULL=1: the Rust suites run there, and
    # compare their features with C's.
    dict(name="c-baseline", script="c_baseline.sh", devices="all", drivers="c",
         runs=[("pci", "split")],
         full_runs=[("mmio", "split", half) for half in MMIO_HALVES]
         + [("pci-legacy", "split"), ("pci", "packed")], budget=2),
    # Host-side tests of the harness itself: the splat scanner, the KTAP
    # counting, scripts/vm's net backends, and the install branch of scripts/deps.sh against stub
    # apt/dpkg/cargo.
    dict(name="splat", host=["scripts/splat_test.py", "--ktap"], ktap=True, budget=1),
    dict(name="ktap", host=["scripts/check_test.py", "--ktap"], ktap=True, budget=1),
    dict(name="vm", host=["scripts/vm_test.py", "--ktap"], ktap=True, budget=1),
    dict(name="deps", host=["scripts/deps_test.py", "--ktap"], ktap=True, budget=1),
    dict(name="benchstats", host=["scripts/bench_test.py", "--ktap"], ktap=True, budget=1),
    # What the types of kernel::virtio forbid: small modules that must not
    # build (and a control that must), each built against the debug tree.
    dict(name="mustnotbuild", host=["tools/testing/virtio_rs/mustnotbuild/run.py"],
         ktap=True, budget=2),
]

# kmemleak's report lines, allowed in suites that leak on purpose (leaks=True).
KMEMLEAK = re.compile(r"kmemleak: .*suspected memory leak|unreferenced object 0x")
# The spurious-interrupt detector's report, allowed in suites that storm on
# purpose (storms=True): one stack trace per "nobody cared", no more.
NOBODY_CARED = re.compile(r"irq \d+: nobody cared")


def allow_storm_reports(console, bad):
    """BAD without one "Call Trace:" line per "nobody cared" report in CONSOLE."""
    try:
        with open(console, errors="replace") as f:
            n = sum(1 for line in f if NOBODY_CARED.search(line))
    except FileNotFoundError:
        return bad
    kept = []
    for line in bad:
        if n > 0 and "Call Trace:" in line:
            n -= 1
            continue
        kept.append(line)
    return kept

# What one default make check may take in guest time (the sum of the wall
# times of the runs that boot guests) on a 2-core host; over it, check.py
# warns. The per-run budgets above are ceilings, not estimates: they add up
# to more.
TOTAL_BUDGET = 50


def parse_ktap(text, parsed_log):
    """Counts of KTAP TEXT: (passed, failed, skipped, failed names, skipped
    (name, reason) pairs). A SKIP must give its reason on its result line
    ("ok 3 name # SKIP reason"); one that does not is counted as failed, as
    is an "ok" line with any other directive (kunit_parser would count it
    as passed)."""
    import kunit_parser
    import kunit_printer
    buf = io.StringIO()
    kunit_parser.stdout = kunit_printer.Printer(buf)
    # kunit_parser keeps a result's status but not its line: remember the
    # line on the Test object, to read the SKIP reason back with the
    # parser's own TEST_RESULT_SKIP expression.
    parse_result = kunit_parser.parse_test_result

    def parse_test_result(lines, test, expected_num):
        line = lines.peek() if lines else ""
        ok = parse_result(lines, test, expected_num)
        if ok:
            test.result_line = line
        return ok
    kunit_parser.parse_test_result = parse_test_result
    try:
        test = kunit_parser.parse_run_tests(text.splitlines())
    except Exception as e:  # noqa: BLE001 - malformed output is a failure, not a crash
        with open(parsed_log, "w") as f:
            f.write(buf.getvalue() + f"\nparse error: {e}\n")
        return 0, 1, 0, [f"KTAP output could not be parsed: {e}"], []
    finally:
        kunit_parser.parse_test_result = parse_result
    with open(parsed_log, "w") as f:
        f.write(buf.getvalue())
    failed, skipped = [], []
    bad = {"skip": 0, "ok": 0}  # leaves counted as skipped or passed that fail instead
    TestStatus = kunit_parser.TestStatus

    def walk(t, prefix, num):
        # A test without a result line (it crashed, or the output stopped)
        # has no name: say which one it was.
        name = t.name or f"test {num} (no result line)"
        name = f"{prefix}/{name}" if prefix else name
        line = getattr(t, "result_line", "")
        if not t.subtests:
            if t.status in (TestStatus.FAILURE, TestStatus.TEST_CRASHED):
                failed.append(name)
            elif t.status == TestStatus.SKIPPED:
                m = kunit_parser.TEST_RESULT_SKIP.match(line)
                reason = m.group(5).strip() if m else ""
                if reason:
                    skipped.append((name, reason))
                else:
                    bad["skip"] += 1
                    failed.append(f"{name}: SKIP without a reason (the KTAP line must say "
                                  "'# SKIP <why>')")
            elif t.status == TestStatus.SUCCESS:
                m = kunit_parser.TEST_RESULT.match(line)
                if m and m.group(5):
                    bad["ok"] += 1
                    failed.append(f"{name}: unknown directive '{m.group(5).strip()}' (only "
                                  "'# SKIP <why>' is understood)")
        for i, s in enumerate(t.subtests, 1):
            walk(s, name, i)
    for i, s in enumerate(test.subtests, 1):  # the top level is the parser's "main"
        walk(s, "", i)
    # kunit_parser stops at the plan: results past it would count for
    # nothing, pass or fail. More top-level results than the plan is one
    # failure of the run.
    plans = re.findall(r"^1\.\.(\d+)\s*$", text, re.M)
    results = len(re.findall(r"^(?:not )?ok \d+\b", text, re.M))
    if plans and results > int(plans[0]):
        failed.append(f"KTAP output: {results} results for a plan of {plans[0]}: "
                      "the results past the plan were not counted")
        extra_fail = 1
    else:
        extra_fail = 0
    c = test.counts
    # Each test that failed, crashed or has no result counts once; parse
    # errors (a bad plan, wrong numbering, no KTAP at all) that no such
    # test explains count as one failure of the run.
    nfail = c.failed + c.crashed
    if c.errors and not nfail:
        nfail = 1
        failed.append(f"KTAP output: {c.errors} parse error(s), see parsed.txt"
                      if test.name != "<missing>" else "no KTAP output")
    return (c.passed - bad["ok"], nfail + bad["ok"] + bad["skip"] + extra_fail,
            c.skipped - bad["skip"], failed, skipped)


def plan(wanted, transport_filter, full):
    """The runs to do: (suite, transport, ring, devices, variant) tuples, in SUITES order."""
    runs = []
    for s in SUITES:
        if wanted and s["name"] not in wanted:
            continue
        if not wanted and not s.get("default", True) and not full:
            continue
        if "runs" not in s:  # a host-only suite: no transport to filter on
            runs.append((s, "host", "", "", {}))
            continue
        for run in s["runs"] + (s.get("full_runs", []) if full else []):
            transport, ring = run[:2]
            devices = run[2] if len(run) > 2 else s["devices"]
            variant = run[3] if len(run) > 3 else {}
            if transport_filter and transport_filter not in (transport, ring):
                continue
            runs.append((s, transport, ring, devices, variant))
    return runs


def boots_guest(run):
    return run[1] != "host"


def vcpus(run):
    """The guest's vCPUs: the run's own (a variant's smp), else the suite's, else 1."""
    return run[4].get("smp", run[0].get("smp", 1)) if boots_guest(run) else 1


def budget(run):
    return run[0].get("budget", 10)


def describe(run):
    s, transport, ring, devices, variant = run
    where = f"{transport}/{ring}" if ring else transport
    where += f" {variant['tag']}" if variant.get("tag") else ""
    guest = f"smp={vcpus(run)} devices={devices} drivers={s['drivers']}" if boots_guest(run) \
        else "no guest"
    return f"{s['name']:14} {where:26} budget {budget(run):2} min  {guest}"


def minutes(seconds):
    return f"{seconds / 60:.1f} min"


class Procs:
    """The running child processes, each in its own session, so that an
    interrupt reaches scripts/vm and its QEMU only through interrupt()."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = set()
        self.stopping = False

    def run(self, cmd, timeout, **kw):
        """Runs CMD to its end; after TIMEOUT seconds kills it, status 124."""
        with self.lock:
            if self.stopping:
                raise RuntimeError("interrupted")
            p = subprocess.Popen(cmd, start_new_session=True, **kw)
            self.live.add(p)
        try:
            out, err = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            rc = 124
        finally:
            with self.lock:
                self.live.discard(p)
        return rc, out, err

    def interrupt(self):
        """Ctrl-C for every running guest (scripts/vm and its QEMU), then SIGKILL."""
        with self.lock:
            self.stopping = True
            live = list(self.live)
        for sig, grace in ((signal.SIGINT, 10), (signal.SIGKILL, 5)):
            for p in live:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            end = time.time() + grace
            while any(p.poll() is None for p in live) and time.time() < end:
                time.sleep(0.2)


def run_one(run, tag, rdir, args, procs):
    """One run, in its own directory; returns its counts and what failed or skipped."""
    s, transport, ring, devices, variant = run
    os.makedirs(rdir)
    res = dict(npass=0, nfail=0, nskip=0, failed=[], skipped=[], t0=time.time())
    execute = procs.run
    if "host" in s:
        with open(os.path.join(rdir, "host.log"), "w") as log:
            rc, out, _ = execute([sys.executable, *s["host"], "--out", rdir],
                                 s.get("timeout", 600), cwd=ROOT,
                                 stdout=subprocess.PIPE if s.get("ktap") else log,
                                 stderr=log, text=True)
        why = f"host: killed after its {s.get('timeout', 600)} s timeout" if rc == 124 \
            else f"host: exit status {rc}"
        if s.get("ktap"):
            with open(os.path.join(rdir, "ktap.txt"), "w") as f:
                f.write(out)
            n = parse_ktap(out, os.path.join(rdir, "parsed.txt"))
            res.update(npass=n[0], nfail=n[1], nskip=n[2], failed=n[3], skipped=n[4])
            if rc != 0 and not n[1]:
                res["nfail"] += 1
                res["failed"].append(why)
        else:
            ok = rc == 0
            res.update(npass=int(ok), nfail=int(not ok), failed=[] if ok else [why])
        res["logs"] = os.path.join(rdir, "host.log") if not s.get("ktap") else rdir + "/"
        res["dt"] = time.time() - res["t0"]
        return res
    console, output = os.path.join(rdir, "console.log"), os.path.join(rdir, "ktap.txt")
    # Everything else of a run (QMP and control sockets, disk images,
    # vhost-user sockets, the per-run initrd) is in the run directory that
    # scripts/vm makes for itself with mkdtemp: parallel guests share nothing.
    cmd = [os.path.join(ROOT, "scripts/vm"), "--flavour", args.flavour,
           "--transport", transport, "--ring", ring, "--devices", devices,
           "--drivers", s["drivers"], "--timeout", str(s.get("timeout", 600)),
           "--smp", str(vcpus(run)),
           "--log", console, "--output", output, "--quiet-runner"]
    for a in s.get("append", []):
        cmd += ["--append", a]
    cmd += s.get("vm_args", []) + variant.get("vm_args", [])
    cmd += ["--", f"sh {SELFTESTS}/{s.get('script')}{variant.get('args', '')}"]
    # scripts/vm kills a hung guest at the timeout itself; ours is a backstop.
    rc, _, err = execute(cmd, s.get("timeout", 600) + 300, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    res["dt"] = time.time() - res["t0"]
    try:
        with open(output, errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    npass, nfail, nskip, failed, skipped = parse_ktap(text, os.path.join(rdir, "parsed.txt"))
    bad = splats(console)
    if s.get("leaks"):
        # The suite leaks memory on purpose: kmemleak may say so; anything else still counts.
        bad = [line for line in bad if not KMEMLEAK.search(line)]
    if s.get("storms"):
        bad = allow_storm_reports(console, bad)
    # The run's own test: the guest finished and its console is clean.
    if rc in (0, 1) and not bad:
        npass += 1
    else:
        nfail += 1
        why = err.strip().splitlines()[-1] if rc not in (0, 1) and err.strip() \
            else f"splat in console: {bad[0][:120]}" if bad else f"guest status {rc}"
        failed.append(f"guest: {why}")
    res.update(npass=npass, nfail=nfail, nskip=nskip, failed=failed, skipped=skipped,
               logs=rdir + "/")
    return res


def main():
    ap = argparse.ArgumentParser(prog="make check")
    ap.add_argument("--suite", default="",
                    help="comma-separated suites to run (default: all but those --list marks "
                    "as not run by default)")
    ap.add_argument("--transport", default="", help="only this transport")
    ap.add_argument("--flavour", default="debug")
    ap.add_argument("--full", action="store_true",
                    help="the longer matrix: every suite, and the runs --list marks as FULL=1")
    ap.add_argument("-j", "--jobs", type=int, default=len(os.sched_getaffinity(0)),
                    help="vCPUs to keep busy, i.e. 1-vCPU guests at a time (default: the "
                    "number of CPUs)")
    ap.add_argument("--list", action="store_true", help="list the runs and exit")
    args = ap.parse_args()
    names = [s["name"] for s in SUITES]
    wanted = [s for s in args.suite.split(",") if s]
    for w in wanted:
        if w not in names:
            sys.exit(f"check: unknown suite '{w}' (valid: {', '.join(names)})")
    if args.transport and args.transport not in ("pci", "pci-legacy", "mmio", "packed"):
        sys.exit("check: unknown transport (valid: pci, pci-legacy, mmio, packed)")
    if args.jobs < 1:
        sys.exit("check: -j needs a positive number")
    runs = plan(wanted, args.transport, args.full)
    guest_budget = sum(budget(run) for run in runs if boots_guest(run))
    if args.list:
        for run in runs:
            print(describe(run))
        more = [r for r in plan(wanted, args.transport, True) if r not in runs]
        if more:
            print("FULL=1 (--full) adds:")
            for run in more:
                print(f"  {describe(run)}")
        print(f"{sum(map(boots_guest, runs))} guest runs; their budgets (ceilings, one run "
              f"each) add up to {guest_budget} min; check warns when the measured guest time "
              f"exceeds {TOTAL_BUDGET} min")
        return 0

    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(os.path.join(BUILD, "check"), exist_ok=True)
    for n in range(100):  # two checks started in the same second get two directories
        try:
            os.mkdir(os.path.join(BUILD, "check", f"{stamp}-{n}" if n else stamp))
            break
        except FileExistsError:
            continue
    stamp = f"{stamp}-{n}" if n else stamp
    outdir = os.path.join(BUILD, "check", stamp)
    latest = os.path.join(BUILD, "check", "latest")
    os.symlink(stamp, f"{latest}.{os.getpid()}")
    os.replace(f"{latest}.{os.getpid()}", latest)
    if any(map(boots_guest, runs)):
        import vm  # scripts/vm.py: probe KVM once, not in every parallel guest
        vm.kvm_works()
    print(f"check: {len(runs)} run(s), -j{args.jobs}: {args.jobs} vCPU(s) busy at a time, 1 per "
          f"guest unless the suite asks for more; logs in {outdir}", flush=True)
    total = dict(npass=0, nfail=0, nskip=0)
    failures, skips, warnings = [], [], []
    guest_time = 0.0
    start = time.time()
    # Guests with more vCPUs first, then the longest budget first, and in
    # that order strictly: a 2-vCPU guest waiting for both CPUs is not
    # overtaken by 1-vCPU guests (it would wait until they are all done and
    # then run alone), and a long run does not start last.
    pending = sorted(enumerate(runs, 1), key=lambda ir: (-vcpus(ir[1]), -budget(ir[1])))
    running = {}
    procs = Procs()
    free = args.jobs
    finished = 0

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs)
    try:
        while pending or running:
            while pending:
                item = pending[0]
                i, run = item
                cost = min(vcpus(run), args.jobs)
                if cost > free:
                    break
                s, transport, ring, _, variant = run
                tag = f"{i:02}-{s['name']}-{transport}" + (f"-{ring}" if ring else "") + \
                    (f"-{variant['tag']}" if variant.get("tag") else "")
                fut = pool.submit(run_one, run, tag, os.path.join(outdir, tag), args, procs)
                running[fut] = (tag, run, cost)
                pending.pop(0)
                free -= cost
            done, _ = concurrent.futures.wait(running,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                tag, run, cost = running.pop(fut)
                free += cost
                finished += 1
                s, transport, ring, _, variant = run
                try:
                    res = fut.result()
                except Exception as e:  # noqa: BLE001 - a harness error fails the run only
                    res = dict(npass=0, nfail=1, nskip=0, failed=[f"harness: {e!r}"],
                               skipped=[], dt=0.0, logs=os.path.join(outdir, tag))
                if boots_guest(run):
                    guest_time += res["dt"]
                for k in total:
                    total[k] += res[k]
                mark = "ok  " if not res["nfail"] else "FAIL"
                where = f"{transport}/{ring}" if ring else transport
                where += f" {variant['tag']}" if variant.get("tag") else ""
                print(f"[{finished:2}/{len(runs)}] {mark} {s['name']:12} {where:18} "
                      f"{res['npass']:4} passed, {res['nfail']} failed, {res['nskip']} skipped"
                      f"  ({res['dt']:.0f} s)", flush=True)
                for f in res["failed"]:
                    print(f"          not ok: {f}", flush=True)
                    failures.append(f"{tag}: {f}")
                skips += [f"{tag}: {n}: {why}" for n, why in res["skipped"]]
                if res["nfail"]:
                    print(f"          logs: {res['logs']}", flush=True)
                if res["dt"] > budget(run) * 60:
                    w = f"{tag} took {minutes(res['dt'])}, over the {budget(run)} min budget " \
                        f"of {s['name']}"
                    print(f"          warning: {w}", flush=True)
                    warnings.append(w)
    except KeyboardInterrupt:
        print("check: interrupted; stopping the running guests", file=sys.stderr, flush=True)
        procs.interrupt()
        pool.shutdown(wait=True, cancel_futures=True)
        return 130
    pool.shutdown()
    wall = time.time() - start
    guests = sum(map(boots_guest, runs))
    print(f"check: {len(runs)} run(s) ({guests} in guests) in {minutes(wall)} of wall time, "
          f"-j{args.jobs}; guest time {minutes(guest_time)}; logs in {outdir}")
    if guest_time > TOTAL_BUDGET * 60:
        warnings.append(f"guest time {minutes(guest_time)} is over make check's {TOTAL_BUDGET} "
                        "min budget: move runs that are not essential behind FULL=1")
    for w in warnings:  # timings are no test: warnings, not failures
        print(f"check: warning: {w}")
    for sk in skips:  # all in one place, for a long run
        print(f"check: skipped: {sk}")
    for f in failures:
        print(f"check: not ok: {f}")
    print(f"{total['npass']} passed, {total['nfail']} failed, {total['nskip']} skipped")
    return 1 if total["nfail"] else 0


if __name__ == "__main__":
    sys.exit(main())
