#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tests of the kernel splat scanner (scripts/splat.py), on real console lines.

    python3 scripts/splat_test.py [-v]     # or --ktap, as make check runs it

Every line below is what a 6.12 debug kernel prints (the format strings
are in the kernel source named next to each group). Each splat line must
be caught on its own, and no boot banner of a clean debug boot may be.
"""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap_unittest  # noqa: E402
import splat  # noqa: E402

SPLATS = {
    # lib/bug.c, arch/x86/mm/fault.c, arch/x86/kernel/dumpstack.c, kernel/panic.c
    "bug": [
        "[   41.071264] BUG: kernel NULL pointer dereference, address: 0000000000000008",
        "[   41.071980] BUG: unable to handle page fault for address: ffffc90000123000",
        "[   12.001234] kernel BUG at drivers/virtio/virtio_ring.c:2385!",
        "[   41.072310] Oops: general protection fault, probably for non-canonical address "
        "0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN NOPTI",
        "[   41.072310] Oops: Oops: 0002 [#1] PREEMPT SMP KASAN NOPTI",
        "[   41.080000] Kernel panic - not syncing: Fatal exception in interrupt",
        "[   41.072400] Call Trace:",
        "[   25.404040] BUG: spinlock bad magic on CPU#0, swapper/0/1",
    ],
    # kernel/panic.c (__warn)
    "warning": [
        "[   15.123456] WARNING: CPU: 0 PID: 97 at drivers/virtio/virtio_ring.c:2204 "
        "virtqueue_add_split+0x7d5/0x1040",
        "[   15.123456] WARNING: CPU: 1 PID: 0 at rust/kernel/virtio/virtqueue.rs:311 "
        "_RNvXs_NtNtCs1234_6kernel6virtio9virtqueue+0x4f/0x90 [virtio_rng_rs]",
    ],
    # mm/kasan/report.c, lib/ubsan.c
    "kasan": [
        "[   18.901234] BUG: KASAN: slab-use-after-free in virtqueue_get_buf_ctx_split+0x1e3/0x6c0",
        "[   18.901234] BUG: KASAN: slab-out-of-bounds in virtio_rng_rs::Rng::read+0x2a/0x120",
        "[    9.000001] UBSAN: array-index-out-of-bounds in drivers/virtio/virtio_input.c:58:21",
    ],
    # kernel/locking/lockdep.c
    "lockdep": [
        "[   25.404040] WARNING: possible circular locking dependency detected",
        "[   25.404040] WARNING: possible recursive locking detected",
        "[   25.404040] WARNING: inconsistent lock state",
        "[   25.404040] WARNING: bad unlock balance detected!",
        "[   25.404040] DEBUG_LOCKS_WARN_ON(1)",
        "[   25.404040] BUG: Invalid wait context",
        "[   25.404040] WARNING: possible irq lock inversion dependency detected",
        "[   25.404040] WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
        "[   25.404040] BUG: MAX_LOCKDEP_ENTRIES too low!",
    ],
    # mm/kmemleak.c
    "kmemleak": [
        "[  100.000000] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
        "[  100.000000] kmemleak: unreferenced object 0xffff888004a6e000 (size 4096):",
    ],
    # kernel/rcu/tree_stall.h, kernel/rcu/tasks.h, kernel/rcu/update.c
    # (lockdep_rcu_suspicious), kernel/hung_task.c
    "rcu": [
        "[   61.500000] WARNING: suspicious RCU usage",
        "[   61.500000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
        "[   61.500000] rcu: INFO: rcu_preempt self-detected stall on CPU",
        "[   61.500000] INFO: rcu_tasks detected stalls on tasks:",
        "[  243.000000] INFO: task kworker/0:2:45 blocked for more than 120 seconds.",
    ],
    # kernel/sched/core.c (__might_resched, __schedule_bug)
    "sleeping in atomic context": [
        "[   25.404040] BUG: sleeping function called from invalid context at "
        "kernel/locking/mutex.c:585",
        "[   25.404040] BUG: scheduling while atomic: kworker/0:1/23/0x00000002",
    ],
    # drivers/base/power/main.c (dpm_wait_for_superior's dev_warn)
    "pm parent sleeping": [
        "[   33.210000] input input6: PM: parent virtio2 should not be sleeping",
        "[   33.210000] virtio_blk virtio1: PM: parent 0000:00:02.0 should not be sleeping",
    ],
    # rust/kernel/lib.rs (the panic handler: pr_emerg!("{}\n", info); BUG())
    "rust panic": [
        "[   12.000000] rust_kernel: panicked at rust/kernel/virtio/virtqueue.rs:120:9:",
        "[   12.000000] rust_kernel: panicked at drivers/block/virtio_blk_rs.rs:200:5:",
        "[   12.000100] kernel BUG at rust/helpers/bug.c:7!",
    ],
}

# A clean debug boot and test run (most of them copied from make check's
# console logs): banners that name the checkers, and lines with the same
# words that are no report.
NOT_SPLATS = [
    "[    0.000000] rcu: RCU lockdep checking is enabled.",
    "[    0.000000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
    "[    0.000000] ... MAX_LOCKDEP_SUBCLASSES:  8",
    "[    0.000000] ... MAX_LOCK_DEPTH:          48",
    "[    0.000000] ... MAX_LOCKDEP_KEYS:        8192",
    "[    0.000000] ... MAX_LOCKDEP_ENTRIES:     32768",
    "[    0.000000] ... MAX_LOCKDEP_CHAINS:      65536",
    "[    0.000000]  memory used by lock dependency info: 6429 kB",
    "[    0.000000]  per task-struct memory footprint: 1920 bytes",
    "[    0.000000] kasan: KernelAddressSanitizer initialized",
    "[    0.261234] kmemleak: Kernel memory leak detector initialized (mem pool available: 15898)",
    "[    0.261300] kmemleak: Automatic memory scanning thread started",
    "[    0.000000]  memory used for stack traces: 4224 kB",
    "[    0.000000] ACPI BIOS Error (bug): A valid RSDP was not found (20240827/tbxfroot-222)",
    "[    0.000000] tsc: Fast TSC calibration failed",
    "[    0.000000] rcu: Adjusting geometry for rcu_fanout_leaf=16, nr_cpu_ids=1",
    "[    3.548295] PCI: Using host bridge windows from ACPI; if necessary, use \"pci=nocrs\" "
    "and report a bug",
    "[   30.000000] printk: Suspending console(s) (use no_console_suspend to debug)",
    "[   31.000000] virtio-pci 0000:01:00.0: PM: failed to suspend async: error -5",
    "[   12.000000] virtio_blk_rs virtio3: probe with driver virtio_blk_rs failed with error -22",
    "[    0.000000] Kernel command line: console=ttyS0 panic=-1 rdinit=/init loglevel=7",
    "[    0.512345] Run /init as init process",
    "[   10.000000] virtio_rng_rs virtio0: device used 8 bytes of a 0-byte buffer",
    "[   30.000000] PM: suspend entry (deep)",
    "[   30.100000] PM: suspend debug: Waiting for 5 second(s).",
    "[   35.200000] PM: resume devices took 0.010 seconds",
    "[   12.100000] virtio_blk virtio1: [vda] 524288 512-byte logical blocks (268 MB/256 MiB)",
    "[   12.200000] KTAP version 1",
    "[   12.300000] # kunit_rust_doctests: pass:42 fail:0 skip:0 total:42",
]


class SplatTest(unittest.TestCase):
    def assert_caught(self, kind):
        for line in SPLATS[kind]:
            with self.subTest(line=line):
                self.assertTrue(splat.is_splat(line), f"{kind} not caught: {line}")

    def test_bug_oops_panic(self):
        self.assert_caught("bug")

    def test_warning(self):
        self.assert_caught("warning")

    def test_kasan_ubsan(self):
        self.assert_caught("kasan")

    def test_lockdep(self):
        self.assert_caught("lockdep")

    def test_kmemleak(self):
        self.assert_caught("kmemleak")

    def test_rcu_and_hung_tasks(self):
        self.assert_caught("rcu")

    def test_sleeping_in_atomic(self):
        self.assert_caught("sleeping in atomic context")

    def test_pm_parent_should_not_be_sleeping(self):
        self.assert_caught("pm parent sleeping")

    def test_rust_panic(self):
        self.assert_caught("rust panic")

    def test_boot_banners_are_not_splats(self):
        for line in NOT_SPLATS:
            with self.subTest(line=line):
                self.assertFalse(splat.is_splat(line), f"false alarm: {line}")

    def test_log_file(self):
        """splats() returns exactly the splat lines of a log, in order."""
        lines = NOT_SPLATS[:5] + [SPLATS["warning"][0]] + NOT_SPLATS[5:] + [SPLATS["rcu"][1]]
        with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            self.assertEqual(splat.splats(f.name), [SPLATS["warning"][0], SPLATS["rcu"][1]])

    def test_clean_log_and_missing_log(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
            f.write("\n".join(NOT_SPLATS) + "\n")
            f.flush()
            self.assertEqual(splat.splats(f.name), [])
        self.assertEqual(splat.splats("/nonexistent/console.log"), ["console log missing"])


if __name__ == "__main__":
    ktap_unittest.main()
