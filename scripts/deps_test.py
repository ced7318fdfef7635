#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tests of scripts/deps.sh's install branch, the first-run path CI never takes.

    python3 scripts/deps_test.py [-v]      # or --ktap, as make check runs it

Each test runs the real deps.sh with a fresh temporary VRS_BUILD and HOME,
and with stubs of apt-get, apt-cache, dpkg-query, id, rustup, rustc, cargo,
bindgen and python3 first on PATH (and ~/.cargo/bin off it). The stubs
record their arguments and pretend: nothing is installed for real, no root
is needed, and the real build/ directory is never touched. DEPS_SH=path
tests another copy of deps.sh (with its lib.sh next to it).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap_unittest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPS_SH = os.environ.get("DEPS_SH", os.path.join(ROOT, "scripts", "deps.sh"))


def lib_value(name):
    """A NAME=value assignment of scripts/lib.sh (the pins the tests expect)."""
    with open(os.path.join(os.path.dirname(DEPS_SH), "lib.sh")) as f:
        m = re.search(rf"^{name}=(\S+)$", f.read(), re.M)
    return m.group(1)


KDEB_PKG, KDEB_VER = lib_value("KDEB_PKG"), lib_value("KDEB_VER")
BINDGEN_VER, QEMU_QMP_VER = lib_value("BINDGEN_VER"), lib_value("QEMU_QMP_VER")
KTARBALL = lib_value("KTARBALL")

# One program plays every stub, by the name it is called as. State lives in
# $STUB_DIR: calls.jsonl (every call), missing (packages not installed),
# installed (what the stub apt-get installed), madison (apt-cache's answer).
STUB = r'''#!{python}
import json, os, signal, subprocess, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # die of SIGPIPE, as a C program does
name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
state = os.environ["STUB_DIR"]
with open(os.path.join(state, "calls.jsonl"), "a") as f:
    f.write(json.dumps([name, *args]) + "\n")
def lines(fn):
    try:
        with open(os.path.join(state, fn)) as f:
            return f.read().split()
    except FileNotFoundError:
        return []
def mark(what):
    with open(os.path.join(state, "installed"), "a") as f:
        f.write(what + "\n")
installed = lambda p: p not in lines("missing") or p in lines("installed")
if name == "id":
    if args == ["-u"]:
        print(os.environ.get("STUB_UID", "0"))
        sys.exit(0)
    os.execv("/usr/bin/id", ["id", *args])
if name == "dpkg-query":
    fmt, pkg = next(a for a in args if a.startswith("-f")), args[-1]
    if not installed(pkg):
        print(f"dpkg-query: no packages found matching {{pkg}}", file=sys.stderr)
        sys.exit(1)
    status = "install ok installed"
    print(os.environ.get("STUB_KVER", "{kdeb_ver}") if "Version" in fmt else status, end="")
    sys.exit(0)
if name == "apt-get":
    if args[:1] == ["install"]:
        for a in args[1:]:
            if not a.startswith("-"):
                mark(a.split("=")[0])
        print("Setting up stub packages ...")
    sys.exit(0)
if name == "apt-cache":
    # The test's lines, then many more, as the real one prints Sources lines
    # too: a reader that stops at the first match (grep -q) gets it SIGPIPEd.
    with open(os.path.join(state, "madison")) as f:
        sys.stdout.write(f.read())
    for i in range(20000):
        sys.stdout.write(f" {kdeb_pkg} | 6.1.{{i}}-1 | "
                         "http://deb.debian.org/debian bookworm/main Sources\n")
    sys.exit(0)
if name == "rustup":
    if args[:3] == ["component", "list", "--installed"]:
        print("cargo-x86_64-unknown-linux-gnu\nrust-std-x86_64-unknown-linux-gnu")
        if "rust-src" in lines("installed"):
            print("rust-src")
    elif args[:2] == ["component", "add"]:
        mark(args[2])
    sys.exit(0)
if name == "rustc":
    print("rustc 1.83.0 (stub)")
    sys.exit(0)
if name == "bindgen":
    ver = "{bindgen_ver}" if "bindgen-cli" in lines("installed") else "0.69.4"
    print(f"bindgen {{ver}}")
    sys.exit(0)
if name == "cargo":
    if args[:1] == ["install"]:
        mark(args[-1].split("@")[0])
    sys.exit(0)
if name == "python3" and args[:2] == ["-m", "venv"]:
    os.makedirs(os.path.join(args[2], "bin"))
    os.symlink(os.path.abspath(sys.argv[0]), os.path.join(args[2], "bin", "pip"))
    sys.exit(0)
if name == "pip":
    sys.exit(0)
sys.exit(f"stub {{name}}: unexpected call {{args}}")
'''
STUBS = ["id", "dpkg-query", "apt-get", "apt-cache", "rustup", "rustc", "bindgen", "cargo",
         "python3"]
MADISON = (f" {KDEB_PKG} | 6.12.118-1~deb12u1 | http://deb.debian.org/debian-security "
           "bookworm-security/main amd64 Packages\n"
           f" {KDEB_PKG} | {KDEB_VER} | http://deb.debian.org/debian bookworm/main "
           "amd64 Packages\n")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class DepsInstallTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(DEPS_SH):
            self.fail(f"{DEPS_SH} is missing")
        if not os.access("/etc/debian_version", os.R_OK):
            self.skipTest("deps.sh supports Debian only, and /etc/debian_version is missing")
        self.tmp = tempfile.mkdtemp(prefix="vrs-deps-test-")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.build = os.path.join(self.tmp, "build")  # does not exist yet: a fresh clone
        self.state = os.path.join(self.tmp, "state")
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(self.state)
        os.makedirs(bindir)
        os.makedirs(os.path.join(self.tmp, "home"))
        stub = os.path.join(bindir, "stub")
        with open(stub, "w") as f:
            f.write(STUB.format(python=sys.executable, kdeb_pkg=KDEB_PKG, kdeb_ver=KDEB_VER,
                                bindgen_ver=BINDGEN_VER))
        os.chmod(stub, 0o755)
        for name in STUBS:
            os.symlink("stub", os.path.join(bindir, name))
        # No ~/.cargo/bin (lib.sh puts $HOME/.cargo/bin first) and no other
        # directory that could hold a real cargo, rustup or bindgen.
        self.env = {"PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                    "HOME": os.path.join(self.tmp, "home"), "VRS_BUILD": self.build,
                    "STUB_DIR": self.state}
        self.set_missing([KDEB_PKG, "qemu-system-x86", "fio"])
        self.set_madison(MADISON)

    def set_missing(self, pkgs):
        with open(os.path.join(self.state, "missing"), "w") as f:
            f.write("\n".join(pkgs) + "\n")

    def set_madison(self, text):
        with open(os.path.join(self.state, "madison"), "w") as f:
            f.write(text)

    def run_deps(self, **env):
        r = subprocess.run(["bash", DEPS_SH], env={**self.env, **env}, capture_output=True,
                           text=True, timeout=120)
        r.stderr = ANSI.sub("", r.stderr)
        return r

    def calls(self, name=None):
        try:
            with open(os.path.join(self.state, "calls.jsonl")) as f:
                calls = [json.loads(line) for line in f]
        except FileNotFoundError:
            return []
        return [c[1:] for c in calls if c[0] == name] if name else calls

    def assert_one_line_error(self, r, *words):
        self.assertNotEqual(r.returncode, 0, "deps.sh should have failed")
        errors = [line for line in r.stderr.splitlines() if not line.startswith("==> ")]
        self.assertEqual(len(errors), 1, f"want one error line, got:\n{r.stderr}")
        self.assertTrue(errors[0].startswith("error: "), errors[0])
        for w in words:
            self.assertIn(w, errors[0])
        self.assertNotIn("Traceback", r.stderr)
        self.assertNotIn("line ", r.stderr)  # no bash "line N: ..." complaint

    def test_fresh_install_reaches_the_end(self):
        r = self.run_deps()
        self.assertEqual(r.returncode, 0, f"deps.sh failed:\n{r.stderr}")
        self.assertTrue(os.path.isfile(os.path.join(self.build, ".deps-ok")),
                        "deps.sh did not get to its stamp")
        self.assertTrue(os.path.isfile(os.path.join(self.build, "apt.log")))
        installs = self.calls("apt-get")
        self.assertEqual(installs[0], ["update", "-qq"])
        self.assertEqual(len(installs), 2, installs)
        self.assertEqual(installs[1][:4], ["install", "-y", "-qq", "--no-install-recommends"])
        self.assertEqual(sorted(installs[1][4:]),
                         sorted([f"{KDEB_PKG}={KDEB_VER}", "qemu-system-x86", "fio"]))
        self.assertIn(["madison", KDEB_PKG], self.calls("apt-cache"))
        self.assertIn(["component", "add", "rust-src"], self.calls("rustup"))
        self.assertIn(["install", "--locked", f"bindgen-cli@{BINDGEN_VER}"], self.calls("cargo"))
        self.assertIn(["-m", "venv", os.path.join(self.build, "venv")], self.calls("python3"))
        self.assertIn(["install", "-q", f"qemu.qmp=={QEMU_QMP_VER}"], self.calls("pip"))

    def test_build_dir_is_created(self):
        """apt.log goes into VRS_BUILD, which a fresh clone does not have yet."""
        r = self.run_deps()
        self.assertTrue(os.path.isdir(self.build), f"no {self.build}:\n{r.stderr}")
        with open(os.path.join(self.build, "apt.log")) as f:
            self.assertIn("Setting up", f.read())

    def test_rerun_does_nothing(self):
        self.assertEqual(self.run_deps().returncode, 0)
        before = len(self.calls())
        r = self.run_deps()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.calls()[before:], [], "a rerun after success must be free")

    def test_nothing_missing_installs_nothing(self):
        self.set_missing([])
        r = self.run_deps()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.calls("apt-get"), [])

    def test_pinned_version_gone(self):
        self.set_madison(MADISON.splitlines(keepends=True)[0])
        r = self.run_deps()
        self.assert_one_line_error(r, KDEB_PKG, KDEB_VER, "scripts/lib.sh")
        self.assertFalse([c for c in self.calls("apt-get") if c[:1] == ["install"]],
                         "apt-get install ran although the pin is gone")

    def test_not_root(self):
        r = self.run_deps(STUB_UID="1000")
        self.assert_one_line_error(r, "root")
        self.assertEqual(self.calls("apt-get"), [])

    def test_wrong_version_installed(self):
        self.set_missing([])
        r = self.run_deps(STUB_KVER="6.12.118-1~deb12u1")
        self.assert_one_line_error(r, f"{KDEB_PKG}={KDEB_VER}")

    def tearDown(self):
        # Belt and braces: the stubs wrote only under the temporary directory.
        for call in self.calls():
            for arg in call:
                self.assertFalse(arg.startswith(os.path.join(ROOT, "build")),
                                 f"deps.sh touched the real build dir: {call}")


if __name__ == "__main__":
    if not os.path.exists(KTARBALL):
        # deps.sh checks this fixed path at the end; make check always has it.
        print(f"# {KTARBALL} is missing: the tests that reach the end of deps.sh will fail")
    ktap_unittest.main()
