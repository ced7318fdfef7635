#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tests of how make check counts KTAP (scripts/check.py's parse_ktap).

    python3 scripts/check_test.py [-v]     # or --ktap, as make check runs it

The parser is the kernel's tools/testing/kunit/kunit_parser.py, from the
extracted kernel tree; these tests pin what check.py adds on top: SKIP
reasons, a SKIP without one failing, tests without a result failing, and
the KTAP that scripts/ktap_unittest.py prints for the host suites.
"""

import io
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402
import ktap_unittest  # noqa: E402

try:
    import kunit_parser  # noqa: F401 - check.py put its directory on sys.path
    HAVE_PARSER = True
except ImportError:
    HAVE_PARSER = False


def counts(text):
    """(passed, failed, skipped, failed names, skipped (name, reason))."""
    with tempfile.NamedTemporaryFile("w") as f:
        return check.parse_ktap(text, f.name)


@unittest.skipUnless(HAVE_PARSER, "the kernel tree with tools/testing/kunit is not extracted "
                     "yet (make kernel)")
class ParseKtapTest(unittest.TestCase):
    def test_pass_fail_skip(self):
        p, f, s, failed, skipped = counts(
            "TAP version 13\n1..4\nok 1 a\nnot ok 2 b\n"
            "ok 3 c # SKIP virtio-mmio has no hot-unplug\nok 4 d\n")
        self.assertEqual((p, f, s), (2, 1, 1))
        self.assertEqual(failed, ["b"])
        self.assertEqual(skipped, [("c", "virtio-mmio has no hot-unplug")])

    def test_skip_without_reason_fails(self):
        p, f, s, failed, skipped = counts("TAP version 13\n1..2\nok 1 a # SKIP\nok 2 b # SKIP  \n")
        self.assertEqual((p, f, s), (0, 2, 0))
        self.assertEqual(len(failed), 2)
        self.assertIn("SKIP without a reason", failed[0])

    def test_other_directive_fails(self):
        p, f, s, failed, _ = counts("TAP version 13\n1..2\nok 1 a # skip lower case\nok 2 b\n")
        self.assertEqual((p, f, s), (1, 1, 0))
        self.assertIn("unknown directive", failed[0])

    def test_missing_results_fail_each(self):
        p, f, s, failed, _ = counts("TAP version 13\n1..3\nok 1 a\n")
        self.assertEqual((p, f, s), (1, 2, 0))
        self.assertEqual(failed, ["test 2 (no result line)", "test 3 (no result line)"])

    def test_results_past_the_plan_fail(self):
        p, f, s, failed, _ = counts("TAP version 13\n1..2\nok 1 a\nok 2 b\nnot ok 3 c\n")
        self.assertEqual((p, f, s), (2, 1, 0))
        self.assertIn("3 results for a plan of 2", failed[-1])

    def test_no_ktap_is_one_failure(self):
        self.assertEqual(counts("Kernel panic - not syncing\n")[:3], (0, 1, 0))
        self.assertEqual(counts("")[:3], (0, 1, 0))

    def test_nested_kunit_suites(self):
        p, f, s, failed, skipped = counts(
            "KTAP version 1\n1..2\n"
            "    KTAP version 1\n    # Subtest: s1\n    1..2\n"
            "    ok 1 t1\n    ok 2 t2 # SKIP needs two CPUs\nok 1 s1\n"
            "    KTAP version 1\n    # Subtest: s2\n    1..1\n    not ok 1 t3\nnot ok 2 s2\n")
        self.assertEqual((p, f, s), (1, 1, 1))
        self.assertEqual(failed, ["s2/t3"])
        self.assertEqual(skipped, [("s1/t2", "needs two CPUs")])

    def test_host_suite_ktap_round_trip(self):
        """What ktap_unittest prints for passes, failures and skips counts right."""
        class T(unittest.TestCase):
            def test_a(self):
                pass

            def test_b(self):
                self.fail("boom")

            def test_c(self):
                self.skipTest("no Debian here")

            def test_d(self):
                for i in range(2):
                    with self.subTest(i=i):
                        self.assertEqual(i, 0)
        out = io.StringIO()
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(T)
        print(f"KTAP version 1\n1..{suite.countTestCases()}", file=out)
        suite.run(ktap_unittest.KtapResult(out))
        p, f, s, failed, skipped = counts(out.getvalue())
        self.assertEqual((p, f, s), (1, 2, 1), out.getvalue())
        self.assertEqual(failed, ["T.test_b", "T.test_d"])
        self.assertEqual(skipped, [("T.test_c", "no Debian here")])


class PlanTest(unittest.TestCase):
    """Runs with a variant (net-tap's RX paths): their own tag, script arguments and
    scripts/vm options, and the same transport filter as any run."""

    def test_net_tap_variants(self):
        runs = check.plan(["net-tap-c"], "", True)
        tags = [r[4]["tag"] for r in runs]
        self.assertIn("mrg-big-mq2-rss", tags)
        self.assertIn("mrg-big", tags)
        for s, transport, ring, devices, variant in runs:
            self.assertEqual(devices, "net,net1")
            p0, p1, *mq = variant["tag"].split("-")
            rss = "rss" in mq
            mq = [m for m in mq if m != "rss"]
            va = variant["vm_args"]
            self.assertEqual(va[:2], ["--net-backend", "tap"])
            self.assertIn(f"net={check.NET_PATHS[p0]}", va)
            self.assertIn(f"net1={check.NET_PATHS[p1]}", va)
            # Queue pairs: "-mqN" in the tag, --net-queues N for scripts/vm; else neither.
            if mq:
                i = va.index("--net-queues")
                self.assertEqual(va[i:i + 2], ["--net-queues", mq[0][len("mq"):]])
            else:
                self.assertNotIn("--net-queues", va)
            # RSS and hash reports: "-rss" in the tag, --net-rss for scripts/vm.
            self.assertEqual("--net-rss" in va, rss)
            # host_mtu=9000 on both, and the script told, unless a NIC is on small buffers.
            want = f" {p0} {p1}" + ("" if "small" in (p0, p1) else " 9000")
            self.assertEqual(variant["args"], want)

    def test_default_and_filter(self):
        default = check.plan(["net-tap-c"], "", False)
        self.assertEqual([(r[1], r[2], r[4]["tag"]) for r in default],
                         [("pci", "split", "mrg-big-mq2-rss")])
        self.assertFalse(check.plan(["net-tap-c"], "mmio", False))
        self.assertEqual(check.plan(["net"], "", False)[0][4], {})

    def test_describe_names_the_variant(self):
        self.assertIn("pci/split mrg-big-mq2", check.describe(check.plan(["net-tap-c"], "", False)[0]))


if __name__ == "__main__":
    ktap_unittest.main()
