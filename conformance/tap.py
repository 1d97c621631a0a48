"""A stack on the other side of a TAP device: ``--target tap:IFNAME:ADDR[:PORT] [--prober-ip IP]``.

A TAP device has two sides: the network interface IFNAME, and a file
descriptor (``/dev/net/tun``, ``TUNSETIFF``) that reads every Ethernet frame
sent out of the interface and whose writes arrive on the interface as if from
a wire. The tool takes the descriptor side; the stack under test is whatever
sits on the interface side (a Linux kernel that owns ADDR on IFNAME, or a
user-space stack that reads and writes the interface, e.g. through a packet
socket)::

    the tool (this process)                    IFNAME's side
    ┌──────────────────────────────┐           ┌──────────────────────────┐
    │ TapWire: fd of /dev/net/tun  │ ◀──fd──▶  │ TAP IFNAME, ADDR         │
    │ prober 198.18.x.1, 02:cf:... │  frames   │ the stack under test     │
    │ answers ARP for the prober   │           │ PORT listening           │
    └──────────────────────────────┘           └──────────────────────────┘

The tool does not create the device (``ip tuntap add dev IFNAME mode tap``
does); it attaches to it in the network namespace it runs in and detaches on
exit (the device stays). The prober's address is 198.18.x.1 in ADDR's /24 (x.254
when ADDR is x.1) unless ``--prober-ip`` names another; its MAC is a locally
administered one made from that address (``02:cf:`` + the address). The
capture thread answers ARP requests for it, and ADDR's MAC is asked by ARP.

Receive times are ``time.time()`` when the frame is read from the descriptor,
and our own frames are stamped just before they are written: a descriptor has
no kernel timestamp, so timing on this path includes the scheduling of the
capture thread (tens of microseconds on an idle machine).
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import queue
import select
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from . import arp
from .codec import decode, encode
from .errors import HarnessError
from .netns import Endpoint
from .params import resolve
from .segment import Segment
from .targets import DEFAULT_CLOSED_PORT, TargetOptions, TargetSpec, benchmark_address, parse_port
from .wire import Wire

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
READ_SIZE = 65536
#: The interpreter's thread switch interval while a TAP wire is open (default 5 ms): a frame is stamped
#: when the capture thread gets the GIL, so a shorter interval bounds that wait more tightly.
SWITCH_INTERVAL = 0.0005


@dataclass(frozen=True)
class TapSpec(TargetSpec):
    ifname: str = ""
    addr: str = ""
    port: int | None = None
    prober_ip: str = ""
    closed_port: int = DEFAULT_CLOSED_PORT
    kind: ClassVar[str] = "tap"
    no_sysctls: ClassVar[str | None] = "the tool cannot set a stack's parameters through a TAP device"

    def services(self) -> dict[str, int]:
        out = {"closed": self.closed_port}
        if self.port is not None:
            out["listen"] = self.port
        return out

    def unavailable(self) -> dict[str, str]:
        out = {"banner": "a stack behind a TAP device has no banner service known to the tool"}
        if self.port is None:
            out["listen"] = "no listening port given (--target tap:IFNAME:ADDR:PORT)"
        return out


def default_prober_ip(addr: str) -> str:
    """198.18.x.1 in ADDR's /24, or x.254 when ADDR is x.1."""
    net = ipaddress.IPv4Network(f"{addr}/24", strict=False)
    first = net.network_address + 1
    return str(first if str(first) != addr else net.network_address + 254)


def parse_tap(text: str, options: TargetOptions) -> TapSpec:
    """``tap:IFNAME:ADDR[:PORT]``."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or not parts[1] or not parts[2]:
        raise HarnessError(
            f"--target {text!r}: expected tap:IFNAME:ADDR[:PORT]", "e.g. --target tap:tap0:198.18.3.2:80"
        )
    ifname = parts[1]
    if len(ifname) >= IFNAMSIZ or "/" in ifname or any(c.isspace() for c in ifname):
        raise HarnessError(f"--target {text!r}: {ifname!r} is not an interface name (at most 15 characters)")
    addr = benchmark_address(parts[2], "--target tap address")
    port = parse_port(parts[3], f"--target {text!r}: port") if len(parts) == 4 else None
    prober = benchmark_address(options.prober_ip, "--prober-ip") if options.prober_ip else default_prober_ip(addr)
    if prober == addr:
        raise HarnessError(f"--prober-ip {prober} is the target's address", "give another address in its subnet")
    closed = DEFAULT_CLOSED_PORT if options.closed_port is None else options.closed_port
    if not 1 <= closed <= 65535:
        raise HarnessError(f"--closed-port {closed} is not a TCP port (1-65535)")
    if closed == port:
        raise HarnessError(f"--closed-port {closed} is the listening port of the target")
    return TapSpec(text, ifname=ifname, addr=addr, port=port, prober_ip=prober, closed_port=closed)


def tap_flags(ifname: str) -> int | None:
    """The TUN/TAP flags of `ifname` in this namespace; None when it is not a TUN/TAP device (or missing)."""
    try:
        return int(Path(f"/sys/class/net/{ifname}/tun_flags").read_text().strip(), 16)
    except (OSError, ValueError):
        return None


class TapWire(Wire):
    """The :class:`~conformance.wire.Wire` interface on a TAP descriptor, with an ARP responder.

    Frames are read by the capture thread (``select`` on the descriptor); ARP
    requests for our address are answered there, ARP replies wake
    :meth:`resolve`, TCP segments go to the subscribed dialogues like on a
    :class:`Wire`. Our own frames are handed to their dialogue as the capture
    of a packet socket would, stamped just before the write.
    """

    def __init__(self, ifname: str, our_mac: str, our_ip: str, peer_ip: str) -> None:
        super().__init__(ifname, None, our_mac, arp.BROADCAST, our_ip, peer_ip=peer_ip)
        self._fd = -1
        self._switch: float | None = None
        self._parser: threading.Thread | None = None
        self._frames: queue.SimpleQueue[tuple[bytes, float] | None] = queue.SimpleQueue()
        self._write_lock = threading.Lock()
        self._arp_lock = threading.Lock()
        self._arp_wanted: dict[str, threading.Event] = {}
        self._arp_found: dict[str, str] = {}
        self.arp_answered = 0  # requests for our address we answered

    def open(self) -> None:
        flags = tap_flags(self.iface)
        if flags is None:
            raise HarnessError(
                f"there is no TAP device {self.iface!r} in this network namespace",
                f"create it (ip tuntap add dev {self.iface} mode tap), give the stack under test its side, and "
                "run the tool in the namespace that holds it; the tool does not create the device",
            )
        if not flags & IFF_TAP:
            raise HarnessError(f"{self.iface} is a TUN (layer 3) device, not a TAP device", "use mode tap")
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
        try:
            ifr = struct.pack("16sH22x", self.iface.encode(), IFF_TAP | IFF_NO_PI)
            fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as exc:
            os.close(fd)
            if exc.errno == errno.EBUSY:
                raise HarnessError(
                    f"TAP device {self.iface} is attached to another process already",
                    "the tool takes the descriptor side of the device: detach the other process",
                ) from None
            if exc.errno == errno.EPERM:
                raise HarnessError(
                    f"cannot attach to TAP device {self.iface}: {exc.strerror}",
                    "run as root (CAP_NET_ADMIN), or make the device yours (ip tuntap add ... user NAME)",
                ) from None
            raise HarnessError(f"cannot attach to TAP device {self.iface}: {exc.strerror}") from None
        self._fd = fd
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, SWITCH_INTERVAL))
        self._thread = threading.Thread(target=self._capture, name=f"capture-{self.iface}", daemon=True)
        self._thread.start()
        self._parser = threading.Thread(target=self._parse, name=f"parse-{self.iface}", daemon=True)
        self._parser.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._parser is not None:
            self._frames.put(None)
            self._parser.join(timeout=2)
            self._parser = None
        if self._switch is not None:
            sys.setswitchinterval(self._switch)
            self._switch = None
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)
            except OSError:
                pass

    def _write(self, frame: bytes) -> None:
        with self._write_lock:
            os.write(self._fd, frame)

    def send(self, seg: Segment) -> None:
        frame = encode(seg, self.our_mac, self.target_mac)
        stamp = time.time()
        self._write(frame)
        # Our own copy, as a packet socket's capture would give it (the engine takes its send time from
        # it): the segment itself, not a parse of the frame, to hold the GIL as briefly as possible while
        # the capture thread waits to stamp the answer.
        self._route(seg.at(stamp), frame)

    def resolve(self, ip: str, timeout: float = arp.TIMEOUT) -> str:
        """The MAC address of `ip` behind the device, by ARP; HarnessError after `timeout` seconds."""
        if self.our_ip is None:
            raise HarnessError(f"internal: no IPv4 address of ours to ask {ip} from")
        event = threading.Event()
        with self._arp_lock:
            self._arp_wanted[ip] = event
        try:
            end = time.monotonic() + timeout
            while (left := end - time.monotonic()) > 0:
                self._write(arp.request(self.our_mac, self.our_ip, ip))
                if event.wait(min(arp.RETRY, left)):
                    with self._arp_lock:
                        return self._arp_found[ip]
        finally:
            with self._arp_lock:
                self._arp_wanted.pop(ip, None)
        raise arp.no_answer(ip, f"TAP device {self.iface}", timeout)

    def _capture(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self._fd, READ_SIZE)
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # e.g. EBADFD while the interface is down: do not spin
                continue
            stamp = time.time()
            found = arp.parse(data)
            if found is not None:
                self._arp(found)
            else:
                self._frames.put((data, stamp))  # parsed on another thread: the next read is not held up

    def _parse(self) -> None:
        while (item := self._frames.get()) is not None:
            self._frame(*item)

    def _arp(self, packet: arp.Arp) -> None:
        if (
            self.our_ip is not None
            and packet.op == arp.OP_REQUEST
            and packet.target_ip == self.our_ip
            and packet.sender_ip != self.our_ip
        ):
            try:
                self._write(arp.reply_to(packet, self.our_mac))
                self.arp_answered += 1
            except OSError:
                pass
        with self._arp_lock:
            event = self._arp_wanted.get(packet.sender_ip)
            if event is not None and self.our_ip is not None and arp.is_answer(packet, packet.sender_ip, self.our_ip):
                self._arp_found[packet.sender_ip] = packet.sender_mac
                event.set()

    def _frame(self, data: bytes, stamp: float) -> None:
        seg = decode(data, stamp)
        if seg is not None:
            self._route(seg, data)


class TapTarget:
    """Context manager: attaches to the TAP device, resolves ADDR; yields the Endpoint and its wire."""

    def __init__(self, spec: TapSpec, index: int, sysctls: dict[str, int] | None = None) -> None:
        self.spec = spec
        self.index = index
        self.sysctls = dict(sysctls or {})
        self.wire: TapWire | None = None

    def __enter__(self) -> tuple[Endpoint, TapWire]:
        spec = self.spec
        if self.sysctls or self.index != 0:
            raise HarnessError("internal: a run opens a TAP target once (cases with sysctls are skipped)")
        our_mac = arp.local_mac(spec.prober_ip)
        self.wire = wire = TapWire(spec.ifname, our_mac, spec.prober_ip, spec.addr)
        try:
            wire.open()
            wire.target_mac = target_mac = wire.resolve(spec.addr)
        except BaseException:
            self.close()
            raise
        ports = spec.services()
        listen = f"listen {spec.port}, " if spec.port is not None else ""
        endpoint = Endpoint(
            iface=spec.ifname,
            netns=None,
            our_mac=our_mac,
            target_mac=target_mac,
            our_ip=spec.prober_ip,
            target_ip=spec.addr,
            ports=ports,
            params=resolve({}),
            description=(
                f"stack behind TAP device {spec.ifname} at {spec.addr} ({target_mac}; {listen}closed "
                f"{spec.closed_port}), prober {spec.prober_ip} ({our_mac}); parameters: documented defaults "
                "(the stack's settings cannot be read); times: user-space receive times (no kernel timestamps "
                "on a TAP descriptor)"
            ),
            kind="tap",
        )
        return endpoint, wire

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.wire is not None:
            wire, self.wire = self.wire, None
            wire.close()
