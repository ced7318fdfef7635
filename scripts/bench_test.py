#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tests of the bench's statistics (scripts/bench.py), on synthetic rounds.

    python3 scripts/bench_test.py [-v]     # or --ktap, as make check runs it

No guest and no timing: the Student t quantile against published values,
the 95 % interval of the Rust/C ratio against one worked by hand, each
verdict on rounds built to get it, and that summarise, print_table and
draw_svg carry the interval, the verdict and n; the scaling factors of two
devices (blk-q1, blk-q2) and their interval, worked by hand too; and the
devices' set-up (the scale devices, console, the --device names); the
guest parsers of net and console under busybox; scripts/port_server.py's
commands over a socketpair. The expected numbers are written out here, not
computed with bench.py's own functions.
"""

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import ktap_unittest  # noqa: E402
import vm  # noqa: E402

# A workload whose throughput is amount / seconds (scale 1) and whose op is
# one unit of the amount, so CPU ns per op = busy_cs * 1e7 / amount.
AMOUNT = 1_000_000


def workload(name):
    return bench.Workload(name, "-", name, "op/s", 1.0, "op", 1)


def rounds(name, c, rust, c_cpu=None, rust_cpu=None):
    """Result lines as vrs-bench reports them: round i measured C at c[i]
    op/s and then Rust at rust[i] op/s, with busy_cs ticks of CPU each."""
    out = []
    for side, values, cpu in (("c", c, c_cpu), ("rust", rust, rust_cpu)):
        for i, v in enumerate(values):
            out.append({"side": side, "round": i + 1, "workload": name, "amount": AMOUNT,
                        "seconds": AMOUNT / v, "busy_cs": cpu[i] if cpu else 100,
                        "total_cs": 200})
    return out


def drifting(logs, base=(1000, 800, 1250, 900, 1100)):
    """C drifts from round to round (the host's speed); Rust is C times
    exp(log) in the same round."""
    c = [base[i % len(base)] for i in range(len(logs))]
    return c, [x * math.exp(r) for x, r in zip(c, logs)]


def summary_of(cases):
    """cases: {name: (c, rust[, c_cpu, rust_cpu])} -> bench.summarise's list."""
    res = {"results": []}
    for name, args in cases.items():
        res["results"] += rounds(name, *args)
    return bench.summarise([workload(n) for n in cases], res)


# ln(Rust/C) per round, built for each verdict (n = 5, t_{0.975,4} = 2.776).
LOGS = {
    "parity": [0.02, -0.01, 0.03, 0.00, 0.01],       # mean 0.01, +/- 2.0 %
    "faster": [0.10, 0.12, 0.08, 0.11, 0.09],        # all of it above 1
    "slower": [-0.10, -0.12, -0.08, -0.11, -0.09],   # all of it below 1
    "undecided": [0.2, -0.2, 0.1, -0.1, 0.0],        # contains 1, +/- 15 %
}


class TQuantileTest(unittest.TestCase):
    def test_published_values(self):
        """t_{0.975, df} as printed in every t table."""
        for df, t in ((1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (14, 2.145),
                      (29, 2.045), (120, 1.980)):
            with self.subTest(df=df):
                self.assertAlmostEqual(bench.t_quantile(0.975, df), t, places=3)

    def test_closed_forms(self):
        """df 1 (Cauchy: tan(pi (p - 1/2))) and df 2 ((2p - 1) / sqrt(2 p (1 - p))),
        to 9 digits."""
        self.assertAlmostEqual(bench.t_quantile(0.975, 1), 12.706204736, places=8)
        self.assertAlmostEqual(bench.t_quantile(0.975, 2), 4.302652730, places=8)
        self.assertAlmostEqual(bench.t_quantile(0.9, 1), math.tan(math.pi * 0.4), places=8)

    def test_symmetry_and_cdf(self):
        self.assertAlmostEqual(bench.t_quantile(0.025, 4), -2.776445105, places=8)
        self.assertAlmostEqual(bench.t_quantile(0.5, 7), 0.0, places=9)
        self.assertAlmostEqual(bench.t_cdf(2.776445105, 4), 0.975, places=9)
        self.assertAlmostEqual(bench.t_cdf(-12.706204736, 1), 0.025, places=9)

    def test_bad_arguments(self):
        for p, df in ((0.0, 4), (1.0, 4), (0.975, 0)):
            with self.subTest(p=p, df=df), self.assertRaises(ValueError):
                bench.t_quantile(p, df)


class IntervalTest(unittest.TestCase):
    def test_worked_example(self):
        """LOGS["parity"] by hand: mean m = 0.01; squared deviations
        1e-4 + 4e-4 + 4e-4 + 1e-4 + 0 = 1e-3, s = sqrt(1e-3 / 4) = 0.0158114;
        h = 2.7764451 * 0.0158114 / sqrt(5) = 0.0196324; so the ratio is
        exp(0.01) = 1.0100502 in [exp(m - h), exp(m + h)] = [0.9904138,
        1.0300758], half-width exp(h) - 1 = 0.0198264 (z = 1.96 instead of t
        would give [0.99615, 1.02415])."""
        c, rust = drifting(LOGS["parity"])
        ci = bench.ratio_interval(list(zip(c, rust)))
        self.assertEqual(ci["n"], 5)
        self.assertAlmostEqual(ci["geomean"], 1.0100502, places=6)
        self.assertAlmostEqual(ci["ci95"][0], 0.9904138, places=6)
        self.assertAlmostEqual(ci["ci95"][1], 1.0300758, places=6)
        self.assertAlmostEqual(ci["halfwidth"], 0.0198264, places=6)

    def test_pairs_are_rounds(self):
        """The same values paired otherwise (each Rust with the next round's
        C) give another interval: the pairing is what the interval is about."""
        c, rust = drifting(LOGS["parity"])
        paired = bench.ratio_interval(list(zip(c, rust)))["ci95"]
        shifted = bench.ratio_interval(list(zip(c[1:] + c[:1], rust)))["ci95"]
        self.assertNotAlmostEqual(paired[0], shifted[0], places=3)
        # And summarise pairs by round number, whatever order the lines came in.
        res = {"results": rounds("w", c, rust)[::-1]}
        (e,) = bench.summarise([workload("w")], res)
        self.assertAlmostEqual(e["ratio_ci95"][0], 0.9904138, places=6)

    def test_halfwidth_is_on_the_ratio_scale(self):
        """max(hi / geomean, geomean / lo) - 1, for a wide interval too."""
        c, rust = drifting(LOGS["undecided"])
        ci = bench.ratio_interval(list(zip(c, rust)))
        lo, hi = ci["ci95"]
        self.assertAlmostEqual(ci["halfwidth"], max(hi / ci["geomean"], ci["geomean"] / lo) - 1)
        # mean 0, s = sqrt(0.1 / 4) = 0.1581139, h = 2.7764451 * s / sqrt(5) = 0.1963243
        self.assertAlmostEqual(ci["geomean"], 1.0, places=9)
        self.assertAlmostEqual(ci["halfwidth"], math.exp(0.1963243) - 1, places=6)

    def test_fewer_than_two_pairs(self):
        self.assertEqual(bench.ratio_interval([(100, 110)]),
                         {"n": 1, "geomean": 1.1, "ci95": None, "halfwidth": None})
        self.assertEqual(bench.ratio_interval([])["n"], 0)

    def test_non_positive_pairs_left_out(self):
        """A round where a side measured nothing (0, or no CPU figure) is no pair."""
        ci = bench.ratio_interval([(100, 110), (0, 50), (100, None), (100, 120)])
        self.assertEqual(ci["n"], 2)
        self.assertAlmostEqual(ci["geomean"], math.sqrt(1.1 * 1.2))


class VerdictTest(unittest.TestCase):
    def test_each_verdict_from_rounds(self):
        s = {e["workload"]: e for e in summary_of(
            {k: drifting(v) for k, v in LOGS.items()}
            | {"n/a": ([1000], [1010]), "c-only": ([1000, 900, 1100], [])})}
        for name, want in (("parity", "parity"), ("faster", "faster"), ("slower", "slower"),
                           ("undecided", "undecided"), ("n/a", "n/a"), ("c-only", "n/a")):
            with self.subTest(workload=name):
                self.assertEqual(s[name]["verdict"], want)
        self.assertEqual(s["n/a"]["paired_rounds"], 1)
        self.assertEqual(s["c-only"]["paired_rounds"], 0)
        self.assertIsNone(s["c-only"]["ratio_ci95"])

    def test_parity_rule(self):
        """Parity: contains 1.00 and half-width <= 5 %; wider is undecided."""
        self.assertEqual(bench.verdict([0.96, 1.04], 0.04), "parity")
        self.assertEqual(bench.verdict([0.9524, 1.05], 0.05), "parity")
        self.assertEqual(bench.verdict([0.95, 1.06], 0.06), "undecided")
        self.assertEqual(bench.verdict([0.5, 2.0], 1.0), "undecided")
        self.assertEqual(bench.verdict([1.0, 1.02], 0.01), "parity")
        self.assertEqual(bench.verdict([1.001, 1.3], 0.14), "faster")
        self.assertEqual(bench.verdict([0.7, 0.999], 0.19), "slower")
        self.assertEqual(bench.verdict(None, None), "n/a")

    def test_lower_is_better(self):
        """For CPU per op, Rust/C above 1 is worse."""
        self.assertEqual(bench.verdict([1.01, 1.2], 0.09, False, "cpu"), "more CPU")
        self.assertEqual(bench.verdict([0.8, 0.99], 0.11, False, "cpu"), "less CPU")
        self.assertEqual(bench.verdict([0.99, 1.01], 0.01, False, "cpu"), "parity")
        self.assertEqual(bench.verdict([0.8, 1.2], 0.2, False, "cpu"), "undecided")

    def test_cpu_verdicts_from_rounds(self):
        c, rust = drifting(LOGS["parity"])
        s = summary_of({"more": (c, rust, [100] * 5, [110, 112, 108, 111, 109]),
                        "less": (c, rust, [100] * 5, [80, 82, 79, 81, 80])})
        self.assertEqual([e["cpu_verdict"] for e in s], ["more CPU", "less CPU"])
        self.assertEqual([e["verdict"] for e in s], ["parity", "parity"])


class SummaryTest(unittest.TestCase):
    FIELDS = ("paired_rounds", "ratio_geomean", "ratio_ci95", "ratio_halfwidth", "verdict")

    def test_json_fields(self):
        c, rust = drifting(LOGS["parity"])
        cpu = [100, 101, 99, 100, 100]
        (e,) = summary_of({"w": (c, rust, cpu, [110, 112, 108, 111, 109])})
        for k in self.FIELDS:
            with self.subTest(field=k):
                self.assertIn(k, e)
                self.assertIn("cpu_" + k, e)
        self.assertEqual(e["paired_rounds"], 5)
        self.assertEqual(e["cpu_paired_rounds"], 5)
        self.assertEqual(len(e["ratio_ci95"]), 2)
        self.assertAlmostEqual(e["ratio_geomean"], 1.0100502, places=6)
        self.assertAlmostEqual(e["ratio_ci95"][0], 0.9904138, places=6)
        self.assertEqual(e["verdict"], "parity")
        self.assertEqual(e["cpu_verdict"], "more CPU")
        # What main() writes: it must survive JSON as the same values.
        back = json.loads(json.dumps(e))
        self.assertEqual(back["ratio_ci95"], e["ratio_ci95"])
        self.assertEqual(back["cpu_verdict"], "more CPU")

    def test_irqs_per_op(self):
        # AMOUNT ops per measurement (workload op_amount 1): irqs / AMOUNT, medians.
        res = {"results": rounds("w", [1000, 1000, 1000], [900, 900, 900])}
        for r, n in zip(res["results"], (10, 20, 30, 40, 50, None)):
            r["irqs"] = None if n is None else n * AMOUNT // 10
        (e,) = bench.summarise([workload("w")], res)
        self.assertAlmostEqual(e["c"]["irqs_per_op_median"], 2.0)
        # A result line without irqs= (an older guest) is left out, not counted as 0.
        self.assertAlmostEqual(e["rust"]["irqs_per_op_median"], 4.5)
        (e,) = summary_of({"w": ([1000, 1000], [900, 900])})
        self.assertIsNone(e["c"]["irqs_per_op_median"])

    def test_device_counts_and_line(self):
        s = summary_of({k: drifting(v) for k, v in LOGS.items()} | {"n/a": ([1000], [1010])})
        counts = bench.verdict_counts(s)
        self.assertEqual(counts["workloads"], 5)
        self.assertEqual(counts["throughput"], {"parity": 1, "faster": 1, "slower": 1,
                                                "undecided": 1, "n/a": 1})
        self.assertEqual(counts["throughput_paired_rounds"], [1, 5])
        self.assertEqual(bench.verdict_line("blk", s).split(";")[0],
                         "blk: 5 workloads, n=1-5 paired rounds: 1 at parity, 1 faster, "
                         "1 slower, 1 undecided, 1 n/a")


class ScalingTest(unittest.TestCase):
    # ln(Rust/C) per round in the base device (mean 0, s^2 = 4e-4) and in the
    # scaled one (mean -0.05, s^2 = 4e-4): Rust gains about 5 % less.
    BASE = [0.00, 0.02, -0.02]
    SCALED = [-0.05, -0.03, -0.07]

    def test_worked_example(self):
        """By hand: the estimate is exp(-0.05 - 0) = 0.9512294; each mean's
        variance is 4e-4 / 3, so se = sqrt(8e-4 / 3) = 0.0163299 and the
        Welch-Satterthwaite df = (8e-4/3)^2 / (2 (4e-4/3)^2 / 2) = 4 exactly;
        h = 2.7764451 * se = 0.0453392, so the interval is [exp(-0.05 - h),
        exp(-0.05 + h)] = [0.9090646, 0.9953500], half-width exp(h) - 1 =
        0.0463827: wholly below 1, Rust scales worse."""
        ci = bench.difference_interval(self.BASE, self.SCALED)
        self.assertEqual(ci["n"], [3, 3])
        self.assertAlmostEqual(ci["geomean"], 0.9512294, places=6)
        self.assertAlmostEqual(ci["ci95"][0], 0.9090646, places=6)
        self.assertAlmostEqual(ci["ci95"][1], 0.9953500, places=6)
        self.assertAlmostEqual(ci["halfwidth"], 0.0463827, places=6)
        self.assertEqual(bench.verdict(ci["ci95"], ci["halfwidth"], True, "scaling"),
                         "scales worse")

    def test_too_few_rounds(self):
        self.assertEqual(bench.difference_interval([0.1], [0.3])["ci95"], None)
        self.assertAlmostEqual(bench.difference_interval([0.1], [0.3])["geomean"], math.exp(0.2))
        self.assertEqual(bench.difference_interval([], [0.3, 0.2])["geomean"], None)
        # No spread at all: the interval is the point.
        self.assertEqual(bench.difference_interval([0.1, 0.1], [0.1, 0.1])["ci95"], [1.0, 1.0])

    def summaries(self):
        """blk-q1: C 1000 op/s every round; blk-q2: C 1800 (a factor of 1.8);
        Rust is C times exp(BASE) and exp(SCALED): medians 1000 and 1800 *
        exp(-0.05) = 1712.2130, a factor of 1.7122130."""
        q1 = summary_of({"w": ([1000] * 3, [1000 * math.exp(x) for x in self.BASE]),
                         "only-q1": ([1000] * 3, [1000] * 3)})
        q2 = summary_of({"w": ([1800] * 3, [1800 * math.exp(x) for x in self.SCALED]),
                         "c-only": ([1000] * 3, [])})
        return q1, q2

    def test_factors(self):
        q1, q2 = self.summaries()
        (e,) = bench.scaling(q1, q2)  # only "w" is in both
        self.assertEqual(e["workload"], "w")
        self.assertAlmostEqual(e["c"]["base"], 1000)
        self.assertAlmostEqual(e["c"]["scaled"], 1800)
        self.assertAlmostEqual(e["c"]["factor"], 1.8)
        self.assertAlmostEqual(e["rust"]["base"], 1000)
        self.assertAlmostEqual(e["rust"]["scaled"], 1712.2130, places=3)
        self.assertAlmostEqual(e["rust"]["factor"], 1.7122130, places=6)
        self.assertAlmostEqual(e["rust_c"], 0.9512294, places=6)
        self.assertEqual(e["paired_rounds"], [3, 3])
        self.assertAlmostEqual(e["ratio_ci95"][0], 0.9090646, places=6)
        self.assertEqual(e["verdict"], "scales worse")
        back = json.loads(json.dumps(e))
        self.assertEqual(back["rust_c"], e["rust_c"])

    def test_no_rust(self):
        q1 = summary_of({"w": ([1000] * 3, [])})
        q2 = summary_of({"w": ([1800] * 3, [])})
        (e,) = bench.scaling(q1, q2)
        self.assertAlmostEqual(e["c"]["factor"], 1.8)
        self.assertIsNone(e["rust"])
        self.assertIsNone(e["rust_c"])
        self.assertEqual(e["verdict"], "n/a")

    def test_table(self):
        q1, q2 = self.summaries()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            bench.print_scaling("blk-queues", bench.SCALINGS["blk-queues"],
                                bench.scaling(q1, q2))
        lines = out.getvalue().splitlines()
        self.assertIn("C blk-q1", next(line for line in lines if "C factor" in line))
        row = next(line for line in lines if line.split()[:1] == ["w"])
        for want in ("1.800", "1.712", "0.951", "3, 3", "[0.909, 0.995]", "4.6 %",
                     "scales worse"):
            with self.subTest(want=want):
                self.assertIn(want, row)
        self.assertEqual(lines[-1].strip(), "scaling blk-queues: w: factor C 1.800, Rust 1.712, "
                         "Rust/C 0.951 (scales worse)")


class DevicesTest(unittest.TestCase):
    def test_blk_workloads_unchanged(self):
        """The scale devices' fifth ARG field leaves blk's ten workloads as they were."""
        self.assertEqual([(w.name, w.arg) for w in bench.DEVICES["blk"].workloads],
                         [(f"{b}-{rw}-{bs}-qd{qd}", f"{b}:{rw}:{bs}:{qd}")
                          for b in ("null", "file")
                          for rw, bs, qd in (("randread", "4k", 1), ("randread", "4k", 32),
                                             ("randwrite", "4k", 32), ("read", "128k", 8),
                                             ("write", "128k", 8))])

    def test_queue_devices(self):
        for n in (1, 2):
            dev = bench.DEVICES[f"blk-q{n}"]
            with self.subTest(device=dev.vm_devices):
                (w,) = dev.workloads
                self.assertEqual((w.name, w.arg, w.unit), ("null-randread-4k-qd32-j2",
                                                            "null:randread:4k:32:2", "IOPS"))
                self.assertEqual(dev.smoke, w.name)
                self.assertIn(f"blk=num-queues={n}", dev.vm_args)
                # bench.py's own --smp comes first; scripts/vm takes the last.
                self.assertEqual(bench.vm_smp(dev.vm_args, 1), 2)
                self.assertEqual(bench.guest_scripts(f"blk-q{n}", dev),
                                 ["vrs-bench-blk-q", "vrs-bench-blk"])
        self.assertEqual(bench.vm_smp(["--smp", "2", "--smp=3"], 1), 3)
        self.assertEqual(bench.vm_smp([], 1), 1)

    def test_probe_device(self):
        dev = bench.DEVICES["blk-probe"]
        devs = vm.parse_devices(dev.vm_devices)
        self.assertEqual(len(devs), 64)
        self.assertEqual(len(set(devs)), 64)
        (w,) = dev.workloads
        self.assertEqual((w.arg, w.unit, w.op_amount), ("64", "disks/s", 1))
        self.assertIn("--disk-size", dev.vm_args)

    def test_net_device(self):
        """Two NICs on taps with vnet headers; TCP 1 and 4 streams in Mbit/s with CPU per
        byte, UDP 64 B in datagrams/s with CPU per datagram, ping-pong in round trips/s."""
        dev = bench.DEVICES["net"]
        self.assertEqual(vm.parse_devices(dev.vm_devices), ["net", "net1"])
        self.assertEqual((dev.virtio_id, dev.c_module, dev.rust_module),
                         (1, "virtio_net", "virtio_net_rs"))
        self.assertEqual(dev.vm_args, ["--net-backend", "tap"])
        self.assertEqual([(w.name, w.arg, w.unit, w.op, w.op_amount) for w in dev.workloads],
                         [("tcp-1", "tcp:1", "Mbit/s", "B", 1), ("tcp-4", "tcp:4", "Mbit/s", "B", 1),
                          ("udp-64", "udp:64", "pkt/s", "pkt", 1), ("rr-64", "rr:64", "RT/s", "RT", 1)])
        # 1.25e8 bytes in 2 s are 500 Mbit/s.
        self.assertAlmostEqual(1.25e8 / 2 * dev.workloads[0].scale, 500.0)
        self.assertIn(dev.smoke, [w.name for w in dev.workloads])
        self.assertEqual(bench.guest_scripts("net", dev), ["vrs-bench-net"])

    def test_device_seconds(self):
        """--seconds, else the device's own default, else 2; --smoke caps it at 0.3."""
        def secs(dev, seconds=None, smoke=False):
            return bench.device_seconds(bench.DEVICES[dev], argparse.Namespace(
                seconds=seconds, smoke=smoke))
        self.assertEqual(secs("net"), 6)
        self.assertEqual(secs("blk"), 2)
        self.assertEqual(secs("net", 3.0), 3.0)
        self.assertEqual(secs("blk", 3.0), 3.0)
        self.assertEqual(secs("net", smoke=True), 0.3)
        self.assertEqual(secs("rng", 0.1, smoke=True), 0.1)

    def test_console_device(self):
        """One virtio-serial device with its named port; guest -> host and host -> guest
        at 4 and 64 KiB per system call in MiB/s with CPU per byte, ping-pong 1 and 64 B
        in round trips/s with the mean round trip; vrs-vport built from its source."""
        dev = bench.DEVICES["console"]
        self.assertEqual(vm.parse_devices(dev.vm_devices), ["console"])
        self.assertEqual((dev.virtio_id, dev.c_module, dev.rust_module),
                         (3, "virtio_console", "virtio_console_rs"))
        self.assertEqual([(w.name, w.arg, w.unit, w.op, w.op_amount, w.per_op_us)
                          for w in dev.workloads],
                         [("g2h-4k", "write:4096", "MiB/s", "B", 1, ""),
                          ("g2h-64k", "write:65536", "MiB/s", "B", 1, ""),
                          ("h2g-4k", "read:4096", "MiB/s", "B", 1, ""),
                          ("h2g-64k", "read:65536", "MiB/s", "B", 1, ""),
                          ("rr-1", "pingpong:1", "RT/s", "RT", 1, "mean round trip"),
                          ("rr-64", "pingpong:64", "RT/s", "RT", 1, "mean round trip")])
        # 3 MiB in 2 s are 1.5 MiB/s.
        self.assertAlmostEqual(3 * (1 << 20) / 2 * dev.workloads[0].scale, 1.5)
        self.assertIn(dev.smoke, [w.name for w in dev.workloads])
        self.assertEqual(bench.guest_scripts("console", dev), ["vrs-bench-console"])
        self.assertEqual(dev.guest_progs, ["vrs-vport"])
        self.assertTrue(os.path.exists(os.path.join(bench.GUEST_DIR, "vrs-vport.c")))
        self.assertTrue(dev.in_all and dev.in_smoke)
        self.assertIsNone(dev.table_note({"info": {}}))
        for busy, word in (("0.040", "not what limits"), ("0.900", "WARNING")):
            note = dev.table_note({"info": {"host_side_busy": busy}})
            self.assertIn(word, note)

    def test_device_names(self):
        self.assertEqual(bench.device_names("all"), ["rng", "blk", "net", "console"])
        # make check's bench-smoke: not net, whose smoke run takes minutes on debug.
        self.assertEqual(bench.device_names("all", smoke=True), ["rng", "blk", "console"])
        self.assertEqual(bench.device_names("net", smoke=True), ["net"])
        self.assertEqual(bench.device_names("scale"), ["blk-q1", "blk-q2", "blk-probe"])
        self.assertEqual(bench.device_names("blk-q1, blk-q2,blk-q1"), ["blk-q1", "blk-q2"])
        for spec in bench.SCALINGS.values():
            self.assertIn(spec["base"], bench.DEVICE_GROUPS["scale"])
            self.assertIn(spec["scaled"], bench.DEVICE_GROUPS["scale"])

    def test_root_ports(self):
        """scripts/vm's PCIe root ports: one per slot while the devices fit
        (00:01.0 ... 00:1e.0, what the selftests' lib.sh reads), then eight per
        slot; always in --devices order, each address once; 240 at most."""
        self.assertEqual(vm.root_port_addrs(3), [(1, 0), (2, 0), (3, 0)])
        self.assertEqual(vm.root_port_addrs(30)[-1], (0x1e, 0))
        addrs = vm.root_port_addrs(64)
        self.assertEqual(addrs[:9], [(1, f) for f in range(8)] + [(2, 0)])
        self.assertEqual(addrs[-1], (8, 7))
        self.assertEqual(addrs, sorted(set(addrs)))
        self.assertEqual(len(vm.root_port_addrs(240)), 240)
        with self.assertRaises(ValueError):
            vm.root_port_addrs(241)
        args = vm.root_port_args(8, (2, 0), True) + vm.root_port_args(9, (2, 1), True)
        self.assertEqual(args, ["-device", "pcie-root-port,id=rp8,chassis=9,slot=9,bus=pcie.0,"
                                "addr=0x02.0,multifunction=on",
                                "-device", "pcie-root-port,id=rp9,chassis=10,slot=10,bus=pcie.0,"
                                "addr=0x02.1"])


TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "bench-net")
NET_GUEST = os.path.join(bench.GUEST_DIR, "vrs-bench-net")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


@unittest.skipUnless(os.path.exists(BUSYBOX), "busybox is not installed (scripts/deps.sh)")
class NetParseTest(unittest.TestCase):
    """bench/guest/vrs-bench-net's parsers, run as the guest runs them (busybox sh and
    busybox awk), on outputs of the guest image's iperf3 3.12 and sockperf 3.7 captured in
    scripts/testdata/bench-net (over the host's loopback: the format is the same)."""

    def setUp(self):
        # Only busybox's applets on PATH, as in the guest.
        self.bin = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.bin)
        for applet in ("awk", "tail", "sed", "head", "tr", "ls"):
            os.symlink(BUSYBOX, os.path.join(self.bin, applet))

    def run_guest(self, func, *args):
        """FUNC ARGS... from vrs-bench-net: (exit status, stdout, stderr)."""
        script = f'. "{NET_GUEST}"; {func} "$@"'
        r = subprocess.run([BUSYBOX, "sh", "-c", script, "sh", *args], capture_output=True,
                           text=True, env={"PATH": self.bin}, timeout=30)
        return r.returncode, r.stdout, r.stderr

    def data(self, name):
        return os.path.join(TESTDATA, name)

    def test_tcp(self):
        """end.sum_received: its bytes and seconds (not sum_sent's, nor a stream's)."""
        self.assertEqual(self.run_guest("net_iperf_result", "tcp", self.data("iperf3-tcp-4.json")),
                         (0, "2165309440 1.007923\n", ""))

    def test_udp(self):
        """The datagrams the server received: its packets less its lost_packets
        (277730 - 194720), not the sender's count."""
        self.assertEqual(self.run_guest("net_iperf_result", "udp", self.data("iperf3-udp-64.json")),
                         (0, "83010 1.000095\n", ""))

    def test_iperf3_error(self):
        rc, out, err = self.run_guest("net_iperf_result", "tcp", self.data("iperf3-refused.json"))
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("unable to connect to server: Connection refused", err)

    def test_iperf3_cut_short(self):
        """A client killed before its "end" (the watchdog, a crash): no result."""
        with open(self.data("iperf3-tcp-4.json")) as f:
            text = f.read()
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write(text[:text.index('\t"end":')])
            f.flush()
            rc, out, err = self.run_guest("net_iperf_result", "tcp", f.name)
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("no iperf3 result", err)

    def test_sockperf(self):
        """The whole run ("[Total Run]"), not the "[Valid Duration]" without the warm-up."""
        self.assertEqual(self.run_guest("net_sockperf_result", self.data("sockperf-ping-pong.txt")),
                         (0, "173089 1.000\n", ""))

    def test_sockperf_failed(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write("sockperf: ERROR: Message received was larger than expected, message ignored.\n"
                    "sockperf: [Total Run] RunTime=1.000 sec; Warm up time=400 msec; "
                    "SentMessages=5; ReceivedMessages=0\n")
            f.flush()
            rc, out, err = self.run_guest("net_sockperf_result", f.name)
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("no sockperf result", err)

    def test_dev_result(self):
        """dev_result picks the parser by the workload's kind; a failure shows the output."""
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out")
            for arg, data, want in (("tcp:1", "iperf3-tcp-4.json", "2165309440 1.007923\n"),
                                    ("udp:64", "iperf3-udp-64.json", "83010 1.000095\n"),
                                    ("rr:64", "sockperf-ping-pong.txt", "173089 1.000\n")):
                with self.subTest(arg=arg):
                    shutil.copy(self.data(data), out)
                    self.assertEqual(self.run_guest(f'NET_OUT="{out}"; dev_result', arg, "6"),
                                     (0, want, ""))
            shutil.copy(self.data("iperf3-refused.json"), out)
            rc, res, err = self.run_guest(f'NET_OUT="{out}"; dev_result', "tcp:4", "6")
            self.assertEqual((rc, res), (1, ""))
            self.assertIn('"error":', err)


CONSOLE_GUEST = os.path.join(bench.GUEST_DIR, "vrs-bench-console")


@unittest.skipUnless(os.path.exists(BUSYBOX), "busybox is not installed (scripts/deps.sh)")
class ConsoleGuestTest(unittest.TestCase):
    """bench/guest/vrs-bench-console's result check and calibration, with busybox as in
    the guest and a stand-in for vrs-vport that reports a fixed speed."""

    def run_guest(self, script, *args):
        with tempfile.TemporaryDirectory() as d:
            for applet in ("awk", "tail", "sed", "cat"):
                os.symlink(BUSYBOX, os.path.join(d, applet))
            # vrs-vport at 100e6 B/s, or 5000 round trips/s: "AMOUNT SECONDS".
            fake = os.path.join(d, "vrs-vport")
            with open(fake, "w") as f:
                f.write(f"#!{BUSYBOX} sh\n"
                        'awk -v k="$2" -v n="$4" \'BEGIN { printf "%d %.6f\\n", n, '
                        '(k == "pingpong") ? n / 5000 : n / 100e6 }\'\n')
            os.chmod(fake, 0o755)
            out = os.path.join(d, "out")
            r = subprocess.run([BUSYBOX, "sh", "-c", f'. "{CONSOLE_GUEST}"; VPORT="{fake}"; '
                                f'CON_OUT="{out}"; CON_DEV=/dev/null; {script}', "sh", *args],
                               capture_output=True, text=True, env={"PATH": d}, timeout=30)
            return r.returncode, r.stdout, r.stderr

    def test_calibrate(self):
        """The size that lasts SECONDS at the stand-in's speed: a multiple of the write
        size for the streams, round trips for ping-pong."""
        for arg, want in (("write:4096", 2e8), ("read:65536", 2e8), ("pingpong:64", 10000)):
            with self.subTest(arg=arg):
                rc, out, err = self.run_guest('dev_calibrate "$1" 2', arg)
                self.assertEqual(rc, 0, err)
                n = int(out)
                q = 1 if arg.startswith("pingpong") else int(arg.split(":")[1])
                self.assertEqual(n % q, 0)
                self.assertLess(abs(n - want), want * 0.01 + q)

    def test_result(self):
        """dev_result passes vrs-vport's line when it moved all of SIZE, else fails
        and shows the output."""
        rc, out, err = self.run_guest('dev_run write:4096 8192 && dev_result write:4096 8192')
        self.assertEqual((rc, out), (0, "8192 0.000082\n"))
        rc, out, err = self.run_guest('echo "4096 0.1" >"$CON_OUT"; dev_result write:4096 8192')
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("4096 0.1", err)
        rc, out, err = self.run_guest('echo "vrs-vport: read: x" >"$CON_OUT"; '
                                      'dev_result read:4096 8192')
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("vrs-vport: read: x", err)


class PortServerTest(unittest.TestCase):
    """scripts/port_server.py's commands, over a socketpair: what the guest's vrs-vport
    writes and expects."""

    def setUp(self):
        import port_server
        import threading
        self.a, b = socket.socketpair()
        self.addCleanup(self.a.close)
        self.addCleanup(b.close)
        self.port = port_server.Port(b, buf=4096)
        self.error = []

        def serve():
            try:
                self.port.serve()
            except ValueError as e:
                self.error.append(str(e))
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        self.a.settimeout(10)

    def recv(self, n):
        got = b""
        while len(got) < n:
            k = self.a.recv(n - len(got))
            self.assertTrue(k, f"end of file after {len(got)} of {n} bytes")
            got += k
        return got

    def end(self):
        self.a.shutdown(socket.SHUT_WR)
        self.thread.join(10)
        self.assertFalse(self.thread.is_alive())

    def test_commands(self):
        # The command and the data in one send, the data larger than the buffer.
        self.a.sendall(b"sink 10000\n" + b"x" * 10000)
        self.assertEqual(self.recv(9), b"ok 10000\n")
        self.a.sendall(b"source 9000\n")
        self.assertEqual(self.recv(9000), bytes(9000))
        self.a.sendall(b"echo 6\nabc")
        self.assertEqual(self.recv(3), b"abc")
        self.a.sendall(b"def")
        self.assertEqual(self.recv(3), b"def")
        self.a.sendall(b"stats 0\n")
        line = b""
        while not line.endswith(b"\n"):
            line += self.recv(1)
        words = dict(w.split("=") for w in line.decode().split()[1:])
        self.assertTrue(line.startswith(b"ok "))
        self.assertEqual(words["commands"], "3")
        self.assertGreaterEqual(float(words["busy"]), 0)
        self.end()
        self.assertEqual(self.error, [])

    def test_bad_command(self):
        self.a.sendall(b"flood 5\n")
        self.assertTrue(self.recv(6).startswith(b"error:"))
        self.thread.join(10)
        self.assertEqual(len(self.error), 1)


META = {"accelerator": "TCG", "qemu": "QEMU emulator version 7.2.11", "host_cpu": "test",
        "host_cpus": 2, "commit": "0123456789abcdef", "dirty": False,
        "date": "2025-01-01T00:00:00Z"}
RES = {"drivers": {"c": {"status": "ok"}, "rust": {"status": "ok"}}, "backend": "synthetic",
       "info": {"guest_kernel": "6.12"}}


class OutputTest(unittest.TestCase):
    def summary(self, n=5):
        return summary_of({f"w-{k}": drifting(v[:n]) for k, v in LOGS.items()})

    def test_table(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            bench.print_table("blk", None, self.summary(), RES, META,
                              {"rounds": 5, "flavour": "release", "smp": 1})
        text = out.getvalue()
        # The existing columns stay; the intervals follow, one row per workload.
        self.assertIn("Rust/C  paired", text)
        header = next(line for line in text.splitlines() if "95 % interval" in line
                      and "verdict" in line).split()
        self.assertEqual(header[:3], ["workload", "n", "geomean"])
        row = next(line for line in text.splitlines()
                   if line.split()[:2] == ["w-parity", "5"])
        self.assertIn("1.010", row)
        self.assertIn("[0.990, 1.030]", row)
        self.assertIn("2.0 %", row)
        self.assertEqual(text.splitlines()[-1].strip(),
                         "blk: 4 workloads, n=5 paired rounds: 1 at parity, 1 faster, 1 slower, "
                         "1 undecided; CPU per op: 4 at parity")

    def test_per_op_us(self):
        """A ping-pong workload: the table also shows 1e6 / the median, in us."""
        w = bench.Workload("rr", "-", "ping-pong", "RT/s", 1.0, "RT", 1, per_op_us="mean round trip")
        res = {"results": rounds("rr", [1000, 1000, 1000], [800, 800, 800])}
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            bench.print_table("net", None, bench.summarise([w], res), RES, META,
                              {"rounds": 3, "flavour": "release", "smp": 1})
        self.assertIn("ping-pong: mean round trip (1 / the median): C 1000 us, Rust 1250 us",
                      out.getvalue())
        # Workloads without it: no such line.
        self.assertNotIn("(1 / the median)", self.table_text())

    def table_text(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            bench.print_table("blk", None, self.summary(), RES, META,
                              {"rounds": 5, "flavour": "release", "smp": 1})
        return out.getvalue()

    @unittest.skipUnless(shutil.which("gnuplot"), "gnuplot is not installed (scripts/deps.sh)")
    def test_svg(self):
        """With intervals the chart has the ratio panel and the verdicts;
        with one round (the smoke test) it has neither and still draws."""
        settings = {"rounds": 5, "flavour": "release", "smp": 1}
        with tempfile.TemporaryDirectory() as d:
            for n, want in ((5, True), (1, False)):
                with self.subTest(rounds=n):
                    path = os.path.join(d, f"bench-{n}.svg")
                    self.assertTrue(bench.draw_svg(path, "blk", self.summary(n), META, settings))
                    with open(path) as f:
                        svg = f.read()
                    self.assertEqual("95 % interval and verdict" in svg, want)
                    self.assertEqual("CPU: parity" in svg, want)
                    self.assertEqual(">undecided</tspan>" in svg, want)


if __name__ == "__main__":
    ktap_unittest.main()
