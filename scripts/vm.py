#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boot a virtio-rs guest under QEMU and run one command in it.

The guest's kernel console (ttyS0) goes to a log file. Its second serial
port (ttyS1) is the control channel: the command's output streams to our
stdout, the guest asks the host for QMP commands over it (vrs-host), and the
command's exit status comes back on it. Neither path depends on a virtio
driver under test. Our exit status is the guest command's, or:
  124  the guest hung and was killed at the timeout
  125  the guest died without reporting a status (panic, triple fault)
  2    bad arguments

`vrs-host baddev DEVICE COMMAND` in the guest asks the baddev backend of a
lying device for its request log instead (COMMAND is log or clear; DEVICE a
QEMU id, badblk0, or a --devices name, badblk:req-honest): the guest sends
`@@VRS-BADDEV DEVICE COMMAND`, and gets the backend's answer lines, then
`@@VRS-END STATUS`.
"""

import argparse
import asyncio
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("VRS_BUILD", os.path.join(ROOT, "build"))

TRANSPORTS = ("pci", "pci-legacy", "mmio")
RINGS = ("split", "packed")
DRIVERS = ("rust", "c", "mixed", "none")
# What the virtio-net devices are plugged into. hub: a QEMU hub, inside QEMU; its ports have
# no vnet header, so QEMU offers no offload (no CSUM, GSO, TSO, MRG_RXBUF still). tap: one
# tap with vnet headers per NIC, all on one bridge in a network namespace of QEMU's own
# (see TAP_SETUP): the offloads are offered, and GSO packets cross from NIC to NIC.
NET_BACKENDS = ("hub", "tap")
TAP_BRIDGE = "vrsbr0"
# The tap of net device K (net, net1, ...): vrstapK. Persistent taps made before QEMU starts,
# so that they are on the bridge and up before the guest sends anything; QEMU attaches to
# them by name (vnet_hdr=on needs IFF_VNET_HDR, which they have).
TAP_NAME = "vrstap{k}"
# Run by `unshare --net` as sh -c TAP_SETUP vrs-tap N Q QEMU-COMMAND...: in the new, empty
# network namespace (the host's is never touched, and the kernel deletes the namespace,
# bridge and taps with it when QEMU exits, however it exits): no IPv6 (no host addresses,
# no router or neighbour solicitations, nothing sent that a test would count), loopback up,
# a bridge without STP or multicast snooping (it floods, and sends nothing itself), N taps
# on it (multiqueue taps if Q, the queue pairs of each NIC (--net-queues), is above 1: QEMU
# attaches Q queues to each, and a tap's multiqueue flag must match), MTU 65521 (a tap's maximum: the NICs' host_mtu, up to 9000, never limits them),
# then QEMU, in place of the shell.
TAP_SETUP = r"""set -e
n=$1
mq=
[ "$2" -gt 1 ] && mq=multi_queue
shift 2
for c in all default; do echo 1 >/proc/sys/net/ipv6/conf/$c/disable_ipv6; done
ip link set lo up
ip link add {br} type bridge stp_state 0 mcast_snooping 0
k=0
while [ $k -lt "$n" ]; do
	ip tuntap add dev vrstap$k mode tap vnet_hdr $mq
	ip link set vrstap$k mtu 65521 master {br} up
	k=$((k + 1))
done
ip link set {br} up
exec "$@"
""".format(br=TAP_BRIDGE)
FLAVOURS = ("debug", "release")

# Device name -> (QEMU device base name, extra properties, extra QEMU args).
# "{id}" and "{run}" are filled in per run.
DEVICES = {
    "rng": ("virtio-rng", "", []),
    "blk": ("virtio-blk", ",drive=blkdrv0,serial=vrs-blk0",
            ["-drive", "if=none,id=blkdrv0,file={run}/blk0.img,format=raw,cache=unsafe"]),
    "net": ("virtio-net", ",netdev=netdev0,mac=52:54:00:12:34:56",
            ["-netdev", "hubport,id=netdev0,hubid=0"]),
    "console": ("virtio-serial", "", []),
    "balloon": ("virtio-balloon", "", []),
    "scsi": ("virtio-scsi", "", []),
    "9p": ("virtio-9p", ",fsdev=fsdev0,mount_tag=vrs9p",
           ["-fsdev", "local,id=fsdev0,path={run}/9p,security_model=none"]),
    "keyboard": ("virtio-keyboard", "", []),
    "mouse": ("virtio-mouse", "", []),
    "tablet": ("virtio-tablet", "", []),
    "gpu": ("virtio-gpu", "", []),
    # A lying virtio-rng: vhost-user, served by build/baddev (pci, split rings only).
    "badrng": ("vhost-user-rng", ",chardev=badrngchr0", []),
    # badblk:PRESET, a virtio-blk RAM disk whose config space or whose answers lie:
    # vhost-user, one build/baddev per disk (pci, split rings only). "{k}" is the disk's
    # number.
    "badblk": ("vhost-user-blk", ",chardev=badblkchr{k},num-queues=1", []),
}
BADRNG_LIES = ("cycle", "honest", "oversize", "zero", "huge")
# The --config presets of `baddev blk` (tools/testing/virtio_rs/baddev/src/blk.rs).
BADBLK_PRESETS = ("honest", "blk-size-0", "blk-size-3", "blk-size-2g", "pbexp-63", "align-255",
                  "io-sizes", "seg-max-0", "capacity-2e63")
# Request presets, req-LIE: the honest config with DISCARD and WRITE_ZEROES, and `baddev blk
# --lie LIE` (blk.rs): honest; reads at or past half the disk answered with IOERR, a used
# length of 0xffffffff or 0, an extra used element with an out-of-range id or the same head
# used twice; DISCARD and WRITE_ZEROES answered UNSUPP.
BADBLK_REQ_LIES = ("honest", "ioerr", "unsupp", "used-len-huge", "used-len-0", "bad-id", "dup-id",
                   "never", "irq-storm")
BADBLK_PRESETS += tuple(f"req-{lie}" for lie in BADBLK_REQ_LIES)
# Devices served by build/baddev over vhost-user.
VHOST_USER = ("badrng", "badblk")
# How long the host side of qemu-guest-agent's port waits for each step of a request (a
# bound, not a measure: the agent answers at once; a missing agent fails in this time).
GA_TIMEOUT = 10
GROUPS = {"input": ["keyboard", "mouse", "tablet"]}
ALL = ["rng", "blk", "net", "console", "balloon", "scsi", "9p", "keyboard", "mouse",
       "tablet", "gpu"]
# Devices QEMU implements as virtio 1.0 only: they stay modern on pci-legacy.
MODERN_ONLY = {"keyboard", "mouse", "tablet", "gpu"}


def die(msg, code=2):
    print(f"vm: error: {msg}", file=sys.stderr)
    sys.exit(code)


def device_base(name):
    """The DEVICES key of a --devices name: rng2 -> rng, badblk:honest -> badblk."""
    if name.startswith("badblk:"):
        return "badblk"
    return name if name in DEVICES else name.rstrip("0123456789")


def badblk_index(devs, name):
    """The number of badblk device NAME: its place among the badblk devices."""
    return [d for d in devs if device_base(d) == "badblk"].index(name)


def parse_devices(spec):
    if spec == "all":
        return list(ALL)
    if spec == "none":
        return []
    out = []
    for name in spec.split(","):
        name = name.strip()
        base = device_base(name)
        if name in GROUPS:
            out += GROUPS[name]
        elif base == "badblk":
            preset = name.partition(":")[2]
            if preset not in BADBLK_PRESETS:
                die(f"badblk needs a preset, badblk:PRESET, and '{preset}' is none "
                    f"(valid: {', '.join(BADBLK_PRESETS)})")
            if name in out:
                die(f"{name} is given twice: each badblk preset can be used once")
            out.append(name)
        elif base in DEVICES:
            out.append(name)
        else:
            die(f"unknown device '{name}' (valid: {', '.join(ALL + list(GROUPS))}, badrng, "
                "badblk:PRESET, all, none; add a digit for a second one, e.g. rng,rng2)")
    return out


def merge_opts(base, extra):
    """QEMU "k=v,k=v" options with EXTRA's keys replacing BASE's (in place)."""
    out = {}
    for part in (base, extra):
        for kv in filter(None, part.split(",")):
            k, _, v = kv.partition("=")
            out[k] = v
    return ",".join(f"{k}={v}" if v else k for k, v in out.items())


def drive_opts(args, name, opts):
    """The -drive options of device NAME, with its --drive-props applied. A
    driver= there (e.g. null-co) replaces the raw image: file= and format=
    are dropped, and size= defaults to --disk-size."""
    extra = args.drive_props.get(name, "")
    if not extra:
        return opts
    keys = {kv.partition("=")[0] for kv in extra.split(",")}
    if "driver" in keys:
        opts = ",".join(kv for kv in opts.split(",")
                        if kv.partition("=")[0] not in ("file", "format"))
        if "size" not in keys:
            extra += f",size={args.disk_size}M"
    return merge_opts(opts, extra)


def parse_props(items, devs, what):
    """["NAME=k=v,k=v", ...] -> {NAME: "k=v,k=v"}; repeated NAMEs add up."""
    out = {}
    for item in items:
        name, _, props = item.partition("=")
        if not name or not props:
            die(f"--{what} {item}: expected NAME=KEY=VALUE[,KEY=VALUE...]")
        if name not in devs:
            die(f"--{what} {item}: no device '{name}' in --devices ({','.join(devs) or 'none'})")
        out[name] = f"{out[name]},{props}" if name in out else props
    return out


def kvm_works():
    """A short probe: KVM counts only if a guest actually boots with it."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    cache = os.path.join(BUILD, ".kvm-probe")
    if os.path.exists(cache):
        return open(cache).read().strip() == "yes"
    ok = False
    try:
        r = subprocess.run(["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-M", "q35",
                            "-display", "none", "-nodefaults", "-no-reboot", "-m", "256",
                            "-kernel", kernel_path("release" if os.path.exists(kernel_path("release")) else "debug"),
                            "-append", "console=ttyS0 panic=-1 rdinit=/bin/true",
                            "-serial", "stdio"], capture_output=True, timeout=20, text=True)
        ok = "Run /bin/true" in r.stdout or "Kernel panic" in r.stdout
    except (subprocess.TimeoutExpired, OSError):
        ok = False
    with open(cache, "w") as f:
        f.write("yes\n" if ok else "no\n")
    return ok


def kernel_path(flavour):
    return os.path.join(BUILD, f"kbuild-{flavour}", "arch/x86/boot/bzImage")


# q35's bus 0 (pcie.0) under "-nodefaults -vga none": 00:00.0 is the host bridge and
# slot 0x1f the ICH9 functions (LPC, SATA, SMBus); slots 0x01 to 0x1e are free.
# Every device of a pci/pci-legacy guest sits behind a PCIe root port of its own.
PCI_SLOTS = range(0x01, 0x1f)
PCI_FUNCTIONS = 8


def root_port_addrs(n):
    """The bus 0 addresses (slot, function) of N root ports, in --devices order.

    While they fit, one port per slot, 00:01.0, 00:02.0, ...: the layout the
    selftests rely on (lib.sh's vrs_dev_at and vrs_badblk_map read device I's
    place from its root port's slot number). Beyond that, eight ports per slot
    as the functions of a multifunction device (00:01.0-00:01.7, 00:02.0, ...),
    up to 240. Either way bus 0's devfn order, which is the order in which
    Linux numbers the buses behind the ports and finds the devices ("bus
    order"), is the --devices order.
    """
    slots = list(PCI_SLOTS)
    if n <= len(slots):
        return [(slots[i], 0) for i in range(n)]
    if n > len(slots) * PCI_FUNCTIONS:
        raise ValueError(f"{n} devices are too many for q35's bus 0: its {len(slots)} free "
                         f"slots take {PCI_FUNCTIONS} root ports each, so "
                         f"{len(slots) * PCI_FUNCTIONS} devices at most")
    return [(slots[i // PCI_FUNCTIONS], i % PCI_FUNCTIONS) for i in range(n)]


def root_port_args(i, addr, multifunction):
    """The -device of root port rp{i} at bus 0 address ADDR (slot, function). Its
    chassis and (PCIe) slot numbers are i + 1, unique per port; function 0 of a slot
    that holds several ports is the multifunction device."""
    slot, fn = addr
    mf = ",multifunction=on" if multifunction and fn == 0 else ""
    return ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1},slot={i + 1},bus=pcie.0,"
            f"addr=0x{slot:02x}.{fn}{mf}"]


def qemu_device_args(args, devs, run):
    qargs = []
    pci = args.transport != "mmio"
    addrs = root_port_addrs(len(devs)) if pci else []
    multifunction = any(fn for _, fn in addrs)
    suffix = "-pci" if pci else "-device"
    for i, name in enumerate(devs):
        base = device_base(name)
        qdev, props, extra = DEVICES[base]
        n = "" if name == base else name[len(base):]
        # QEMU ids start with a letter: "9p" becomes "fs9p".
        dev_id = f"{'fs' if base[0].isdigit() else ''}{base}{n or 0}"
        if base == "badblk":  # badblk:PRESET: numbered in order, badblk0, badblk1, ...
            k = badblk_index(devs, name)
            n, dev_id, props = "", f"badblk{k}", props.format(k=k)
        elif n:  # a second device of a kind: give it its own backend ids
            props = props.replace("0", n)
            extra = [e.replace("0,", f"{n},").replace("0.img", f"{n}.img").replace("/9p", f"/9p{n}")
                     .replace("id=netdev0", f"id=netdev{n}").replace("id=fsdev0", f"id=fsdev{n}")
                     for e in extra]
        prop = f"{qdev}{suffix},id={dev_id}{props}"
        if pci:
            qargs += root_port_args(i, addrs[i], multifunction)
            prop += f",bus=rp{i}"
            if args.transport == "pci-legacy" and base not in MODERN_ONLY:
                prop += ",disable-modern=on,disable-legacy=off"
        if args.ring == "packed":
            prop += ",packed=on"
        if base == "net" and args.net_backend == "tap":
            nq = getattr(args, "net_queues", 1)
            extra = ["-netdev", f"tap,id=netdev{n or 0},ifname={TAP_NAME.format(k=n or 0)},"
                     "script=no,downscript=no,vnet_hdr=on" + (f",queues={nq}" if nq > 1 else "")]
            if nq > 1:
                # Multiqueue, with a vector per queue, the config and the control queue (pci),
                # as C's virtnet_find_vqs wants them.
                prop += ",mq=on" + (f",vectors={2 * nq + 2}" if pci else "")
                if getattr(args, "net_rss", False):
                    # RSS and hash reports (QEMU: mq and a vnet-header peer; eBPF steering if
                    # it can load it, else its own RSS).
                    prop += ",rss=on,hash=on"
        for j, e in enumerate(extra):
            e = e.format(run=run, id=dev_id)
            qargs.append(drive_opts(args, name, e) if j and extra[j - 1] == "-drive" else e)
        if name in args.device_props:
            qdev_name, _, opts = prop.partition(",")
            prop = f"{qdev_name},{merge_opts(opts, args.device_props[name])}"
        qargs += ["-device", prop]
        if base == "blk":
            img = os.path.join(run, f"blk{n or 0}.img")
            with open(img, "wb") as f:
                f.truncate(args.disk_size * 1024 * 1024)
        if base == "9p":
            os.makedirs(os.path.join(run, f"9p{n}"), exist_ok=True)
        if base == "scsi":
            img = os.path.join(run, f"scsi{n or 0}.img")
            with open(img, "wb") as f:
                f.truncate(args.disk_size * 1024 * 1024)
            qargs += ["-drive", drive_opts(args, name, f"if=none,id=scsidrv{n or 0},file={img},"
                                           "format=raw,cache=unsafe"),
                      "-device", f"scsi-hd,drive=scsidrv{n or 0},bus={dev_id}.0"]
        if base == "console":
            # The port's host side: a socket that `vrs-host port` drives (Guest.port_request).
            qargs += ["-chardev", f"socket,id=vcon{n or 0},path={run}/vport{n or 0}.sock,"
                      "server=on,wait=off",
                      "-device", f"virtserialport,bus={dev_id}.0,chardev=vcon{n or 0},name=vrs.port{n or 0},"
                      f"id=vrsport{n or 0}"]
            if args.hvc and not n:
                # A console port (port 0, /dev/hvc0) whose host side is a socket that
                # `vrs-host port hvc0` drives; what the guest writes is also logged.
                qargs += ["-chardev", f"socket,id=vhvc0,path={run}/vhvc0.sock,server=on,"
                          f"wait=off,logfile={run}/vhvc0.log",
                          "-device", f"virtconsole,bus={dev_id}.0,chardev=vhvc0,name=vrs.hvc0,"
                          "id=vrshvc0",
                          # For a console port the guest hot-adds (QMP device_add virtconsole
                          # with chardev vhvc1): `vrs-host port hvc1`.
                          "-chardev", f"socket,id=vhvc1,path={run}/vhvc1.sock,server=on,wait=off"]
            # And qemu-guest-agent's port, on a socket that `vrs-host ga` speaks the agent
            # protocol on (Guest.ga_request).
            qargs += ["-chardev", f"socket,id=vga{n or 0},path={run}/vga{n or 0}.sock,"
                      "server=on,wait=off",
                      "-device", f"virtserialport,bus={dev_id}.0,chardev=vga{n or 0},"
                      f"name=org.qemu.guest_agent.{n or 0},id=vrsga{n or 0}"]
        if base == "badrng":
            qargs += ["-chardev", f"socket,id=badrngchr{n or 0},path={run}/badrng{n or 0}.sock"]
        if base == "badblk":
            qargs += ["-chardev", f"socket,id=badblkchr{k},path={run}/badblk{k}.sock"]
    if any(device_base(d) in VHOST_USER for d in devs):
        # vhost-user: the backend maps guest memory, so it must be shareable.
        qargs += ["-object", f"memory-backend-memfd,id=vrsmem,size={args.mem}M,share=on",
                  "-numa", "node,memdev=vrsmem"]
    return qargs


def net_wrap(args, qcmd):
    """QCMD, run the way the net backend needs: with --net-backend tap, inside a network
    namespace of its own that has the taps of the net devices on a bridge (TAP_SETUP)."""
    if args.net_backend != "tap":
        return qcmd
    taps = [device_base(d) == "net" for d in args.devs]
    nums = [int(d[len("net"):] or 0) for d, t in zip(args.devs, taps) if t]
    return ["unshare", "--net", "--", "sh", "-c", TAP_SETUP, "vrs-tap",
            str(max(nums) + 1 if nums else 0), str(getattr(args, "net_queues", 1)), *qcmd]


def start_baddev(args, run):
    """Starts one baddev backend per badrng and badblk device, listening before QEMU
    connects. Each logs to <console log>-badrngN.log or -badblkN.log."""
    procs = []
    baddev = os.path.join(BUILD, "baddev")
    for name in args.devs:
        base = device_base(name)
        if base == "badrng":
            tag = f"badrng{name[len('badrng'):] or '0'}"
            sock = os.path.join(run, f"{tag}.sock")
            argv = [baddev, "--socket", sock, "--lie", args.badrng_lie]
        elif base == "badblk":
            tag = f"badblk{badblk_index(args.devs, name)}"
            sock = os.path.join(run, f"{tag}.sock")
            preset = name.partition(":")[2]
            argv = [baddev, "blk", "--socket", sock, "--control", os.path.join(run, f"{tag}.ctl")]
            if preset.startswith("req-"):
                argv += ["--config", "honest", "--lie", preset[len("req-"):]]
            else:
                argv += ["--config", preset]
        else:
            continue
        log = f"{os.path.splitext(args.log)[0]}-{tag}.log"
        with open(log, "w") as f:
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        procs.append(p)
        for _ in range(100):
            if os.path.exists(sock) or p.poll() is not None:
                break
            time.sleep(0.1)
        if not os.path.exists(sock):
            stop_baddev(procs)
            die(f"baddev did not start listening on {sock}; its log: {log}", 125)
    return procs


def stop_baddev(procs):
    for p in procs:  # each exits by itself when QEMU hangs up
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def per_run_cpio(args, run, cmd):
    """A small second archive, appended to the image: /vrs/env, /vrs/cmd, extras."""
    gen = os.path.join(BUILD, "gen_init_cpio")
    lines = ["dir /vrs 755 0 0", "dir /usr 755 0 0", "dir /usr/local 755 0 0",
             "dir /usr/local/bin 755 0 0"]
    env = os.path.join(run, "env")
    with open(env, "w") as f:
        for k, v in (("VRS_DRIVERS", args.drivers), ("VRS_TRANSPORT", args.transport),
                     ("VRS_RING", args.ring), ("VRS_DEVICES", ",".join(args.devs)),
                     ("VRS_FLAVOUR", args.flavour), ("VRS_MODE", "shell" if args.shell else "run"),
                     ("VRS_BADRNG_LIE", args.badrng_lie), ("VRS_NET_BACKEND", args.net_backend),
                     ("VRS_NET_QUEUES", str(args.net_queues if args.net_backend == "tap" else 1)),
                     ("VRS_NET_RSS", "1" if args.net_backend == "tap" and args.net_queues > 1
                      and args.net_rss else "0")):
            f.write(f"{k}={shlex.quote(v)}\n")
    lines.append(f"file /vrs/env {env} 644 0 0")
    cmdf = os.path.join(run, "cmd")
    with open(cmdf, "w") as f:
        f.write(cmd + "\n")
    lines.append(f"file /vrs/cmd {cmdf} 755 0 0")
    for b in args.add_bin:
        src = shutil.which(b) or b
        if not os.path.isfile(src):
            die(f"--add-bin {b}: no such file or command on the host")
        lines.append(f"file /usr/local/bin/{os.path.basename(src)} {os.path.abspath(src)} 755 0 0")
    lst = os.path.join(run, "extra.list")
    with open(lst, "w") as f:
        f.write("\n".join(lines) + "\n")
    out = os.path.join(run, "initrd")
    with open(out, "wb") as o:
        with open(os.path.join(BUILD, f"initramfs-{args.flavour}.cpio"), "rb") as base:
            shutil.copyfileobj(base, o, 1 << 20)
        o.write(subprocess.run([gen, lst], check=True, capture_output=True).stdout)
    return out


class Guest:
    def __init__(self, args, run_dir=None):
        self.args = args
        self.run_dir = run_dir
        self.rc = None
        self.qmp = None
        self.writer = None
        self.out = open(args.output, "w") if args.output else None
        self.ports = {}  # console device -> (reader, writer) of its port's host side
        self.port_seen = {}  # console device -> what expect read and has not matched yet
        self.ga = {}  # console device -> (reader, writer) of its agent port's host side
        self.servers = {}  # console device -> its port_server.py process (port serve)

    async def qmp_connect(self, path):
        from qemu.qmp import QMPClient
        self.qmp = QMPClient("vrs")
        for _ in range(100):
            try:
                await self.qmp.connect(path)
                return
            except Exception:  # noqa: BLE001 - QEMU may not listen yet
                await asyncio.sleep(0.1)
        print("vm: warning: could not connect to QMP", file=sys.stderr)
        self.qmp = None

    async def host_request(self, text):
        try:
            req = json.loads(text)
            if self.qmp is None:
                raise RuntimeError("QMP is not connected")
            res = await self.qmp.execute(req["execute"], req.get("arguments"))
            reply = {"return": res}
        except Exception as e:  # noqa: BLE001 - every failure goes back to the guest
            reply = {"error": {"class": type(e).__name__, "desc": str(e)}}
        self.writer.write((json.dumps(reply) + "\n").encode())
        await self.writer.drain()

    async def baddev_request(self, text):
        """`DEVICE COMMAND`: COMMAND's answer from the control socket of DEVICE's baddev
        (badblk only), line by line, then `@@VRS-END STATUS` (0, or 1 on an error)."""
        lines, status = [], 0
        try:
            dev, _, command = text.strip().partition(" ")
            devs = self.args.devs
            if dev in devs and device_base(dev) == "badblk":
                dev = f"badblk{badblk_index(devs, dev)}"
            ctl = os.path.join(self.run_dir or "", f"{dev}.ctl")
            if not dev.startswith("badblk") or not os.path.exists(ctl):
                raise RuntimeError(f"no baddev control socket for '{dev}' (badblkN or "
                                   "badblk:PRESET of --devices)")
            r, w = await asyncio.wait_for(asyncio.open_unix_connection(ctl), 10)
            w.write((command.strip() + "\n").encode())
            await w.drain()
            data = await asyncio.wait_for(r.read(), 30)
            w.close()
            lines = data.decode(errors="replace").splitlines()
            if lines and lines[0].startswith("error:"):
                status = 1
        except Exception as e:  # noqa: BLE001 - every failure goes back to the guest
            lines, status = [f"error: {type(e).__name__}: {e}"], 1
        for line in lines:
            self.writer.write((line + "\n").encode())
        self.writer.write(f"@@VRS-END {status}\n".encode())
        await self.writer.drain()

    async def port_request(self, text):
        """`DEVICE OP [ARG]`: the host side of the virtserialport of console device DEVICE
        (console, console1, ...; scripts/vm names its port vrs.portN), or of the console port
        hvc0 (--hvc), or hvc1 (--hvc: the chardev vhvc1, for a virtconsole the guest adds).
        OP: connect, close (the port's host side opens or closes), send N (N random bytes;
        answers their SHA-256), recv N (reads exactly N bytes; answers their SHA-256), write
        TEXT (TEXT and Enter), expect TEXT (reads until TEXT comes; answers its line), log
        TEXT (hvc0: TEXT is in QEMU's log of what the guest wrote), serve (the host side is
        scripts/port_server.py, in a process of its own, until the guest stops: make bench
        DEVICE=console's). Answers line by line, then `@@VRS-END STATUS` (0, or 1 on an
        error)."""
        lines, status = [], 0
        try:
            words = text.split()
            dev, op = words[0], words[1]
            n = int(words[2]) if len(words) > 2 and op in ("send", "recv") else 0
            if dev in ("hvc0", "hvc1"):
                if not self.args.hvc:
                    raise RuntimeError(f"no console port {dev}: scripts/vm needs --hvc")
                sock = f"v{dev}.sock"
            elif dev not in self.args.devs or device_base(dev) != "console":
                raise RuntimeError(f"no console device '{dev}' in --devices")
            else:
                sock = f"vport{dev[len('console'):] or '0'}.sock"
            sock = os.path.join(self.run_dir or "", sock)
            if op in ("connect", "serve") and (dev in self.ports or dev in self.servers):
                raise RuntimeError(f"{dev}: already connected")
            if op == "serve":
                p = await asyncio.create_subprocess_exec(
                    sys.executable, os.path.join(ROOT, "scripts", "port_server.py"), sock,
                    stdout=asyncio.subprocess.PIPE)
                self.servers[dev] = p
                said = await asyncio.wait_for(p.stdout.readline(), 20)
                if said.strip() != b"connected":
                    self.servers.pop(dev)
                    raise RuntimeError(f"{dev}: port_server.py did not connect")
            elif op == "connect":
                self.ports[dev] = await asyncio.wait_for(asyncio.open_unix_connection(sock), 10)
            elif op == "close":
                self.port_seen.pop(dev, None)
                _, w = self.ports.pop(dev)
                w.close()
                await w.wait_closed()
            elif op == "send":
                data = os.urandom(n)
                _, w = self.ports[dev]
                w.write(data)
                await asyncio.wait_for(w.drain(), 120)
                lines = [hashlib.sha256(data).hexdigest()]
            elif op == "recv":
                r, _ = self.ports[dev]
                data = await asyncio.wait_for(r.readexactly(n), 120)
                lines = [hashlib.sha256(data).hexdigest()]
            elif op == "write":
                # The rest of the line, and a newline (a terminal's Enter: "\r").
                _, w = self.ports[dev]
                w.write(text.split(None, 2)[2].encode() + b"\r")
                await asyncio.wait_for(w.drain(), 30)
            elif op == "expect":
                # Reads until the rest of the line shows up in what the guest sent since
                # the last expect (at most 30 s); answers the line it is on.
                want = text.split(None, 2)[2].encode()
                r, _ = self.ports[dev]
                seen = self.port_seen.get(dev, b"")
                while want not in seen:
                    chunk = await asyncio.wait_for(r.read(4096), 30)
                    if not chunk:
                        raise RuntimeError(f"{dev}: end of file before {want!r}")
                    seen += chunk
                i = seen.index(want)
                start = seen.rfind(b"\n", 0, i) + 1
                end = seen.find(b"\n", i)
                end = len(seen) if end < 0 else end
                lines = [seen[start:end].decode(errors="replace").rstrip("\r")]
                self.port_seen[dev] = seen[i + len(want):]
            elif op == "log":
                # Whether the rest of the line is in everything the guest wrote to hvc0 so
                # far, connected or not (QEMU's chardev log).
                if dev != "hvc0":
                    raise RuntimeError("log: hvc0 only")
                want = text.split(None, 2)[2].encode()
                with open(os.path.join(self.run_dir or "", "vhvc0.log"), "rb") as f:
                    data = f.read()
                if want not in data:
                    raise RuntimeError(f"{want!r} is not in the {len(data)} bytes of hvc0's log")
                lines = [f"found in {len(data)} bytes"]
            else:
                raise RuntimeError(f"unknown port operation '{op}'")
        except KeyError as e:
            lines, status = [f"error: {e} is not connected"], 1
        except Exception as e:  # noqa: BLE001 - every failure goes back to the guest
            lines, status = [f"error: {type(e).__name__}: {e}"], 1
        for line in lines:
            self.writer.write((line + "\n").encode())
        self.writer.write(f"@@VRS-END {status}\n".encode())
        await self.writer.drain()

    async def ga_request(self, text):
        """`DEVICE JSON`: one qemu-guest-agent command, JSON, over the agent port of console
        device DEVICE (org.qemu.guest_agent.N): the host side connects on the first request
        and stays connected. Each request first syncs with guest-sync-delimited (a fresh id;
        everything up to the agent's 0xFF sentinel, such as a late reply to an earlier
        request that timed out, is dropped; then the reply carrying that id), then sends the
        command and reads its reply, every step within GA_TIMEOUT seconds. Answers the reply
        on one line (keys sorted, no spaces), then `@@VRS-END STATUS` (0 if it has
        "return", 1 otherwise)."""
        lines, status = [], 1
        try:
            dev, _, cmd = text.strip().partition(" ")
            if dev not in self.args.devs or device_base(dev) != "console":
                raise RuntimeError(f"no console device '{dev}' in --devices")
            req = json.loads(cmd)
            if dev not in self.ga:
                sock = os.path.join(self.run_dir or "", f"vga{dev[len('console'):] or '0'}.sock")
                self.ga[dev] = await asyncio.wait_for(
                    asyncio.open_unix_connection(sock, limit=1 << 22), GA_TIMEOUT)
            r, w = self.ga[dev]
            sync_id = int.from_bytes(os.urandom(4), "little") & 0x7fffffff
            w.write(json.dumps({"execute": "guest-sync-delimited",
                                "arguments": {"id": sync_id}}).encode() + b"\n")
            await w.drain()
            try:
                await asyncio.wait_for(r.readuntil(b"\xff"), GA_TIMEOUT)
                while True:
                    line = await asyncio.wait_for(r.readline(), GA_TIMEOUT)
                    if not line:
                        raise RuntimeError("the agent port's host side was closed")
                    try:
                        if json.loads(line).get("return") == sync_id:
                            break
                    except ValueError:
                        pass
            except asyncio.TimeoutError:
                raise RuntimeError(f"no reply to guest-sync-delimited in {GA_TIMEOUT} s: "
                                   "is qemu-ga running on the port?") from None
            w.write(json.dumps(req).encode() + b"\n")
            await w.drain()
            line = await asyncio.wait_for(r.readline(), GA_TIMEOUT)
            reply = json.loads(line)
            lines = [json.dumps(reply, sort_keys=True, separators=(",", ":"))]
            status = 0 if "return" in reply else 1
        except Exception as e:  # noqa: BLE001 - every failure goes back to the guest
            if isinstance(e, asyncio.TimeoutError):
                e = RuntimeError(f"no reply in {GA_TIMEOUT} s")
            lines, status = [f"error: {type(e).__name__}: {e}"], 1
        for line in lines:
            self.writer.write((line + "\n").encode())
        self.writer.write(f"@@VRS-END {status}\n".encode())
        await self.writer.drain()

    async def control(self, reader, writer):
        self.writer = writer
        buf = b""
        while True:
            data = await reader.read(4096)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace").rstrip("\r")
                if text.startswith("@@VRS-EXIT "):
                    try:
                        self.rc = int(text.split()[1])
                    except ValueError:
                        self.rc = 125
                    continue
                if text.startswith("@@VRS-HOST "):
                    await self.host_request(text[len("@@VRS-HOST "):])
                    continue
                if text.startswith("@@VRS-BADDEV "):
                    await self.baddev_request(text[len("@@VRS-BADDEV "):])
                    continue
                if text.startswith("@@VRS-PORT "):
                    await self.port_request(text[len("@@VRS-PORT "):])
                    continue
                if text.startswith("@@VRS-GA "):
                    await self.ga_request(text[len("@@VRS-GA "):])
                    continue
                print(text, flush=True)
                if self.out:
                    self.out.write(text + "\n")
                    self.out.flush()


async def run(args, cmd):
    run_dir = tempfile.mkdtemp(prefix="run-", dir=os.path.join(BUILD, "runs"))
    os.makedirs(os.path.dirname(args.log) or ".", exist_ok=True)
    initrd = per_run_cpio(args, run_dir, cmd)
    kvm = args.accel == "kvm" or (args.accel == "auto" and kvm_works())
    accel = ["-accel", "kvm", "-cpu", "host"] if kvm else ["-accel", "tcg", "-cpu", "max"]
    # microvm's virtio-mmio defaults to the legacy (version 1) register
    # layout; pci-legacy covers legacy, so mmio is the modern layout.
    machine = (["-M", "microvm,acpi=off", "-global", "virtio-mmio.force-legacy=false"]
               if args.transport == "mmio" else ["-M", "q35"])
    append = ["console=ttyS0", "panic=-1", "rdinit=/init", "quiet" if args.quiet else "loglevel=7",
              # pm_test=devices suspends and resumes every device, then waits 5 s by
              # default, for a human to watch: nothing to watch here.
              "suspend.pm_test_delay=0"]
    if args.transport == "mmio":
        append.append("reboot=t")
    if args.hvc:
        # Kernel messages on hvc0 too, once a driver registers it; ttyS0, named last, stays
        # /dev/console.
        append.insert(0, "console=hvc0")
    append += args.append
    dev_args = qemu_device_args(args, args.devs, run_dir)
    ctl = os.path.join(run_dir, "ctl.sock")
    qmp = args.qmp or os.path.join(run_dir, "qmp.sock")
    guest = Guest(args, run_dir)
    server = await asyncio.start_unix_server(guest.control, path=ctl)
    baddevs = start_baddev(args, run_dir)
    # Under TCG, QEMU 7.2 translates a guest whose machine can never have a
    # second vCPU (maxcpus 1) without CF_PARALLEL: it then emits no host
    # barrier for the guest's (mfence, or the kernel's "lock; addl"), and a
    # locked add is a plain load and store. The vCPU is alone, but the
    # devices run in other host threads: virtio's "store; full barrier; load"
    # handshakes break, and interrupts get lost (tools/testing/virtio_rs/
    # litmus shows it; fixed for explicit barriers in QEMU 8.1, c914d46d).
    # A possible second vCPU that is never started makes QEMU translate
    # for parallel execution: the barriers are real again.
    smp = str(args.smp)
    if not kvm:
        smp += f",maxcpus={args.maxcpus or max(args.smp, 2)}"
    qcmd = ["qemu-system-x86_64", *machine, *accel, "-smp", smp, "-m", str(args.mem),
            "-nodefaults", "-no-reboot", "-display", "none", "-vga", "none",
            "-kernel", kernel_path(args.flavour), "-initrd", initrd, "-append", " ".join(append),
            "-chardev", f"socket,id=ctl,path={ctl}",
            "-qmp", f"unix:{qmp},server=on,wait=off", *dev_args, *args.qemu_arg]
    if args.shell:
        qcmd += ["-serial", "mon:stdio"]
    else:
        qcmd += ["-serial", f"file:{args.log}"]
    if args.transport == "mmio":
        qcmd += ["-device", "isa-serial,chardev=ctl,iobase=0x2f8,irq=3"]
    else:
        qcmd += ["-serial", "chardev:ctl"]
    qcmd = net_wrap(args, qcmd)
    with open(os.path.join(run_dir, "qemu-cmdline"), "w") as f:
        f.write(shlex.join(qcmd) + "\n")
    accel_name = "KVM" if kvm else "TCG"
    if not args.quiet_runner:
        print(f"vm: {args.flavour} kernel, {args.transport}/{args.ring}, {accel_name}, "
              f"devices={','.join(args.devs) or 'none'}, drivers={args.drivers}, log={args.log}",
              file=sys.stderr)
    proc = await asyncio.create_subprocess_exec(
        *qcmd, stdin=None if args.shell else subprocess.DEVNULL,
        stderr=None if args.shell else asyncio.subprocess.PIPE)
    await guest.qmp_connect(qmp)
    try:
        if args.shell:
            await proc.wait()
        else:
            await asyncio.wait_for(proc.wait(), args.timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        print(f"vm: guest timed out after {args.timeout} s and was killed; console log: {args.log}",
              file=sys.stderr)
        return 124
    finally:
        server.close()
        stop_baddev(baddevs)
        for p in guest.servers.values():
            try:
                p.kill()
            except ProcessLookupError:
                pass
            await p.wait()
        if guest.qmp is not None:
            try:
                await guest.qmp.disconnect()
            except Exception:  # noqa: BLE001
                pass
    await asyncio.sleep(0.1)  # let the control channel drain
    if args.shell:
        return 0
    err = (await proc.stderr.read()).decode(errors="replace").strip() if proc.stderr else ""
    if proc.returncode != 0 and guest.rc is None:
        print(f"vm: qemu failed (status {proc.returncode}): {err}", file=sys.stderr)
        return 125
    if guest.rc is None:
        print(f"vm: the guest stopped without reporting a status; console log: {args.log}",
              file=sys.stderr)
        return 125
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return guest.rc


def main():
    ap = argparse.ArgumentParser(
        prog="scripts/vm", description="Boot a virtio-rs guest and run COMMAND in it "
        "(default: the device report). Exit status: the command's; 124 on timeout.")
    ap.add_argument("--flavour", default="debug", help=f"kernel flavour: {', '.join(FLAVOURS)}")
    ap.add_argument("--transport", default="pci", help=f"{', '.join(TRANSPORTS)}")
    ap.add_argument("--ring", default="split", help=f"{', '.join(RINGS)}")
    ap.add_argument("--devices", default="all",
                    help=f"comma-separated: {', '.join(ALL)}, input (=keyboard,mouse,tablet), "
                    "all, none; a trailing digit adds another of a kind (rng,rng1). Lying "
                    "vhost-user devices served by build/baddev (pci/split only): badrng (see "
                    "--badrng-lie) and badblk:PRESET, a virtio-blk RAM disk, one backend per "
                    "disk, its serial the preset. A config preset makes its config space lie "
                    f"({', '.join(p for p in BADBLK_PRESETS if not p.startswith('req-'))}); a "
                    "request preset req-LIE has the honest config plus discard and write "
                    "zeroes, and lies in its answers: req-honest (none), req-ioerr (reads at or "
                    "past half the disk get IOERR), req-unsupp (DISCARD and WRITE_ZEROES get "
                    "UNSUPP), "
                    "req-used-len-huge and req-used-len-0 (those reads' used length is "
                    "0xffffffff or 0), req-bad-id (they are followed by a used element whose id "
                    "is the queue size), req-dup-id (by their head used again), req-never (they "
                    "are never answered), req-irq-storm (answered, then a storm of interrupts "
                    "with nothing used). Every badblk "
                    "logs its requests: in the guest, 'vrs-host baddev badblkN|badblk:PRESET "
                    "log|clear' reads or empties the log")
    ap.add_argument("--drivers", default="mixed",
                    help="rust: load the Rust drivers; c: the C drivers; mixed: Rust where "
                    "one exists, C otherwise; none")
    ap.add_argument("--timeout", type=int, default=300, help="seconds before a hung guest is killed")
    ap.add_argument("--log", help="console log file (default: build/logs/vm-<time>.log)")
    ap.add_argument("--output", help="also write the command's output to this file")
    ap.add_argument("--qmp", help="QMP socket path (default: inside the run directory)")
    ap.add_argument("--add-bin", action="append", default=[], metavar="PATH",
                    help="copy a host binary into the guest's /usr/local/bin")
    ap.add_argument("--accel", default="auto", help="auto (KVM only if a probe boots), tcg, kvm")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--maxcpus", type=int, default=0,
                    help="QEMU's maxcpus (default: under TCG, at least 2, so that a 1-vCPU "
                    "guest's memory barriers are real; 1 reproduces QEMU 7.2's lost barriers)")
    ap.add_argument("--mem", type=int, default=1024, help="guest memory in MiB")
    ap.add_argument("--disk-size", type=int, default=256, help="virtio-blk/scsi image size in MiB")
    ap.add_argument("--device-props", action="append", default=[], metavar="NAME=PROPS",
                    help="more QEMU -device properties for device NAME of --devices, replacing "
                    "the defaults key by key, e.g. blk1=num-queues=2 (repeatable)")
    ap.add_argument("--drive-props", action="append", default=[], metavar="NAME=OPTS",
                    help="more -drive options for the disk of device NAME (blk, scsi), e.g. "
                    "blk2=readonly=on, blk=cache=none,aio=threads,discard=unmap; a driver= "
                    "(e.g. blk=driver=null-co,read-zeroes=on) replaces the raw image, and its "
                    "size= defaults to --disk-size (repeatable)")
    ap.add_argument("--net-backend", default="hub", choices=NET_BACKENDS,
                    help="what the net devices are plugged into: hub (a QEMU hub, no "
                    "offloads offered) or tap (a tap with vnet headers each, on one bridge, in "
                    "a network namespace made for the run and gone with it; needs root: QEMU "
                    "then offers checksum and segmentation offloads). Per-device virtio-net "
                    "properties choose the RX path: e.g. --device-props "
                    "net1=host_mtu=9000,mrg_rxbuf=off")
    ap.add_argument("--net-queues", type=int, default=1, metavar="N",
                    help="queue pairs of each net device on --net-backend tap (default 1): "
                    "above 1, a multiqueue tap with N queues and a virtio-net device with mq=on "
                    "(and 2N+2 vectors on pci)")
    ap.add_argument("--net-rss", action="store_true",
                    help="with --net-queues above 1: virtio-net devices with rss=on,hash=on "
                    "(VIRTIO_NET_F_RSS and VIRTIO_NET_F_HASH_REPORT)")
    ap.add_argument("--hvc", action="store_true",
                    help="with a console device: a console port (virtconsole, /dev/hvc0) on its "
                    "bus, whose host side 'vrs-host port hvc0' drives, and console=hvc0")
    ap.add_argument("--append", action="append", default=[], help="extra kernel command line")
    ap.add_argument("--qemu-arg", action="append", default=[], help="extra QEMU argument")
    ap.add_argument("--badrng-lie", default="cycle", choices=BADRNG_LIES,
                    help="used length the badrng device reports: cycle (each in turn), honest, "
                    "oversize, zero, huge (0xffffffff)")
    ap.add_argument("--shell", action="store_true", help="interactive shell on the console")
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    ap.add_argument("--quiet", action="store_true", help="quiet kernel console")
    ap.add_argument("--quiet-runner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("command", nargs=argparse.REMAINDER, help="command to run in the guest")
    args = ap.parse_args()
    for name, val, valid in (("flavour", args.flavour, FLAVOURS), ("transport", args.transport, TRANSPORTS),
                             ("ring", args.ring, RINGS), ("drivers", args.drivers, DRIVERS),
                             ("accel", args.accel, ("auto", "tcg", "kvm"))):
        if val not in valid:
            die(f"unknown {name} '{val}' (valid: {', '.join(valid)})")
    args.devs = parse_devices(args.devices)
    args.device_props = parse_props(args.device_props, args.devs, "device-props")
    args.drive_props = parse_props(args.drive_props, args.devs, "drive-props")
    for name in args.drive_props:
        if name.rstrip("0123456789") not in ("blk", "scsi"):
            die(f"--drive-props {name}=...: only blk and scsi devices have a drive")
    if args.transport == "mmio" and len(args.devs) > 8:
        die(f"mmio (microvm) has 8 virtio-mmio slots and {len(args.devs)} devices were asked for:"
            " pass --devices with at most 8 (e.g. --devices rng,blk,net)")
    if args.transport != "mmio":
        try:
            root_port_addrs(len(args.devs))
        except ValueError as e:
            die(f"{e} (on pci and pci-legacy every device has a PCIe root port of its own)")
    if args.disk_size < 1:
        die(f"--disk-size {args.disk_size}: the disks need at least 1 MiB")
    lying = sorted({device_base(d) for d in args.devs} & set(VHOST_USER))
    if lying:
        if args.transport != "pci" or args.ring != "split":
            die(f"{' and '.join(lying)} (vhost-user) need{'s' if len(lying) == 1 else ''} "
                "--transport pci --ring split: baddev has no packed rings, and mmio/legacy are "
                "not needed to test a lying device")
        if subprocess.run([os.path.join(ROOT, "scripts/baddev.sh")],
                          stdout=subprocess.DEVNULL).returncode != 0:
            die("scripts/baddev.sh failed")
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    cmd = shlex.join(cmd) if len(cmd) > 1 else (cmd[0] if cmd else "vrs-report")
    for f in (kernel_path(args.flavour), os.path.join(BUILD, f"initramfs-{args.flavour}.cpio")):
        if not os.path.exists(f):
            die(f"{f} is missing: run 'make guest FLAVOUR={args.flavour}' first")
    os.makedirs(os.path.join(BUILD, "runs"), exist_ok=True)
    if not args.log:
        os.makedirs(os.path.join(BUILD, "logs"), exist_ok=True)
        args.log = os.path.join(BUILD, "logs", time.strftime("vm-%Y%m%d-%H%M%S") + f"-{os.getpid()}.log")
    args.log = os.path.abspath(args.log)
    try:
        sys.exit(asyncio.run(run(args, cmd)))
    except KeyboardInterrupt:
        die("interrupted", 130)


if __name__ == "__main__":
    main()
