# SPDX-License-Identifier: GPL-2.0
"""The kernel splat scanner of make check and make bench.

A guest run fails when its console log holds a splat, even if every test
passed. SPLAT matches the first line of each report the debug kernel prints
(BUG, WARNING, Oops, panics, KASAN, UBSAN, lockdep, RCU, sleeping in atomic
context, kmemleak, PM complaints, Rust panics, hung tasks); NOT_SPLAT
exempts the boot banners that merely name those checkers. The tests are in
scripts/splat_test.py.
"""

import re

SPLAT = re.compile(
    r"BUG: |WARNING: |kernel BUG at|Oops|Kernel panic|general protection fault|"
    r"KASAN|UBSAN|possible circular locking|possible recursive locking|"
    r"inconsistent lock state|suspicious RCU usage|lock inversion|DEBUG_LOCKS_WARN_ON|"
    r"sleeping function called from invalid context|scheduling while atomic|"
    r"parent \S+ should not be sleeping|suspected memory leak|unreferenced object|"
    r"INFO: \S+ (self-)?detected stall|blocked for more than \d+ seconds|"
    r"rust_kernel: panicked|Call Trace:")
# Lines that mention those words without being a splat. Only the banner's
# "... MAX_LOCKDEP_*:" lines: "BUG: MAX_LOCKDEP_* too low!" turns lockdep off.
NOT_SPLAT = re.compile(r"RCU lockdep checking is enabled|\.\.\. MAX_LOCKDEP|lockdep: .*(per-cpu|"
                       r"initialized)|Lock dependency validator|kasan: KernelAddressSanitizer|"
                       r"kmemleak: Kernel memory leak detector initialized")


def is_splat(line):
    """True if one console line starts or belongs to a kernel splat."""
    return bool(SPLAT.search(line)) and not NOT_SPLAT.search(line)


def splats(log):
    """The splat lines of console log LOG, or a complaint if it is missing."""
    try:
        with open(log, errors="replace") as f:
            return [line.rstrip() for line in f if is_splat(line)]
    except FileNotFoundError:
        return ["console log missing"]
