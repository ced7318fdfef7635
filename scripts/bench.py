#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare the C and the Rust virtio driver of a device, in one guest.

For every device in DEVICES whose Rust driver module is built, boot one
guest (release kernel by default) with both drivers available and run the
device's workloads with C, then Rust, then C, ... (--rounds each). The
guest half is bench/guest/vrs-bench plus bench/guest/vrs-bench-<device>;
they are copied into the guest with scripts/vm --add-bin, so changing a
workload needs no image rebuild.

Output: a table on the terminal (median, min and max per driver, the
Rust/C ratio of the medians, guest CPU time per operation from /proc/stat
deltas; then per workload a 95 % interval of the Rust/C ratio from the
paired rounds, for throughput and CPU, with a verdict: parity, faster,
slower, undecided), a closing line per device counting the verdicts, a
JSON file with the raw per-round numbers and everything needed to
reproduce the run, and one SVG chart per device drawn by gnuplot, both
under bench/results/. See Documentation/benchmarks.rst.

Exit status: 0 when every benchmarked device produced numbers for every
driver it has (C only when it has no Rust driver and that is allowed);
1 when a driver failed, the guest failed, or nothing was benchmarked;
2 on bad arguments or a missing build.
"""

import argparse
import dataclasses
import glob
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("VRS_BUILD", os.path.join(ROOT, "build"))
GUEST_DIR = os.path.join(ROOT, "bench", "guest")
sys.path.insert(0, os.path.join(ROOT, "scripts"))


@dataclasses.dataclass
class Workload:
    """One measurement the guest repeats every round, for each driver.

    The guest reports an amount of work and the seconds it took; the
    throughput shown is amount / seconds * scale, in unit. Guest CPU time
    is shown per op, where one op is op_amount of the amount.
    """
    name: str           # short id, also the guest's name for it
    arg: str            # what the device's guest script gets (rng: bytes per read)
    label: str          # for the table and the chart
    unit: str           # throughput unit after scaling
    scale: float        # amount/s -> unit
    op: str             # name of one op for the CPU column
    op_amount: float    # amount per op
    # One op in flight at a time (ping-pong): the table also shows 1e6 / the
    # median, the mean time per op in microseconds, under this name.
    per_op_us: str = ""


@dataclasses.dataclass
class Device:
    """A benchmarked device: how to give the guest one, and what to run.

    The guest script is bench/guest/vrs-bench-<name>; see bench/guest/vrs-bench
    for the four shell functions it defines.
    """
    vm_devices: str     # scripts/vm --devices
    virtio_id: int      # virtio device id, to find it in the guest
    c_module: str       # the C driver module
    rust_module: str    # the Rust driver module (build/.../extra/<name>.ko)
    backend: str        # what QEMU does behind the device, for the table
    workloads: list
    smoke: str          # the workload --smoke runs
    vm_args: list = dataclasses.field(default_factory=list)  # more scripts/vm options
    # Called before the guest boots: returns (vm_args, backend), e.g. to
    # adapt to what the host supports.
    setup: object = None
    # The guest script, bench/guest/vrs-bench-<guest> (default: the device's
    # name), and the other bench/guest scripts it sources (copied in too).
    guest: str = ""
    guest_sources: list = dataclasses.field(default_factory=list)
    # Programs the guest script runs: bench/guest/<name>.c each, built statically
    # on the host (build/bench/<name>) and copied in as /usr/local/bin/<name>.
    guest_progs: list = dataclasses.field(default_factory=list)
    # Called with run_guest's result after the table: a line to print under it, or None.
    table_note: object = None
    # In "--device all" (make bench without DEVICE=, and --smoke)? The scale
    # devices are not: they run when named (or as the group "scale").
    in_all: bool = True
    # In "--smoke" without --device (make check's bench-smoke)? Only if its smoke
    # run is cheap on the debug kernel.
    in_smoke: bool = True
    # The length of one measurement in guest seconds when --seconds is not
    # given (0: DEFAULT_SECONDS).
    seconds: float = 0


DEFAULT_SECONDS = 2.0


MIB = 1 << 20


def rng_read(size, label):
    return Workload(f"read-{size}", str(size), label, "MiB/s", 1 / MIB, "KiB", 1024)


def blk_fio(backend, rw, bs, qd, jobs=1):
    """One fio job (bench/guest/vrs-bench-blk): 4 KiB ones in IOPS, the rest in MiB/s.
    The guest reports bytes; CPU time is per I/O either way. With JOBS > 1, that many
    fio jobs of queue depth QD each, their I/O summed (group_reporting)."""
    size = {"4k": 4096, "128k": 131072}[bs]
    iops = size == 4096
    j = (f"-j{jobs}", f":{jobs}", f" x{jobs} jobs") if jobs != 1 else ("", "", "")
    return Workload(f"{backend}-{rw}-{bs}-qd{qd}{j[0]}", f"{backend}:{rw}:{bs}:{qd}{j[1]}",
                    f"{backend} {rw} {bs} QD{qd}{j[2]}", "IOPS" if iops else "MiB/s",
                    1 / size if iops else 1 / MIB, "I/O", size)


BLK_WORKLOADS = [("randread", "4k", 1), ("randread", "4k", 32), ("randwrite", "4k", 32),
                 ("read", "128k", 8), ("write", "128k", 8)]


def blk_setup(dev):
    """The file backend uses O_DIRECT on the host (cache=none) if the host
    filesystem under build/runs supports it, and host page cache otherwise."""
    runs = os.path.join(BUILD, "runs")
    os.makedirs(runs, exist_ok=True)
    direct = True
    try:
        fd, path = tempfile.mkstemp(dir=runs, prefix="odirect-")
        os.close(fd)
        try:
            os.close(os.open(path, os.O_RDWR | os.O_DIRECT))
        except OSError:
            direct = False
        os.remove(path)
    except OSError:
        direct = False
    if direct:
        return dev.vm_args, dev.backend
    note(f"blk: {runs} does not support O_DIRECT: the file backend uses cache=writeback "
         "(host page cache) instead of cache=none")
    return ([a.replace("cache=none", "cache=writeback") for a in dev.vm_args],
            dev.backend.replace("cache=none", "cache=writeback (no O_DIRECT on the host)"))


def blk_queues(n):
    """blk-qN: one null-co disk with N request queues in a 2-vCPU guest, 4 KiB random
    reads from two fio jobs (bench/guest/vrs-bench-blk-q)."""
    return Device(
        vm_devices="blk", virtio_id=2, c_module="virtio_blk", rust_module="virtio_blk_rs",
        backend=f"virtio-blk-pci, num-queues={n}, QEMU null-co (read-zeroes); fio libaio, "
        "O_DIRECT, 2 jobs, 64 MiB region",
        workloads=[blk_fio("null", "randread", "4k", 32, jobs=2)],
        smoke="null-randread-4k-qd32-j2",
        vm_args=["--smp", "2", "--drive-props", "blk=driver=null-co,read-zeroes=on",
                 "--device-props", f"blk=num-queues={n}"],
        guest="blk-q", guest_sources=["blk"], in_all=False)


PROBE_DISKS = 64


def net_tcp(streams):
    """iperf3 TCP from one NIC to the other (bench/guest/vrs-bench-net), in Mbit/s; CPU per
    byte received."""
    s = "stream" if streams == 1 else "streams"
    return Workload(f"tcp-{streams}", f"tcp:{streams}", f"TCP {streams} {s}", "Mbit/s", 8 / 1e6,
                    "B", 1)


NET_WORKLOADS = [
    net_tcp(1), net_tcp(4),
    # iperf3 UDP, 64-byte datagrams, no rate limit: the datagrams received per second.
    Workload("udp-64", "udp:64", "UDP 64 B", "pkt/s", 1.0, "pkt", 1),
    # sockperf ping-pong (UDP, 64-byte messages, one in flight): round trips per
    # second, i.e. 1 / the mean round-trip time, which the table shows too.
    Workload("rr-64", "rr:64", "ping-pong 64 B", "RT/s", 1.0, "RT", 1,
             per_op_us="mean round trip"),
]


def console_stream(kind, size):
    """vrs-vport (bench/guest/vrs-vport.c) through the port: write (guest -> host) or
    read (host -> guest) with SIZE bytes per system call, in MiB/s; CPU per byte."""
    what = {"write": "guest->host", "read": "host->guest"}[kind]
    return Workload(f"{'g2h' if kind == 'write' else 'h2g'}-{size // 1024}k", f"{kind}:{size}",
                    f"{what} {size // 1024} KiB", "MiB/s", 1 / MIB, "B", 1)


CONSOLE_WORKLOADS = [
    console_stream("write", 4096), console_stream("write", 65536),
    console_stream("read", 4096), console_stream("read", 65536),
    # LEN-byte messages the host echoes, one in flight: round trips per second, and
    # the mean round trip in the table.
    *(Workload(f"rr-{n}", f"pingpong:{n}", f"ping-pong {n} B", "RT/s", 1.0, "RT", 1,
               per_op_us="mean round trip") for n in (1, 64)),
]


def console_setup(dev):
    """The host side's own speed (scripts/port_server.py --measure: the same loop
    against a local client), in the backend line: it must be far above what the guest
    gets through the port, or the port's numbers measure the host."""
    r = cmd_out([sys.executable, os.path.join(ROOT, "scripts", "port_server.py"),
                 "--measure", "0.5"], timeout=60)
    try:
        m = json.loads(r)
        cap = (f"host side alone: sink {m['sink_mib_s']} MiB/s, source {m['source_mib_s']} "
               f"MiB/s ({m['write_bytes'] // 1024} KiB), echo {m['pingpong_us']} us per "
               f"{m['pingpong_bytes']} B round trip")
    except (TypeError, ValueError, KeyError):
        cap = "host side alone: not measured (port_server.py --measure failed)"
    note(f"console: {cap}")
    return dev.vm_args, f"{dev.backend}; {cap}"


def console_note(res):
    """How busy the host side was while it served the guest (bench/guest/vrs-bench-console
    asks it at the end)."""
    i = res["info"]
    if "host_side_busy" not in i:
        return None
    busy = float(i["host_side_busy"])
    return (f"host side while serving: {busy * 100:.0f} % of one host core "
            f"({i.get('host_side_cpu_s', '?')} s CPU in {i.get('host_side_serving_s', '?')} s, "
            f"{i.get('host_side_commands', '?')} commands): "
            + ("well below one core, so not what limits the numbers" if busy < 0.5 else
               "WARNING: near one core, the host side may be what limits the numbers"))


# Adding a device: add an entry here and write bench/guest/vrs-bench-<name>.
DEVICES = {
    "rng": Device(
        vm_devices="rng", virtio_id=4, c_module="virtio_rng", rust_module="virtio_rng_rs",
        backend="virtio-rng-pci, QEMU rng-builtin backend",
        workloads=[rng_read(64, "read 64 B"), rng_read(4096, "read 4 KiB"),
                   rng_read(65536, "read 64 KiB")],
        smoke="read-4096"),
    # Two disks, switched together: "null" (QEMU null-co, no storage behind
    # it: driver and virtqueue cost) and "file" (a raw image, O_DIRECT on
    # the host). fio, libaio, O_DIRECT in the guest.
    "blk": Device(
        vm_devices="blk,blk1", virtio_id=2, c_module="virtio_blk", rust_module="virtio_blk_rs",
        backend="virtio-blk-pci x2: QEMU null-co (read-zeroes) and a raw file "
        "(cache=none, aio=threads); fio libaio, O_DIRECT, 64 MiB region",
        workloads=[blk_fio(b, rw, bs, qd) for b in ("null", "file") for rw, bs, qd in BLK_WORKLOADS],
        smoke="null-randread-4k-qd32",
        vm_args=["--drive-props", "blk=driver=null-co,read-zeroes=on",
                 "--drive-props", "blk1=cache=none,aio=threads"],
        setup=blk_setup),
    # Two NICs, switched together, each in a network namespace of its own in
    # the guest, on taps with vnet headers bridged in QEMU's own namespace
    # (scripts/vm --net-backend tap): offloads offered, GSO packets cross.
    # Client and sender on the first NIC, servers and receiver on the second.
    "net": Device(
        vm_devices="net,net1", virtio_id=1, c_module="virtio_net", rust_module="virtio_net_rs",
        backend="virtio-net-pci x2, tap,vnet_hdr=on each, one bridge; guest netns a -> b; "
        "iperf3 and sockperf",
        workloads=NET_WORKLOADS, smoke="rr-64", vm_args=["--net-backend", "tap"], seconds=6,
        # About two minutes on the debug kernel (a 10-ms round trip under KASAN):
        # --smoke --device net runs it when asked.
        in_smoke=False),
    # One virtio-serial device with one named port (vrs.port0) on a host socket; the
    # host side is scripts/port_server.py, the guest side bench/guest/vrs-vport.
    "console": Device(
        vm_devices="console", virtio_id=3, c_module="virtio_console",
        rust_module="virtio_console_rs",
        backend="virtio-serial-pci, one virtserialport on a unix socket chardev; host side "
        "scripts/port_server.py",
        workloads=CONSOLE_WORKLOADS, smoke="g2h-4k", guest_progs=["vrs-vport"],
        setup=console_setup, table_note=console_note),
    # Scale (Documentation/benchmarks.rst): does a second request queue help each
    # driver as much (blk-q1 against blk-q2, see SCALINGS), and how fast does each
    # driver probe (and remove) many disks?
    "blk-q1": blk_queues(1),
    "blk-q2": blk_queues(2),
    "blk-probe": Device(
        vm_devices=",".join(["blk"] + [f"blk{i}" for i in range(1, PROBE_DISKS)]), virtio_id=2,
        c_module="virtio_blk", rust_module="virtio_blk_rs",
        backend=f"virtio-blk-pci x{PROBE_DISKS}, 1 MiB raw files; sysfs unbind of all, bind of "
        "all, until every disk is back (guest clock: /proc/timer_list)",
        workloads=[Workload(f"probe-{PROBE_DISKS}", str(PROBE_DISKS), f"probe {PROBE_DISKS} disks",
                            "disks/s", 1.0, "disk", 1)],
        smoke=f"probe-{PROBE_DISKS}", vm_args=["--disk-size", "1"], in_all=False),
}
# --device names that stand for several devices.
DEVICE_GROUPS = {"scale": ["blk-q1", "blk-q2", "blk-probe"]}
# Scaling factors, computed when both devices ran in one invocation: per driver, the
# median of "scaled" over the median of "base", per workload both have; then Rust's
# factor over C's. Issue 13: the factor must be no worse for Rust.
SCALINGS = {"blk-queues": {"base": "blk-q1", "scaled": "blk-q2",
                           "what": "virtio-blk, 2 request queues over 1 (blk-q2 / blk-q1)"}}

# --icount: QEMU's guest clock advances exactly 1 ns per guest instruction (shift=0), and
# does not sleep while the guest idles (sleep=off: idle time warps). So /proc/stat's busy
# time is the instructions the guest executed. icount runs TCG single-threaded.
ICOUNT_ARGS = ["--qemu-arg=-icount", "--qemu-arg=shift=0,sleep=off"]

SIDES = ("c", "rust")
SIDE_NAME = {"c": "C", "rust": "Rust"}


def die(msg, code=2):
    print(f"bench: error: {msg}", file=sys.stderr)
    sys.exit(code)


def note(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def cmd_out(cmd, **kw):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw).stdout.strip()
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None


def host_facts():
    """What a reader needs to reproduce or judge the run, from the host."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = cmd_out(["git", "-C", ROOT, "rev-parse", "HEAD"])
    dirty = bool(cmd_out(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]))
    qemu = cmd_out(["qemu-system-x86_64", "--version"])
    return {
        "qemu": qemu.splitlines()[0] if qemu else "unknown",
        "host_cpu": cpu,
        "host_cpus": os.cpu_count(),
        "host_kernel": platform.release(),
        "commit": commit or "unknown",
        "dirty": dirty,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def device_names(spec, smoke=False):
    """--device SPEC -> the device names, in order, each once: "all" is every device
    with in_all (and in_smoke, for SMOKE), a DEVICE_GROUPS name its devices (e.g.
    blk-q1,blk-q2 or scale)."""
    if spec == "all":
        return [n for n, d in DEVICES.items() if d.in_all and (d.in_smoke or not smoke)]
    names = []
    for d in spec.split(","):
        for n in DEVICE_GROUPS.get(d.strip(), [d.strip()]):
            if n not in names:
                names.append(n)
    return names


def guest_scripts(name, dev):
    """The bench/guest scripts a device's guest needs besides vrs-bench: its own
    (vrs-bench-<guest>, the name vrs-bench sources) and those it sources."""
    return [f"vrs-bench-{g}" for g in [dev.guest or name, *dev.guest_sources]]


def guest_prog(name):
    """build/bench/NAME, built from bench/guest/NAME.c (statically, as the selftests'
    helpers are) when missing or older than its source; None if the build failed."""
    src, out = os.path.join(GUEST_DIR, f"{name}.c"), os.path.join(BUILD, "bench", name)
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    r = subprocess.run(["cc", "-static", "-O2", "-Wall", "-Werror", "-o", out + ".tmp", src],
                       capture_output=True, text=True)
    if r.returncode != 0:
        note(f"cannot build bench/guest/{name}.c (needs a static libc: libc6-dev):\n"
             f"{r.stderr.strip()}")
        return None
    os.replace(out + ".tmp", out)
    return out


def vm_smp(vm_args, default):
    """The guest's vCPUs: the last --smp of the device's scripts/vm options (scripts/vm
    takes the last, and bench.py passes its own --smp before them), else DEFAULT."""
    smp = default
    for i, a in enumerate(vm_args):
        if a == "--smp" and i + 1 < len(vm_args):
            smp = int(vm_args[i + 1])
        elif a.startswith("--smp="):
            smp = int(a.partition("=")[2])
    return smp


def rust_ko(flavour, dev):
    """The Rust driver's .ko in the staged modules, or None."""
    hits = glob.glob(os.path.join(BUILD, f"kbuild-{flavour}", "staging", "lib", "modules", "*",
                                  "extra", f"{dev.rust_module}.ko"))
    return hits[0] if hits else None


def parse_kv(text):
    """'a=1 b='x y' c=z' -> dict (shell-style quoting)."""
    out = {}
    for tok in shlex.split(text):
        k, _, v = tok.partition("=")
        out[k] = v
    return out


def device_seconds(dev, args):
    """One measurement's length for DEV: --seconds, else the device's own
    default, else DEFAULT_SECONDS; with --smoke at most 0.3."""
    s = args.seconds if args.seconds is not None else (dev.seconds or DEFAULT_SECONDS)
    return min(s, 0.3) if args.smoke else s


def run_guest(name, dev, workloads, args, accel, stamp):
    """Boot one guest for DEVICE and collect what vrs-bench printed."""
    seconds = device_seconds(dev, args)
    rust = args.rust_modules[name]
    vm_args, res_backend = dev.setup(dev) if dev.setup else (dev.vm_args, dev.backend)
    log = os.path.join(BUILD, "logs", f"bench-{stamp}-{name}.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    env = [f"VRS_BENCH_DEADLINE={args.deadline}"] if args.deadline else []
    guest_cmd = shlex.join([*env, "sh", "/usr/local/bin/vrs-bench", dev.guest or name,
                            str(dev.virtio_id), dev.c_module, rust or "-", str(args.rounds),
                            str(seconds)] + [f"{w.name}={w.arg}" for w in workloads])
    # Calibration, then per measurement a switch, a warm-up and ~seconds;
    # three times that, as TCG on a busy host can be slow.
    per_measurement = seconds * 1.5 + 2
    timeout = int(120 + 3 * len(workloads) * (args.rounds + 1) * 2 * per_measurement)
    vm = [os.path.join(ROOT, "scripts", "vm"), "--flavour", args.flavour, "--devices",
          dev.vm_devices, "--drivers", "none", "--accel", accel.lower(), "--smp", str(args.smp),
          "--timeout", str(timeout), "--log", log, "--quiet", "--quiet-runner",
          "--add-bin", os.path.join(GUEST_DIR, "vrs-bench"),
          *(a for g in guest_scripts(name, dev) for a in ("--add-bin", os.path.join(GUEST_DIR, g))),
          *(a for g in dev.guest_progs for a in ("--add-bin", guest_prog(g))),
          *(ICOUNT_ARGS if args.icount else []), *vm_args, "--", guest_cmd]
    res = {"info": {}, "drivers": {}, "params": {}, "results": [], "failures": [],
           "done": False, "console_log": log, "vm_command": shlex.join(vm), "other_output": [],
           "backend": res_backend, "smp": vm_smp(vm_args, args.smp)}
    units = {w.name: w for w in workloads}
    t0 = time.time()
    errf = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(vm, stdout=subprocess.PIPE, stderr=errf, text=True)
    for line in proc.stdout:
        line = line.rstrip("\n")
        if not line.startswith("@@BENCH "):
            res["other_output"].append(line)
            if args.verbose:
                print(f"  guest: {line}", file=sys.stderr)
            continue
        try:
            handle(line[len("@@BENCH "):], name, res, units, t0)
        except (ValueError, KeyError) as e:
            note(f"{name}: cannot parse guest line ({e!r}): {line}")
            res["other_output"].append(line)
    proc.wait()
    res["status"] = proc.returncode
    errf.seek(0)
    res["runner_stderr"] = errf.read().strip()
    errf.close()
    res["elapsed_s"] = round(time.time() - t0, 1)
    return res


def handle(text, name, res, units, t0):
    """One "@@BENCH kind key=value..." line from vrs-bench, into res."""
    kind, _, rest = text.partition(" ")
    kv = parse_kv(rest)
    if kind == "info":
        res["info"].update(kv)
    elif kind == "driver":
        side = kv.get("side", "?")
        if kv.get("status") == "failed":
            res["failures"].append(kv)
            note(f"{name}: {SIDE_NAME.get(side, side)} driver failed ({kv.get('why', '?')}"
                 f"{', round ' + kv['round'] if 'round' in kv else ''})")
        else:
            res["drivers"][side] = kv
    elif kind == "param":
        res["params"].setdefault(kv["side"], {})[kv["workload"]] = int(kv["value"])
    elif kind == "result":
        r = {"side": kv["side"], "round": int(kv["round"]), "workload": kv["workload"],
             "amount": int(kv["amount"]), "seconds": float(kv["seconds"]),
             "busy_cs": int(kv["busy_cs"]), "total_cs": int(kv["total_cs"]),
             # The interrupts of the device's queues meanwhile (not sent by older guests).
             "irqs": int(kv["irqs"]) if "irqs" in kv else None}
        res["results"].append(r)
        w = units[r["workload"]]
        v = r["amount"] / r["seconds"] * w.scale if r["seconds"] > 0 else 0.0
        note(f"{name}: round {r['round']} {SIDE_NAME[r['side']]:4} {w.label:12} "
             f"{fmt(v)} {w.unit}  ({time.time() - t0:.0f} s)")
    elif kind == "stall":
        # The guest's watchdog fired: the state it printed follows as plain lines.
        res["stall"] = kv
        note(f"{name}: STALL: {SIDE_NAME.get(kv.get('side'), kv.get('side', '?'))} round "
             f"{kv.get('round', '?')} {kv.get('workload', '?')} did not finish in "
             f"{kv.get('after_s', '?')} s; the guest's state is in the JSON (other_output) and "
             "the console log")
    elif kind == "done":
        res["done"] = True


def fmt(v):
    """A number with three significant digits, no exponent for sane values."""
    if v is None:
        return "n/a"
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.3g}" if abs(v) >= 0.01 else f"{v:.2e}"


# Statistics: a 95 % Student t interval on the log of the paired Rust/C
# ratios, and a verdict from it. The standard library has no t quantile
# (and the host has no scipy), so it is computed here: the t CDF through
# the regularized incomplete beta function, inverted by bisection.

CONFIDENCE = 0.95
# "At parity": the interval contains 1.00 and its half-width (below) is at
# most this.
PARITY_HALFWIDTH = 0.05
# Verdict names per metric: (Rust better, Rust worse).
VERDICT_WORDS = {"throughput": ("faster", "slower"), "cpu": ("less CPU", "more CPU"),
                 "scaling": ("scales better", "scales worse")}
VERDICTS = ("parity", "faster", "slower", "less CPU", "more CPU", "undecided", "n/a")
# What the JSON says about the method, once per file.
STATISTICS = {
    "interval": "Student t on ln(Rust/C) of the paired rounds (the C and the Rust "
                "measurement of one round), taken back by exp",
    "confidence": CONFIDENCE,
    "point_estimate": "ratio_geomean: exp(mean of ln(Rust/C)), the geometric mean of the ratios",
    "halfwidth": "max(hi / geomean, geomean / lo) - 1",
    "parity_halfwidth": PARITY_HALFWIDTH,
    "verdicts": {"parity": "the interval contains 1 and halfwidth <= parity_halfwidth",
                 "faster, less CPU": "the interval lies wholly on Rust's better side of 1",
                 "slower, more CPU": "the interval lies wholly on Rust's worse side of 1",
                 "undecided": "the interval contains 1 but is wider: more rounds are needed",
                 "n/a": "fewer than 2 paired rounds"},
    "scaling": "per driver, factor = median(scaled device) / median(base device); "
               "rust_c = Rust factor / C factor. Its interval: ln(rust_c) is estimated by "
               "mean(ln(Rust/C) of the scaled device's paired rounds) - mean(the base "
               "device's), with a Welch t interval (two guests, so no pairing across them); "
               "verdicts as above, in the words 'scales better' / 'scales worse'",
}


def _betacf(a, b, x):
    """The continued fraction of the incomplete beta function (modified
    Lentz; Numerical Recipes, 6.4)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for aa in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a, b, x):
    """The regularized incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
    """P(T <= t) for Student's t with df degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
    """The t with P(T <= t) = p, df degrees of freedom (0 < p < 1), by bisection."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile({p}, {df})")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2.0


def ratio_interval(pairs):
    """The CONFIDENCE interval of the Rust/C ratio from paired (c, rust)
    measurements: a t interval on r_i = ln(rust_i / c_i), taken back to
    the ratio scale. Pairs where either side is not positive are left out.

    Returns a dict: n (pairs used), geomean (exp of the mean of r_i, the
    point estimate), ci95 ([lo, hi]) and halfwidth (max(hi/geomean,
    geomean/lo) - 1); with fewer than two pairs, geomean is the one ratio
    (or None) and ci95 and halfwidth are None.
    """
    logs = [math.log(y / x) for x, y in pairs if x and y and x > 0 and y > 0]
    n = len(logs)
    out = {"n": n, "geomean": math.exp(logs[0]) if n == 1 else None, "ci95": None,
           "halfwidth": None}
    if n < 2:
        return out
    m = statistics.fmean(logs)
    h = t_quantile(1.0 - (1.0 - CONFIDENCE) / 2.0, n - 1) * statistics.stdev(logs) / math.sqrt(n)
    est, lo, hi = math.exp(m), math.exp(m - h), math.exp(m + h)
    out.update(geomean=est, ci95=[lo, hi], halfwidth=max(hi / est, est / lo) - 1.0)
    return out


def verdict(ci, halfwidth, higher_is_better=True, metric="throughput"):
    """What an interval of Rust/C says: "parity" (it contains 1 and its
    half-width is at most PARITY_HALFWIDTH), Rust better or worse (it lies
    wholly on one side of 1: "faster"/"slower", or for CPU "less
    CPU"/"more CPU"), "undecided" (it contains 1 but is wider: more rounds
    are needed), or "n/a" (no interval: fewer than two paired rounds)."""
    if ci is None:
        return "n/a"
    lo, hi = ci
    better, worse = VERDICT_WORDS[metric]
    if lo > 1.0:
        return better if higher_is_better else worse
    if hi < 1.0:
        return worse if higher_is_better else better
    return "parity" if halfwidth <= PARITY_HALFWIDTH else "undecided"


def verdict_counts(summary):
    """How many workloads got each verdict, for throughput and for CPU per
    op, and the range of n: the JSON's per-device "verdicts"."""
    out = {"workloads": len(summary)}
    for key, metric in (("", "throughput"), ("cpu_", "cpu")):
        got = [e[key + "verdict"] for e in summary]
        ns = [e[key + "paired_rounds"] for e in summary]
        out[metric] = {v: got.count(v) for v in VERDICTS if v in got}
        out[metric + "_paired_rounds"] = [min(ns), max(ns)] if ns else [0, 0]
    return out


def verdict_line(name, summary):
    """The closing line of a device: how many workloads, over how many
    paired rounds, got which verdict, for throughput and for CPU per op."""
    c = verdict_counts(summary)

    def counts(metric):
        return ", ".join(f"{k} {'at parity' if v == 'parity' else v}"
                         for v, k in c[metric].items()) or "none"
    lo, hi = c["throughput_paired_rounds"]
    n = f"n={lo}" if lo == hi else f"n={lo}-{hi}"
    return (f"{name}: {c['workloads']} workload{'s' if c['workloads'] != 1 else ''}, {n} paired "
            f"round{'' if hi == 1 else 's'}: {counts('throughput')}; "
            f"CPU per op: {counts('cpu')}")


def summarise(workloads, res):
    """Per workload and driver: median/min/max throughput, CPU per op, ratios,
    and from the paired rounds the 95 % interval of the Rust/C ratio and its
    verdict (see ratio_interval and verdict), for throughput and CPU."""
    out = []
    for w in workloads:
        entry = {"workload": w.name, "label": w.label, "unit": w.unit, "op": w.op,
                 "higher_is_better": True}
        if w.per_op_us:
            entry["per_op_us"] = w.per_op_us
        for side in SIDES:
            rows = sorted((r for r in res["results"] if r["workload"] == w.name and r["side"] == side),
                          key=lambda r: r["round"])
            if not rows:
                entry[side] = None
                continue
            for r in rows:
                r["value"] = r["amount"] / r["seconds"] * w.scale if r["seconds"] > 0 else 0.0
                ops = r["amount"] / w.op_amount
                # /proc/stat counts in USER_HZ (100 per second on x86).
                r["cpu_ns_per_op"] = r["busy_cs"] * 1e7 / ops if ops else None
                r["guest_busy"] = r["busy_cs"] / r["total_cs"] if r["total_cs"] else None
                r["irqs_per_op"] = (r["irqs"] / ops if ops and r.get("irqs") is not None
                                    else None)
            vals = [r["value"] for r in rows]
            irqs = [r["irqs_per_op"] for r in rows if r["irqs_per_op"] is not None]
            cpus = [r["cpu_ns_per_op"] for r in rows if r["cpu_ns_per_op"] is not None]
            entry[side] = {
                "median": statistics.median(vals), "min": min(vals), "max": max(vals),
                "cpu_ns_per_op_median": statistics.median(cpus) if cpus else None,
                "cpu_ns_per_op_min": min(cpus) if cpus else None,
                "cpu_ns_per_op_max": max(cpus) if cpus else None,
                "irqs_per_op_median": statistics.median(irqs) if irqs else None,
                "rounds": rows}
        c, r = entry["c"], entry["rust"]
        entry["ratio"] = r["median"] / c["median"] if c and r and c["median"] else None
        # Each round's Rust measurement right after its C one: the median
        # of those ratios cancels drift in the host's speed.
        pairs = [(x, y) for x in (c["rounds"] if c else []) for y in (r["rounds"] if r else [])
                 if x["round"] == y["round"]]
        paired = [y["value"] / x["value"] for x, y in pairs if x["value"]]
        entry["paired_ratio"] = statistics.median(paired) if paired else None
        entry["cpu_ratio"] = (r["cpu_ns_per_op_median"] / c["cpu_ns_per_op_median"]
                              if c and r and c["cpu_ns_per_op_median"] and
                              r["cpu_ns_per_op_median"] is not None else None)
        # The same pairs give the 95 % interval of the ratio and the
        # verdict, for throughput and for guest CPU per op (lower is
        # better); n is the number of pairs with both sides positive.
        for prefix, key, metric, higher in (("", "value", "throughput", True),
                                            ("cpu_", "cpu_ns_per_op", "cpu", False)):
            ci = ratio_interval([(x[key], y[key]) for x, y in pairs])
            entry[prefix + "paired_rounds"] = ci["n"]
            entry[prefix + "ratio_geomean"] = ci["geomean"]
            entry[prefix + "ratio_ci95"] = ci["ci95"]
            entry[prefix + "ratio_halfwidth"] = ci["halfwidth"]
            entry[prefix + "verdict"] = verdict(ci["ci95"], ci["halfwidth"], higher, metric)
        # Do the two drivers' min..max ranges overlap? Then the ratio is
        # within this run's noise.
        entry["ranges_overlap"] = (c["min"] <= r["max"] and r["min"] <= c["max"]) if c and r else None
        out.append(entry)
    return out


def paired_logs(entry):
    """ln(Rust/C) of each round of a summarise() entry in which both drivers measured."""
    c = {x["round"]: x["value"] for x in (entry["c"] or {}).get("rounds", [])}
    r = {x["round"]: x["value"] for x in (entry["rust"] or {}).get("rounds", [])}
    return [math.log(r[k] / c[k]) for k in sorted(c) if k in r and c[k] > 0 and r[k] > 0]


def difference_interval(base, scaled):
    """The CONFIDENCE interval of exp(mean(scaled) - mean(base)) for two
    independent samples of logs (Welch: unequal variances, Welch-Satterthwaite
    degrees of freedom). The same dict as ratio_interval, with n = [n_base,
    n_scaled]; without two values on each side, geomean is the difference of
    the means when both have one (else None), and there is no interval."""
    n1, n2 = len(base), len(scaled)
    out = {"n": [n1, n2], "geomean": None, "ci95": None, "halfwidth": None}
    if not n1 or not n2:
        return out
    m = statistics.fmean(scaled) - statistics.fmean(base)
    out["geomean"] = math.exp(m)
    if n1 < 2 or n2 < 2:
        return out
    v1, v2 = statistics.variance(base) / n1, statistics.variance(scaled) / n2
    se = math.sqrt(v1 + v2)
    if se == 0:
        h = 0.0
    else:
        df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))
        h = t_quantile(1.0 - (1.0 - CONFIDENCE) / 2.0, df) * se
    out.update(ci95=[math.exp(m - h), math.exp(m + h)], halfwidth=math.exp(h) - 1.0)
    return out


def scaling(base, scaled):
    """How each driver scales from one device to another (SCALINGS), for every
    workload both summaries (summarise's lists) have: per driver the base and the
    scaled median and factor = scaled / base; rust_c = the Rust factor over the C
    factor (above 1: Rust gains more); and the interval and verdict of rust_c from
    the paired rounds of each device (difference_interval)."""
    out = []
    by_name = {e["workload"]: e for e in base}
    for e2 in scaled:
        e1 = by_name.get(e2["workload"])
        if e1 is None:
            continue
        entry = {"workload": e2["workload"], "label": e2["label"], "unit": e2["unit"]}
        for side in SIDES:
            s1, s2 = e1[side], e2[side]
            entry[side] = ({"base": s1["median"], "scaled": s2["median"],
                            "factor": s2["median"] / s1["median"]}
                           if s1 and s2 and s1["median"] else None)
        c, r = entry["c"], entry["rust"]
        entry["rust_c"] = r["factor"] / c["factor"] if c and r and c["factor"] else None
        ci = difference_interval(paired_logs(e1), paired_logs(e2))
        entry["paired_rounds"] = ci["n"]
        entry["ratio_geomean"] = ci["geomean"]
        entry["ratio_ci95"] = ci["ci95"]
        entry["ratio_halfwidth"] = ci["halfwidth"]
        entry["verdict"] = verdict(ci["ci95"], ci["halfwidth"], True, "scaling")
        out.append(entry)
    return out


def print_scaling(name, spec, entries):
    """The table of one SCALINGS entry."""
    print()
    print(f"scaling {name}: {spec['what']}")
    print("  per driver: the two medians and factor = scaled / base (higher is better); Rust/C: "
          "Rust's factor over C's (below 1: Rust gains less)")
    print("  geomean, 95 % interval: of Rust/C, from each device's paired rounds (Welch t); "
          "n: paired rounds of base, scaled")
    cols = ["workload", "unit", f"C {spec['base']}", f"C {spec['scaled']}", "C factor",
            f"Rust {spec['base']}", f"Rust {spec['scaled']}", "Rust factor", "Rust/C", "n",
            "geomean", "95 % interval", "+/-", "verdict"]
    rows = []
    for e in entries:
        row = [e["label"], e["unit"]]
        for side in SIDES:
            s = e[side]
            row += [fmt(s["base"]), fmt(s["scaled"]), f"{s['factor']:.3f}"] if s else ["n/a"] * 3
        gm, ci, hw = e["ratio_geomean"], e["ratio_ci95"], e["ratio_halfwidth"]
        row += [f"{e['rust_c']:.3f}" if e["rust_c"] is not None else "n/a",
                f"{e['paired_rounds'][0]}, {e['paired_rounds'][1]}",
                f"{gm:.3f}" if gm is not None else "n/a",
                f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "n/a",
                f"{100 * hw:.1f} %" if hw is not None else "n/a", e["verdict"]]
        rows.append(row)
    print_columns(cols, rows, left=(0, 1, 13))
    print(f"  {scaling_line(name, entries)}")


def scaling_line(name, entries):
    """One line per SCALINGS entry for the end of the run."""
    parts = []
    for e in entries:
        f = {s: f"{e[s]['factor']:.3f}" if e[s] else "n/a" for s in SIDES}
        rc = f"{e['rust_c']:.3f}" if e["rust_c"] is not None else "n/a"
        parts.append(f"{e['label']}: factor C {f['c']}, Rust {f['rust']}, Rust/C {rc} "
                     f"({e['verdict']})")
    return f"scaling {name}: " + ("; ".join(parts) or "no workload in both devices")


def print_table(name, dev, summary, res, meta, settings):
    accel = meta["accelerator"]
    rounds = settings["rounds"]
    rust = res["drivers"].get("rust", {}).get("status") == "ok"
    order = "C, Rust, C, Rust, ..." if rust else "C only: no Rust driver"
    print()
    vcpus = f"; {settings['smp']} vCPUs" if settings.get("smp", 1) != 1 else ""
    print(f"{name}: {res['backend']}; {settings['flavour']} kernel "
          f"{res['info'].get('guest_kernel', '?')}; {accel}{vcpus}; {rounds} round(s) per driver "
          f"({order})")
    print(f"  {meta['qemu']}; host {meta['host_cpu']} x{meta['host_cpus']}; "
          f"commit {meta['commit'][:12]}{' (dirty)' if meta['dirty'] else ''}")
    if settings.get("icount"):
        print("  icount: the guest's clock advances 1 ns per instruction it executes, so the CPU "
              "columns count guest instructions per op (ns = instructions); the throughput columns "
              "are in guest time, not the host's, and say little.")
    elif accel == "TCG":
        print("  TCG numbers: QEMU emulates the CPU, so absolute figures are far below real "
              "hardware; compare the ratios.")
    print("  throughput: median [min-max], higher is better; Rust/C: ratio of the medians; "
          "paired: median of the per-round ratios")
    print("  CPU: guest CPU time (/proc/stat) per op, median, lower is better")
    cols = ["workload", "unit", "C", "Rust", "Rust/C", "paired", "C CPU", "Rust CPU",
            "Rust/C CPU"]
    rows = []
    for e in summary:
        def rng(s):
            return f"{fmt(s['median'])} [{fmt(s['min'])}-{fmt(s['max'])}]" if s else "n/a"

        def cpu(s):
            return f"{fmt(s['cpu_ns_per_op_median'])} ns/{e['op']}" if s and \
                s["cpu_ns_per_op_median"] is not None else "n/a"
        ratio = f"{e['ratio']:.3f}" if e["ratio"] is not None else "n/a"
        if e["ranges_overlap"]:
            ratio += "~"
        paired = f"{e['paired_ratio']:.3f}" if e["paired_ratio"] is not None else "n/a"
        rows.append([e["label"], e["unit"], rng(e["c"]), rng(e["rust"]), ratio, paired, cpu(e["c"]),
                     cpu(e["rust"]), f"{e['cpu_ratio']:.3f}" if e["cpu_ratio"] is not None else "n/a"])
    print_columns(cols, rows, left=(0, 1))
    for e in summary:
        if e.get("per_op_us"):
            us = {s: f"{1e6 / e[s]['median']:.0f} us" if e[s] and e[s]["median"] else "n/a"
                  for s in SIDES}
            print(f"  {e['label']}: {e['per_op_us']} (1 / the median): C {us['c']}, "
                  f"Rust {us['rust']}")
    if any(e["ranges_overlap"] for e in summary):
        print("  ~ the two drivers' min-max ranges overlap: the difference is within this run's "
              "spread; the paired interval below says more")
    # The same workloads again: the 95 % intervals and the verdicts.
    print("  95 % interval of Rust/C over the n paired rounds (Student t on the log ratios); "
          "geomean: the estimate; +/-: half-width")
    cols = ["workload", "n", "geomean", "95 % interval", "+/-", "verdict",
            "CPU geomean", "CPU 95 % interval", "CPU +/-", "CPU verdict"]
    rows = []
    for e in summary:
        n, cpu_n = e["paired_rounds"], e["cpu_paired_rounds"]
        row = [e["label"], f"{n}" + (f" (CPU {cpu_n})" if cpu_n != n else "")]
        for p in ("", "cpu_"):
            gm, ci, hw = e[p + "ratio_geomean"], e[p + "ratio_ci95"], e[p + "ratio_halfwidth"]
            row += [f"{gm:.3f}" if gm is not None else "n/a",
                    f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "n/a",
                    f"{100 * hw:.1f} %" if hw is not None else "n/a", e[p + "verdict"]]
        rows.append(row)
    print_columns(cols, rows, left=(0, 5, 9))
    print(f"  parity: the interval contains 1.00 and +/- <= {100 * PARITY_HALFWIDTH:.0f} %; "
          "faster/slower, less/more CPU: it lies wholly above or below 1.00;")
    print("  undecided: it contains 1.00 but is wider, run more rounds (--rounds, make bench "
          "ROUNDS=15); n/a: fewer than 2 paired rounds")
    # Interrupts per op: under TCG an interrupt costs tens of microseconds of guest
    # time, and with EVENT_IDX how many a run takes swings from run to run
    # (Documentation/benchmarks.rst, "Interrupts per I/O").
    irq = [(e["label"], e["c"] and e["c"].get("irqs_per_op_median"),
            e["rust"] and e["rust"].get("irqs_per_op_median")) for e in summary]
    if any(c is not None or r is not None for _, c, r in irq):
        def per_op(v):  # net's per-byte counts are far below 0.01
            return v if v is None else f"{v:.2f}" if v == 0 or v >= 0.01 else fmt(v)
        print("  queue interrupts per op, median (C / Rust): " + "; ".join(
            f"{label} {per_op(c)} / {per_op(r)}" for label, c, r in irq))
    extra = dev.table_note(res) if dev and dev.table_note else None
    if extra:
        print(f"  {extra}")
    print(f"  {verdict_line(name, summary)}")


def print_columns(cols, rows, left):
    """An indented text table: the columns in left are left-aligned, the
    others right-aligned."""
    widths = [max(len(cols[i]), *(len(r[i]) for r in rows)) for i in range(len(cols))]
    print(("  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(cols))).rstrip())
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print(("  " + "  ".join(v.ljust(widths[i]) if i in left else v.rjust(widths[i])
                                for i, v in enumerate(r))).rstrip())


def draw_svg(path, name, summary, meta, settings):
    """Two panels of grouped bars, each relative to the C median: throughput
    (higher is better) and guest CPU time per op (lower is better); the
    whiskers span min..max over the rounds. When the paired rounds give
    intervals, a third panel: per workload the Rust/C ratio (geometric mean
    of the paired rounds) with its 95 % interval, for throughput and for
    CPU per op, against a line at 1.00, and the verdicts under it."""
    data = path[:-4] + ".dat"

    def rel(s, key, base):
        if not s or s.get(key + "median") is None or not base:
            return "NaN NaN NaN"
        return " ".join(f"{100 * s[key + k] / base:.3f}" for k in ("median", "min", "max"))

    def interval(e, p):
        if not e[p + "ratio_ci95"]:
            return "NaN NaN NaN"
        return " ".join(f"{v:.6g}" for v in (e[p + "ratio_geomean"], *e[p + "ratio_ci95"]))
    with open(data, "w") as f:
        f.write("# label, then median min max as % of the C median: C and Rust throughput, "
                "C and Rust CPU per op; CPU label; then the Rust/C geometric mean and 95 % "
                "interval (lo hi) of throughput and of CPU per op\n")
        for e in summary:
            c, r = e["c"], e["rust"]
            tbase = (c or r)["median"]
            cbase = (c or r)["cpu_ns_per_op_median"]
            label = f"{e['label']}\\n(C: {fmt(c['median']) if c else 'n/a'} {e['unit']})"
            cpu = c["cpu_ns_per_op_median"] if c else None
            clabel = f"{e['label']}\\n(C: {fmt(cpu)} ns/{e['op']})"
            f.write(f'"{label}" {rel(c, "", tbase)} {rel(r, "", tbase)} '
                    f'{rel(c, "cpu_ns_per_op_", cbase)} {rel(r, "cpu_ns_per_op_", cbase)} '
                    f'"{clabel}" {interval(e, "")} {interval(e, "cpu_")}\n')
    has_rust = any(e["rust"] for e in summary)
    ratios = [f"{e['label']} {e['ratio']:.2f}" for e in summary if e["ratio"] is not None]
    # Many workloads (blk): the ratios on lines of their own, five to a line.
    sep = "\n" if len(ratios) > 5 else "; "
    ratios = ",\n".join(", ".join(ratios[i:i + 5]) for i in range(0, len(ratios), 5))
    title = (f"virtio-{name}: Rust vs C driver ({meta['accelerator']}, {settings['rounds']} "
             f"round(s) each, {settings['flavour']} kernel, {settings['smp']} vCPU)")
    sub = (f"{meta['qemu'].split('(')[0].strip()}, commit {meta['commit'][:12]}, {meta['date']}"
           + (f"{sep}throughput Rust/C: {ratios}" if ratios else "; no Rust driver")
           + (f"\n{verdict_line(name, summary)}" if has_rust else ""))

    def plot(first, label, ylabel, title):
        rust = f', "" using {first + 3}:{first + 4}:{first + 5} title "Rust" lc rgb "#e15759"'
        return (f"set title {json.dumps(title)}\nset ylabel {json.dumps(ylabel)}\n"
                f"plot {json.dumps(data)} using {first}:{first + 1}:{first + 2}:xtic({label}) "
                f"title \"C\" lc rgb \"#4e79a7\"{rust if has_rust else ''}\n")
    # Drivers an order of magnitude apart: a log axis keeps both visible.
    spread = [e[k] for e in summary for k in ("ratio", "cpu_ratio") if e[k]]
    logscale = "set logscale y\nset yrange [*:*]" if spread and (
        max(spread) > 8 or min(spread) < 1 / 8) else "set yrange [0:*]"

    def ratio_plot():
        """The intervals: points with whiskers, throughput left of each
        workload and CPU right of it, a dashed line at 1.00 and the
        verdicts in the series' colours along the top. The y range always
        shows 0.95..1.05, and leaves room at the top for the verdicts."""
        series = [s for s in (("", 15, "throughput (higher is better)", "#59a14f", 7, -0.12),
                              ("cpu_", 18, "CPU per op (lower is better)", "#9c755f", 5, 0.12))
                  if any(e[s[0] + "ratio_ci95"] for e in summary)]
        ends = [v for e in summary for p, *_ in series if e[p + "ratio_ci95"]
                for v in e[p + "ratio_ci95"]] + [1 / (1 + PARITY_HALFWIDTH), 1 + PARITY_HALFWIDTH]
        lo, hi = min(ends), max(ends)
        if hi / lo > 8:
            axis = f"set logscale y\nset yrange [{lo / 1.2:.6g}:{hi * (hi / lo) ** 0.25:.6g}]"
        else:
            axis = (f"unset logscale y\nset yrange [{lo - 0.05 * (hi - lo):.6g}:"
                    f"{hi + 0.25 * (hi - lo):.6g}]")
        tics = ", ".join(f"{json.dumps(e['label'])} {i}" for i, e in enumerate(summary))
        labels = "".join(
            f"set label {json.dumps(('CPU: ' if p else '') + e[p + 'verdict'])} at {i}, graph "
            f"{0.96 if p == '' else 0.91} center textcolor rgb \"{colour}\" front\n"
            for i, e in enumerate(summary) for p, _, _, colour, _, _ in series)
        plots = ", ".join(
            f"{json.dumps(data)} using ($0{dx:+}):{col}:{col + 1}:{col + 2} with yerrorbars "
            f"pt {pt} ps 1.2 lw 2 lc rgb \"{colour}\" title \"{what}\""
            for _, col, what, colour, pt, dx in series)
        title = "Rust/C from the paired rounds: 95 % interval and verdict"
        return (f"{axis}\nset xrange [-0.5:{len(summary) - 0.5}]\nset xtics ({tics})\n"
                "set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lw 1.5 dt 2 "
                "lc rgb \"black\" back\nset key outside top center horizontal\nset rmargin 4\n"
                f"{labels}set title {json.dumps(title)}\n"
                "set ylabel \"Rust/C (point: geometric mean, whiskers: 95 % interval)\"\n"
                f"plot {plots}\n")
    has_ci = any(e[p + "ratio_ci95"] for e in summary for p in ("", "cpu_"))
    # Many workloads (blk has ten): the panels one above the other, each
    # the full width, with slanted labels.
    many = len(summary) > 4
    size, layout = {(True, False): ("1400,1200", "2,1"), (False, False): ("1200,560", "1,2"),
                    (True, True): ("1400,1800", "3,1"), (False, True): ("1800,560", "1,3")}[
                        (many, has_ci)]
    xtics = "set xtics noenhanced rotate by 25 right\nset bmargin 9" if many else \
        "set xtics noenhanced\nset bmargin 5"
    script = f"""
set terminal svg size {size} dynamic enhanced font "sans,12" background rgb "white"
set output {json.dumps(path)}
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set boxwidth 0.9
{logscale}
set grid ytics
set key top left
{xtics}
set multiplot layout {layout} title {json.dumps(title + chr(10) + sub)} noenhanced
{plot(2, 1, "% of the C median (bar: median, whiskers: min-max)", "throughput (higher is better)")}
{plot(8, 14, "% of the C median (bar: median, whiskers: min-max)",
      "guest CPU time per op (lower is better)")}
{ratio_plot() if has_ci else ""}
unset multiplot
"""
    r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    os.remove(data)
    if r.returncode != 0 or not os.path.exists(path):
        note(f"gnuplot failed: {r.stderr.strip()}")
        return False
    return True


def main():
    ap = argparse.ArgumentParser(
        prog="scripts/bench.py",
        description="C vs Rust virtio driver throughput, side by side in one guest per device. "
        "See Documentation/benchmarks.rst.")
    groups = ", ".join(f"{g} (={','.join(m)})" for g, m in DEVICE_GROUPS.items())
    ap.add_argument("--device", default="all",
                    help=f"comma-separated: {', '.join(DEVICES)}, {groups}, or all (default: "
                    f"{', '.join(n for n, d in DEVICES.items() if d.in_all)}, those of them "
                    "that have a Rust driver; the scale devices run only when named)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per driver (default 5)")
    ap.add_argument("--seconds", type=float,
                    help="target length of one measurement, in guest seconds (default "
                    f"{DEFAULT_SECONDS:g}; net: {DEVICES['net'].seconds:g}, as iperf3 counts "
                    "whole seconds)")
    ap.add_argument("--flavour", default="release", help="kernel flavour (default release)")
    ap.add_argument("--accel", default="auto",
                    help="auto (KVM only if scripts/vm's probe boots a guest with it), tcg, kvm")
    ap.add_argument("--smp", type=int, default=1,
                    help="guest vCPUs (default 1: see Documentation/benchmarks.rst)")
    ap.add_argument("--out", help="results directory (default bench/results, or "
                    "build/bench-smoke with --smoke)")
    ap.add_argument("--allow-c-only", action="store_true",
                    help="benchmark the C driver alone where no Rust driver is built")
    ap.add_argument("--workloads", help="comma-separated workload names to run (default: all "
                    "of each device's), e.g. file-randread-4k-qd32")
    ap.add_argument("--deadline", type=int,
                    help="seconds after which the guest's watchdog calls one switch and "
                    "measurement stuck, dumps the state and ends the run (default: three times "
                    "--seconds plus 60)")
    ap.add_argument("--smoke", action="store_true",
                    help="prove the harness works: 1 round, one small workload, C alone if "
                    "needed; asserts nothing about speed")
    ap.add_argument("--icount", action="store_true",
                    help="TCG with -icount shift=0: the guest's clock counts its instructions, "
                    "so the CPU columns are guest instructions per op, exactly what each driver "
                    "executes; see Documentation/benchmarks.rst")
    ap.add_argument("--verbose", action="store_true", help="show the guest's other output")
    args = ap.parse_args()

    names = device_names(args.device, args.smoke)
    bad = [n for n in names if n not in DEVICES]
    if bad:
        die(f"unknown device '{bad[0]}' (valid: {', '.join([*DEVICES, *DEVICE_GROUPS])}, all)")
    if args.flavour not in ("debug", "release"):
        die(f"unknown flavour '{args.flavour}' (valid: debug, release)")
    if args.accel not in ("auto", "tcg", "kvm"):
        die(f"unknown accel '{args.accel}' (valid: auto, tcg, kvm)")
    if args.smoke:
        args.rounds, args.allow_c_only = 1, True
    if args.rounds < 1 or (args.seconds is not None and args.seconds <= 0):
        die("--rounds must be at least 1 and --seconds positive")
    if args.rounds < 5 and not args.smoke:
        note(f"warning: {args.rounds} round(s): the methodology asks for at least 5")
    out_dir = args.out or (os.path.join(BUILD, "bench-smoke") if args.smoke
                           else os.path.join(ROOT, "bench", "results"))

    kernel = os.path.join(BUILD, f"kbuild-{args.flavour}", "arch/x86/boot/bzImage")
    if not os.path.exists(kernel):
        die(f"{kernel} is missing: run 'make guest FLAVOUR={args.flavour}' first")
    image = os.path.join(BUILD, f"initramfs-{args.flavour}.cpio")
    staged = glob.glob(os.path.join(BUILD, f"kbuild-{args.flavour}", "staging", "lib", "modules",
                                    "*", "extra", "*.ko"))
    if not os.path.exists(image) or any(os.path.getmtime(k) > os.path.getmtime(image)
                                        for k in staged):
        die(f"the {args.flavour} guest image is missing or older than the modules: "
            f"run 'make guest FLAVOUR={args.flavour}' first")
    for f in ("vrs-bench", *(g for n in names for g in guest_scripts(n, DEVICES[n]))):
        if not os.path.exists(os.path.join(GUEST_DIR, f)):
            die(f"bench/guest/{f} is missing")
    for g in {g for n in names for g in DEVICES[n].guest_progs}:
        if not guest_prog(g):
            die(f"bench/guest/{g}.c does not build")

    # Which devices have a Rust driver; the rest are skipped, or run with
    # the C driver alone when that is allowed.
    args.rust_modules, todo = {}, []
    for n in names:
        ko = rust_ko(args.flavour, DEVICES[n])
        args.rust_modules[n] = DEVICES[n].rust_module if ko else None
        if ko:
            todo.append(n)
        elif args.allow_c_only:
            note(f"{n}: no Rust driver ({DEVICES[n].rust_module}.ko is not built for "
                 f"{args.flavour}): benchmarking the C driver alone")
            todo.append(n)
        else:
            note(f"{n}: no Rust driver ({DEVICES[n].rust_module}.ko is not built for "
                 f"{args.flavour}; 'make modules FLAVOUR={args.flavour}' builds it once its "
                 "source exists): skipped")
    if not todo:
        note("nothing to benchmark: no device has a Rust driver (--allow-c-only runs C alone)")
        return 1

    import vm  # scripts/vm.py: the same KVM probe the runner uses
    kvm = args.accel == "kvm" or (args.accel == "auto" and vm.kvm_works())
    if args.icount and kvm:
        die("--icount is a TCG mode: pass --accel tcg (KVM runs the guest natively)")
    meta = {**host_facts(), "accelerator": "KVM" if kvm else "TCG"}
    meta["host_loadavg_start"] = os.getloadavg()
    settings = {"rounds": args.rounds, "seconds_per_measurement": args.seconds,
                "flavour": args.flavour, "smp": args.smp, "transport": "pci/split",
                "qemu_maxcpus": None if kvm else max(args.smp, 2),
                "smoke": args.smoke, "workloads": args.workloads, "deadline_s": args.deadline,
                "icount": args.icount,
                "command": shlex.join(sys.argv)}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"bench-{stamp}" + ("-smoke" if args.smoke else ""))
    doc = {"schema": 1, **meta, "settings": settings, "statistics": STATISTICS, "devices": {}}
    ok = True
    summaries = {}
    for n in todo:
        dev = DEVICES[n]
        workloads = [w for w in dev.workloads if not args.smoke or w.name == dev.smoke]
        if args.workloads:
            wanted = args.workloads.split(",")
            unknown = [x for x in wanted if x not in {w.name for w in dev.workloads}]
            if unknown:
                die(f"{n}: unknown workload '{unknown[0]}' (valid: "
                    f"{', '.join(w.name for w in dev.workloads)})")
            workloads = [w for w in workloads if w.name in wanted]
        note(f"{n}: one {meta['accelerator']} guest, {args.rounds} round(s) per driver, "
             f"{len(workloads)} workload(s), ~{device_seconds(dev, args):g} s each")
        res = run_guest(n, dev, workloads, args, meta["accelerator"], stamp)
        summary = summarise(workloads, res)
        summaries[n] = summary
        # A device may ask for its own vCPUs (blk-q1, blk-q2: --smp 2 in vm_args).
        dev_settings = {**settings, "smp": res["smp"],
                        "qemu_maxcpus": None if kvm else max(res["smp"], 2),
                        "seconds_per_measurement": device_seconds(dev, args)}
        entry = {"backend": res["backend"], "smp": res["smp"],
                 "seconds_per_measurement": dev_settings["seconds_per_measurement"],
                 "qemu_maxcpus": dev_settings["qemu_maxcpus"],
                 "guest": res["info"], "drivers": res["drivers"],
                 "calibrated_work": res["params"], "failures": res["failures"],
                 "guest_status": res["status"], "guest_finished": res["done"],
                 "console_log": res["console_log"], "vm_command": res["vm_command"],
                 "elapsed_s": res["elapsed_s"], "workloads": summary,
                 "stall": res.get("stall"),
                 "stall_state": res["other_output"] if res.get("stall") else []}
        doc["devices"][n] = entry
        if not res["done"] or res["status"] != 0:
            ok = False
            tail = res["runner_stderr"].splitlines()[-1:] or res["other_output"][-1:] or ["?"]
            note(f"{n}: the guest did not finish cleanly (status {res['status']}): {tail[0]}; "
                 f"console log: {res['console_log']}")
            shown = res["other_output"] if res.get("stall") else res["other_output"][-10:]
            for line in shown[-400:]:
                note(f"  guest: {line}")
        # The same kernel-splat check as make check's: a driver that warns
        # or oopses while being benchmarked fails the run.
        import check  # scripts/check.py
        entry["console_splats"] = check.splats(res["console_log"])[:20]
        if entry["console_splats"]:
            ok = False
            note(f"{n}: kernel splat in the console log ({res['console_log']}): "
                 f"{entry['console_splats'][0][:120]}")
        expected = ["c"] + (["rust"] if args.rust_modules[n] else [])
        for side in expected:
            if any(e[side] is None for e in summary):
                ok = False
                note(f"{n}: the {SIDE_NAME[side]} driver produced no numbers for some workloads")
        entry["verdicts"] = verdict_counts(summary)
        entry["verdict_summary"] = verdict_line(n, summary)
        print_table(n, dev, summary, res, meta, dev_settings)
        svg = f"{base}-{n}.svg"
        if any(e["c"] or e["rust"] for e in summary) and draw_svg(svg, n, summary, meta,
                                                                   dev_settings):
            entry["svg"] = os.path.relpath(svg, ROOT)
        else:
            ok = False
    # The scaling factors of the device pairs that both ran here.
    doc["scaling"] = {}
    for sname, spec in SCALINGS.items():
        if spec["base"] in summaries and spec["scaled"] in summaries:
            entries = scaling(summaries[spec["base"]], summaries[spec["scaled"]])
            doc["scaling"][sname] = {**spec, "workloads": entries,
                                     "summary": scaling_line(sname, entries)}
            print_scaling(sname, spec, entries)
    meta_end = os.getloadavg()
    doc["host_loadavg_end"] = meta_end
    with open(base + ".json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print()
    print(f"bench: results: {os.path.relpath(base, ROOT)}.json"
          + "".join(f", {d['svg']}" for d in doc["devices"].values() if "svg" in d))
    for d in doc["devices"].values():
        print(f"bench: {d['verdict_summary']}")
    for d in doc["scaling"].values():
        print(f"bench: {d['summary']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
