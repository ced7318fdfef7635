#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tests of how scripts/vm builds QEMU's arguments for the net backends.

    python3 scripts/vm_test.py [-v]     # or --ktap, as make check runs it

The hub and tap backends of --net-backend (the -netdev of each NIC, the
per-device properties that pick an RX path, the network namespace QEMU runs
in for tap), and TAP_SETUP run for real under `unshare --net` (root only):
its taps are on the bridge, up, with vnet headers, and nothing of it is left
in the host's namespace.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktap_unittest  # noqa: E402
import vm  # noqa: E402


def vm_args(devices="net,net1", backend="hub", transport="pci", ring="split", props=()):
    """The parsed arguments qemu_device_args and net_wrap read, as main() leaves them."""
    devs = vm.parse_devices(devices)
    return argparse.Namespace(devs=devs, transport=transport, ring=ring, net_backend=backend,
                              device_props=vm.parse_props(list(props), devs, "device-props"),
                              drive_props={}, disk_size=1)


def option(qargs, flag, prefix):
    """The values of FLAG in QARGS that start with PREFIX."""
    return [v for f, v in zip(qargs, qargs[1:]) if f == flag and v.startswith(prefix)]


class NetBackendTest(unittest.TestCase):
    def setUp(self):
        self.run_dir = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.run_dir)

    def test_hub_ports(self):
        q = vm.qemu_device_args(vm_args(), vm_args().devs, self.run_dir)
        self.assertEqual(option(q, "-netdev", ""),
                         ["hubport,id=netdev0,hubid=0", "hubport,id=netdev1,hubid=0"])
        devs = option(q, "-device", "virtio-net-pci")
        self.assertEqual(len(devs), 2)
        self.assertIn("netdev=netdev0,mac=52:54:00:12:34:56", devs[0])
        self.assertIn("netdev=netdev1,mac=52:54:11:12:34:56", devs[1])

    def test_tap_netdevs(self):
        a = vm_args(backend="tap")
        q = vm.qemu_device_args(a, a.devs, self.run_dir)
        self.assertEqual(option(q, "-netdev", ""),
                         ["tap,id=netdev0,ifname=vrstap0,script=no,downscript=no,vnet_hdr=on",
                          "tap,id=netdev1,ifname=vrstap1,script=no,downscript=no,vnet_hdr=on"])
        self.assertFalse(option(q, "-netdev", "hubport"))

    def test_rx_path_props_per_device(self):
        a = vm_args(backend="tap", props=["net=host_mtu=9000",
                                          "net1=host_mtu=9000,mrg_rxbuf=off"])
        q = vm.qemu_device_args(a, a.devs, self.run_dir)
        d0, d1 = option(q, "-device", "virtio-net-pci")
        self.assertIn(",host_mtu=9000", d0)
        self.assertNotIn("mrg_rxbuf", d0)
        self.assertIn(",host_mtu=9000,mrg_rxbuf=off", d1)
        self.assertIn("netdev=netdev1", d1)

    def test_mmio_and_packed(self):
        a = vm_args(backend="tap", transport="mmio", ring="packed")
        q = vm.qemu_device_args(a, a.devs, self.run_dir)
        devs = option(q, "-device", "virtio-net-device")
        self.assertEqual(len(devs), 2)
        self.assertTrue(all("packed=on" in d for d in devs))
        self.assertEqual(len(option(q, "-netdev", "tap,")), 2)

    def test_wrap_hub_unchanged(self):
        qcmd = ["qemu-system-x86_64", "-m", "1024"]
        self.assertEqual(vm.net_wrap(vm_args(), qcmd), qcmd)

    def test_wrap_tap(self):
        qcmd = ["qemu-system-x86_64", "-m", "1024"]
        w = vm.net_wrap(vm_args(devices="rng,net,blk,net1", backend="tap"), qcmd)
        self.assertEqual(w[:5], ["unshare", "--net", "--", "sh", "-c"])
        self.assertEqual(w[5], vm.TAP_SETUP)
        # $0, then the number of taps (vrstap0 and vrstap1), then their queues.
        self.assertEqual(w[6:9], ["vrs-tap", "2", "1"])
        self.assertEqual(w[9:], qcmd)

    def test_wrap_tap_without_nics(self):
        w = vm.net_wrap(vm_args(devices="rng", backend="tap"), ["qemu"])
        self.assertEqual(w[6:], ["vrs-tap", "0", "1", "qemu"])

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip")
                         and os.path.exists("/dev/net/tun"),
                         "needs root, unshare, ip and /dev/net/tun")
    def test_tap_setup_for_real(self):
        """TAP_SETUP in a namespace of its own, then a shell instead of QEMU that
        reports what it sees there."""
        show = "ip -d -o link show; cat /proc/sys/net/ipv6/conf/all/disable_ipv6; ip -o addr show"
        r = subprocess.run(["unshare", "--net", "--", "sh", "-c", vm.TAP_SETUP, "vrs-tap", "2",
                            "1", "sh", "-c", show], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        links = {line.split(": ")[1]: line for line in r.stdout.splitlines() if ": " in line
                 and "link/" in line}
        for tap in ("vrstap0", "vrstap1"):
            self.assertIn(tap, links)
            self.assertIn(f"master {vm.TAP_BRIDGE}", links[tap])
            self.assertIn("vnet_hdr on", links[tap])
            self.assertIn("mtu 65521", links[tap])
            self.assertRegex(links[tap], r"<[^>]*\bUP\b")
        self.assertIn("stp_state 0", links[vm.TAP_BRIDGE])
        self.assertIn("mcast_snooping 0", links[vm.TAP_BRIDGE])
        self.assertNotIn("vrstap2", links)
        # No address but loopback's 127.0.0.1: IPv6 is off, the taps and bridge have none.
        addrs = [line.split()[1:4] for line in r.stdout.splitlines() if " inet" in line]
        self.assertEqual(addrs, [["lo", "inet", "127.0.0.1/8"]])
        self.assertIn("\n1\n", r.stdout)  # net.ipv6.conf.all.disable_ipv6
        # Nothing in the host's namespace.
        host = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
        self.assertNotIn("vrstap", host.stdout)
        self.assertNotIn(vm.TAP_BRIDGE, host.stdout)


if __name__ == "__main__":
    ktap_unittest.main()
