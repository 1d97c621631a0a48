"""``python -m tests.deviant --tap IF --addr ADDR [--addr6 ADDR6] --listen PORT [--banner PORT] [knobs]``: the
deviant responder (:mod:`.responder`) driven in real time on the descriptor of TAP device IF.

It attaches to IF (``TUNSETIFF``, the device must exist: ``ip tuntap add dev IF mode tap``), prints one JSON line
``{"ready": true, ...}`` on stdout, then serves until its stdin closes (the test closes it; no signal needed),
and prints its counts as a last JSON line. A ``--log`` file gets one line per frame in and out.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import struct
import sys
import time
from typing import TextIO

from conformance.wire.codec import decode
from conformance.wire.tap import IFF_NO_PI, IFF_TAP, TUNSETIFF

from .responder import Knobs, Responder

READ_SIZE = 65536


def open_tap(ifname: str) -> int:
    """The descriptor of TAP device `ifname` (Ethernet frames, no packet information header)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", ifname.encode(), IFF_TAP | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.deviant", description=__doc__.split("\n\n")[0])
    p.add_argument("--tap", required=True, help="the TAP device to hold")
    p.add_argument("--addr", help="IPv4 address")
    p.add_argument("--addr6", help="IPv6 address")
    p.add_argument("--listen", type=int, action="append", default=[], help="a port with a listener that never accepts")
    p.add_argument("--banner", type=int, action="append", default=[], help="a port whose app sends a banner")
    p.add_argument("--log", help="a file for one line per frame")
    k = p.add_argument_group("knobs")
    k.add_argument("--base", choices=("rfc", "linux"), default="rfc", help="the model profile (default rfc)")
    k.add_argument("--tick", type=float, default=0.0, help="run timers on multiples of this many seconds")
    k.add_argument("--backoff", type=float, default=2.0, help="RTO <- RTO x this on each expiry (default 2)")
    k.add_argument("--rto-initial", type=float)
    k.add_argument("--rto-min", type=float)
    k.add_argument("--synack-retries", type=int)
    k.add_argument("--data-retries", type=int)
    k.add_argument("--icmp-closed", action="store_true", help="ICMP port unreachable instead of a RST")
    k.add_argument("--repeat", type=int, default=0, help="send every data segment again this many times")
    k.add_argument("--repeat-every", type=float, default=0.005, help="seconds between the copies (default 5 ms)")
    k.add_argument("--synack-options", action="store_true", help="SACK-permitted, timestamps, wscale in SYN-ACKs")
    return p.parse_args(argv)


def knobs_of(args: argparse.Namespace) -> Knobs:
    return Knobs(
        base=args.base,
        tick=args.tick,
        backoff=args.backoff,
        rto_initial=args.rto_initial,
        rto_min=args.rto_min,
        synack_retries=args.synack_retries,
        data_retries=args.data_retries,
        icmp_closed=args.icmp_closed,
        repeat=args.repeat,
        repeat_every=args.repeat_every,
        synack_options=args.synack_options,
    )


def _log(log: TextIO | None, way: str, frame: bytes, now: float) -> None:
    if log is None:
        return
    seg = decode(frame, now)
    what = seg.describe() if seg is not None else f"{len(frame)} octets, ethertype {frame[12:14].hex()}"
    log.write(f"{now:.6f} {way} {what}\n")


def serve(fd: int, responder: Responder, log: TextIO | None) -> None:
    """Read frames and write answers until stdin closes; timers and repeats when they are due."""

    def write(frames: list[bytes], now: float) -> None:
        for frame in frames:
            _log(log, "out", frame, now)
            try:
                os.write(fd, frame)
            except OSError as exc:  # e.g. the interface went down: a lost frame, as on a wire
                if log is not None:
                    log.write(f"{now:.6f} write failed: {exc}\n")

    while True:
        write(responder.due(time.monotonic()), time.monotonic())
        wake = responder.wake()
        timeout = None if wake is None else max(0.0, wake - time.monotonic())
        ready, _, _ = select.select([fd, sys.stdin.fileno()], [], [], timeout)
        if sys.stdin.fileno() in ready and not os.read(sys.stdin.fileno(), 4096):
            return
        if fd in ready:
            frame = os.read(fd, READ_SIZE)
            now = time.monotonic()
            _log(log, "in", frame, now)
            write(responder.receive(frame, now), now)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    apps = {port: "listen" for port in args.listen} | {port: "banner" for port in args.banner}
    responder = Responder(knobs_of(args), apps, args.addr, args.addr6)
    fd = open_tap(args.tap)
    log = open(args.log, "a", buffering=1, encoding="utf-8") if args.log else None  # noqa: SIM115
    try:
        print(json.dumps({"ready": True, "mac": responder.mac, "pid": os.getpid()}), flush=True)
        serve(fd, responder, log)
    finally:
        os.close(fd)
        if log is not None:
            log.close()
    print(json.dumps({"counts": responder.counts}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
