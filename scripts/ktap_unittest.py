# SPDX-License-Identifier: GPL-2.0
"""Run a Python unittest module and print KTAP, for make check's host suites.

    python3 scripts/splat_test.py           # unittest's usual output
    python3 scripts/splat_test.py --ktap    # KTAP: one test per test method

make check runs the host suites with --ktap and parses what they print with
the kernel's kunit_parser, as it does a guest's output. A skipTest() reason
becomes the "# SKIP reason" directive; the traceback of a failure becomes
"# " diagnostics before its "not ok" line. The exit status is 0 only if
every test passed or was skipped.
"""

import argparse
import sys
import unittest


class KtapResult(unittest.TestResult):
    """Prints one KTAP result line per test method, subtests folded in."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.num = 0
        self.current = None

    def emit(self, test, status, diag, skip=None):
        self.num += 1
        for line in diag:
            print(f"# {line}", file=self.stream)
        name = f"{type(test).__name__}.{getattr(test, '_testMethodName', str(test))}"
        directive = f" # SKIP {skip}" if skip is not None else ""
        print(f"{status} {self.num} {name}{directive}", file=self.stream, flush=True)

    def startTest(self, test):
        super().startTest(test)
        self.current = {"status": "ok", "diag": [], "skip": None}

    def stopTest(self, test):
        super().stopTest(test)
        c, self.current = self.current, None
        self.emit(test, c["status"], c["diag"], c["skip"])

    def _fail(self, test, err, what=""):
        text = self._exc_info_to_string(err, test)
        if self.current is None:  # setUpClass and friends: no test is running
            self.emit(test, "not ok", text.splitlines())
            return
        self.current["status"] = "not ok"
        self.current["diag"] += ([what] if what else []) + text.splitlines()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err)

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._fail(test, err, f"in {subtest}:")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if self.current is None:
            self.emit(test, "ok", [], reason)
        else:
            self.current["skip"] = reason

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.current["status"] = "not ok"
        self.current["diag"].append("unexpected success of a test marked expectedFailure")


def main(module="__main__"):
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--ktap", action="store_true", help="print KTAP instead")
    ap.add_argument("--out", help="make check's run directory (unused)")
    args, rest = ap.parse_known_args()
    if not args.ktap:
        unittest.main(module=module, argv=[sys.argv[0], *rest])
        return
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module])
    print("KTAP version 1")
    print(f"1..{suite.countTestCases()}", flush=True)
    result = KtapResult(sys.stdout)
    suite.run(result)
    sys.exit(0 if result.wasSuccessful() else 1)
