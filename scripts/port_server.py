#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The host side of a virtio console port for make bench DEVICE=console.

scripts/vm starts it when the guest asks (`vrs-host port console serve`): it
connects to the port's host socket (QEMU's chardev, scripts/vm --devices
console) and answers the guest's commands on the port itself, one line each,
for as long as the socket is open. The guest half is bench/guest/vrs-vport.c.

    sink N      read N bytes, then answer "ok N"    (guest -> host)
    source N    write N bytes (zeros)               (host -> guest)
    echo N      write back every byte read, until N bytes came back (ping-pong)
    stats 0     answer "ok busy=B cpu_s=C serving_s=S commands=N": the CPU time this
                process took while it served the commands so far (C), over the
                wall time they took (S); B = C / S, the share of one host core the
                host side needed (well below 1: it did not hold the guest back)

It runs in a process of its own with blocking sockets and one big buffer, so
that the host side is not what a measurement measures: --measure times this
same loop against a local client and prints what it can do (bench.py records
it next to the guest's numbers).
"""

import argparse
import json
import os
import socket
import sys
import time

BUF = 1 << 20  # the most one recv or send moves


class Port:
    """A byte stream with a read-ahead: the guest's command line and the data
    after it may come in one recv."""

    def __init__(self, sock, buf=BUF):
        self.sock = sock
        self.buf = bytearray(buf)
        self.view = memoryview(self.buf)
        self.ahead = bytearray()
        self.zeros = bytes(buf)
        self.cpu_s = self.serving_s = 0.0
        self.commands = 0

    def line(self):
        """The next command line, without its newline; None at end of file."""
        while b"\n" not in self.ahead:
            if len(self.ahead) > 256:
                raise ValueError(f"no command: {bytes(self.ahead[:64])!r}...")
            n = self.sock.recv_into(self.buf)
            if not n:
                return None
            self.ahead += self.view[:n]
        line, _, rest = bytes(self.ahead).partition(b"\n")
        self.ahead = bytearray(rest)
        return line.decode(errors="replace").strip()

    def chunks(self, n):
        """Read N bytes, yielding each piece as it comes (a memoryview, valid until
        the next one)."""
        if self.ahead:
            k = min(n, len(self.ahead))
            piece = bytes(self.ahead[:k])
            del self.ahead[:k]
            n -= k
            yield memoryview(piece)
        while n > 0:
            got = self.sock.recv_into(self.view[:min(n, len(self.buf))])
            if not got:
                raise EOFError(f"end of file with {n} bytes to come")
            n -= got
            yield self.view[:got]

    def sink(self, n):
        for _ in self.chunks(n):
            pass
        self.sock.sendall(f"ok {n}\n".encode())

    def source(self, n):
        z = memoryview(self.zeros)
        while n > 0:
            k = min(n, len(z))
            self.sock.sendall(z[:k])
            n -= k

    def echo(self, n):
        for piece in self.chunks(n):
            self.sock.sendall(piece)

    def stats(self, _):
        busy = self.cpu_s / self.serving_s if self.serving_s else 0.0
        self.sock.sendall(f"ok busy={busy:.3f} cpu_s={self.cpu_s:.3f} "
                          f"serving_s={self.serving_s:.3f} commands={self.commands}\n".encode())

    def serve(self):
        """Answer commands until end of file."""
        while True:
            line = self.line()
            if line is None:
                return
            cmd, _, arg = line.partition(" ")
            try:
                n = int(arg)
                op = {"sink": self.sink, "source": self.source, "echo": self.echo,
                      "stats": self.stats}[cmd]
            except (ValueError, KeyError):
                self.sock.sendall(f"error: unknown command {line!r}\n".encode())
                raise ValueError(f"unknown command {line!r}") from None
            if op == self.stats:
                op(n)
                continue
            t0, c0 = time.monotonic(), time.process_time()
            op(n)
            self.cpu_s += time.process_time() - c0
            self.serving_s += time.monotonic() - t0
            self.commands += 1


def connect(path, tries=100):
    for _ in range(tries):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            time.sleep(0.1)
    raise OSError(f"cannot connect to {path}")


def measure(seconds, size, msg):
    """This server's own speed, against a client in another process on a socketpair:
    sink and source with SIZE-byte writes and reads, and MSG-byte ping-pong."""
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        a.close()
        try:
            Port(b).serve()
        finally:
            os._exit(0)
    b.close()
    out = {"write_bytes": size, "pingpong_bytes": msg}
    port = Port(a)
    data = bytes(size)
    buf = bytearray(max(size, BUF))

    def timed(fn):
        n, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            n += fn()
        return n, time.monotonic() - t0

    def sink():
        total = size * 256
        a.sendall(f"sink {total}\n".encode())
        for _ in range(256):
            a.sendall(data)
        if port.line() != f"ok {total}":
            raise RuntimeError("sink: no ok")
        return total

    def source():
        total = size * 256
        a.sendall(f"source {total}\n".encode())
        left = total
        while left:
            left -= a.recv_into(memoryview(buf)[:min(left, size)])
        return total

    def pingpong():
        count = 1000
        m = bytes(msg)
        a.sendall(f"echo {count * msg}\n".encode())
        for _ in range(count):
            a.sendall(m)
            left = msg
            while left:
                left -= a.recv_into(memoryview(buf)[:left])
        return count
    n, t = timed(sink)
    out["sink_mib_s"] = round(n / t / (1 << 20))
    n, t = timed(source)
    out["source_mib_s"] = round(n / t / (1 << 20))
    n, t = timed(pingpong)
    out["pingpong_us"] = round(t / n * 1e6, 1)
    a.close()
    os.waitpid(pid, 0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("socket", nargs="?", help="the port's host socket (QEMU's chardev)")
    ap.add_argument("--measure", type=float, metavar="SECONDS",
                    help="no socket: time this server against a local client for SECONDS "
                    "per workload and print the result as JSON")
    ap.add_argument("--size", type=int, default=65536, help="--measure: write size")
    ap.add_argument("--msg", type=int, default=64, help="--measure: ping-pong message size")
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.size, args.msg)))
        return 0
    if not args.socket:
        ap.error("a socket, or --measure")
    sock = connect(args.socket)
    print("connected", flush=True)
    try:
        Port(sock).serve()
    except (OSError, EOFError, ValueError) as e:
        print(f"port_server: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
