"""The wire: layer-2 injection and capture with Scapy, demultiplexed by flow.

It carries the dialogues' segments (:mod:`conformance.wire.arp` asks a remote target's
next hop on a short-lived socket of its own). One :class:`Wire` per prober
interface opens

* a capture socket (Scapy ``L2ListenSocket``) that sees both directions, with
  the kernel's receive timestamp (``SO_TIMESTAMPNS``) on every frame — our own
  frames come back too, which gives their true send time;
* a send socket (Scapy ``L2Socket``).

Both are opened inside the prober's network namespace when it has one. A
capture thread reads raw frames, converts them to
:class:`~conformance.core.segment.Segment` with :mod:`conformance.wire.codec` (struct on
the hot path, Scapy for anything unusual) and hands each to the dialogue that
owns its 4-tuple (our source port), through a queue: a dialogue waiting for a
segment blocks on its queue and costs no CPU.
With ``peer_ip`` / ``peer_ip6`` only segments between our address and the target's are
delivered (a remote target's interface carries its host's own traffic too).
:class:`conformance.wire.tap.TapWire` has the same interface on a TAP descriptor.
"""

from __future__ import annotations

import queue
import select
import socket
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.errors import HarnessError
from ..core.segment import IcmpError, Segment
from .barrier import Barrier
from .codec import checksum_ok, decode, decode_icmp, encode, to_frame, to_segment

__all__ = ["Captured", "CapturedIcmp", "Wire", "checksum_ok", "to_frame", "to_segment"]

SOL_PACKET, PACKET_STATISTICS, SO_RCVBUFFORCE = 263, 6, 33
CAPTURE_BUFFER = 32 * 1024 * 1024
#: How long :meth:`Wire.catch_up` waits for the capture thread to read what is queued (it reads ~100 k frames/s).
CATCH_UP = 2.0


class Sink(Protocol):
    """Where a subscribed flow's segments go: a queue, or the player's inbox."""

    def put(self, item: Captured | CapturedIcmp) -> None: ...


@dataclass(frozen=True)
class Captured:
    """A segment of a subscribed flow, with its raw frame for the pcap."""

    segment: Segment
    frame: bytes


@dataclass(frozen=True)
class CapturedIcmp:
    """An ICMP or ICMPv6 error about a subscribed flow (it quotes one of our segments), with its raw frame."""

    error: IcmpError
    frame: bytes


class Wire:
    """Injection and capture on one prober interface; see the module docstring."""

    #: Where :attr:`drops` are counted, for the harness error of a case that lived through some.
    loss_cause = "the kernel dropped them, the capture socket's queue full: its PACKET_STATISTICS"

    def __init__(
        self,
        iface: str,
        netns: str | None,
        our_mac: str,
        target_mac: str,
        our_ip: str | None,
        peer_ip: str | None = None,
        our_ip6: str | None = None,
        peer_ip6: str | None = None,
    ) -> None:
        self.iface = iface
        self.netns = netns
        self.our_mac = our_mac
        try:  # our frames' source MAC (a test's wire may be given a placeholder)
            self._our_mac_raw = bytes.fromhex(our_mac.replace(":", ""))
        except ValueError:
            self._our_mac_raw = b""
        self.target_mac = target_mac
        #: The MAC IPv6 frames go to, when it is not `target_mac` (a remote host's two families may have two
        #: next hops, a user-space stack two interfaces' worth of addresses).
        self.target_mac6: str | None = None
        self.our_ip = our_ip
        self.our_ip6 = our_ip6
        #: Our addresses: a segment from one of them is ours (captured on its way out).
        self.ours = {ip for ip in (our_ip, our_ip6) if ip}
        #: When a peer address is given, only segments between our address and the peer's of the same family
        #: are delivered (an interface with an address, such as a remote target's, also carries the host's own
        #: traffic).
        self.peer_ip = peer_ip
        self.peer_ip6 = peer_ip6
        self._pairs = [{ours, peer} for ours, peer in ((our_ip, peer_ip), (our_ip6, peer_ip6)) if ours and peer]
        self._filtered = peer_ip is not None or peer_ip6 is not None
        self._subs: dict[int, Sink] = {}
        self._icmp_subs: set[int] = set()  # ports whose sink takes ICMP errors (CapturedIcmp) too
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cap: Any = None
        self._out: Any = None
        self.stray = 0  # frames of no subscribed flow
        #: Frames the kernel dropped because the capture socket was full (PACKET_STATISTICS):
        #: a case that lived through a drop cannot be judged (see conformance.run.player).
        self.drops = 0
        self._barrier = Barrier()

    def __enter__(self) -> Wire:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        import scapy.layers.inet  # noqa: F401 - registers Ether/IP/TCP for dissection
        import scapy.layers.inet6  # noqa: F401 - and IPv6
        import scapy.layers.l2  # noqa: F401
        from scapy.arch.linux import L2ListenSocket, L2Socket

        entered = False
        try:
            if self.netns:
                from pyroute2 import netns as pr_netns

                pr_netns.pushns(self.netns)
                entered = True
            # Not promiscuous: the target addresses its frames to the prober's own MAC (and
            # Scapy's promiscuous switch looks the interface up in a process-wide cache that a
            # second run in the same process, with a new veth of the same name, would miss).
            self._cap = L2ListenSocket(iface=self.iface, promisc=False)
            self._out = L2Socket(iface=self.iface, promisc=False)
            try:  # room for bursts: a frame the kernel drops here would look like a silent target
                self._cap.ins.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, CAPTURE_BUFFER)
            except OSError:
                self._cap.ins.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CAPTURE_BUFFER)
        except OSError as exc:
            self.close()
            raise HarnessError(
                f"cannot open raw sockets on {self.iface}: {exc.strerror}", "run as root (CAP_NET_RAW)"
            ) from None
        finally:
            if entered:
                from pyroute2 import netns as pr_netns

                pr_netns.popns()
        self._thread = threading.Thread(target=self._capture, name=f"capture-{self.iface}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the capture thread (it sees the stop within its 0.2 s wait), then release what :meth:`open`
        opened; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._release()

    def _release(self) -> None:
        """Close the sockets, once the capture thread has stopped."""
        for s in (self._cap, self._out):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self._cap = self._out = None
        self._barrier.close()

    def catch_up(self, timeout: float = CATCH_UP) -> float | None:
        """Wait until every frame that had arrived by now is handed to its dialogue (and its drops counted):
        the time up to which the capture is complete, or None when the capture thread did not answer in
        `timeout` seconds. See :mod:`conformance.wire.barrier`."""
        if self._thread is None:
            return None
        return self._barrier.ask(timeout)

    def subscribe(self, ports: Iterable[int], into: Sink | None = None, icmp: bool = False) -> Sink:
        """Deliver every segment to or from these source ports of ours to `into` (default: a new queue), and
        with `icmp` every ICMP error that quotes a segment of ours from them (as :class:`CapturedIcmp`)."""
        q: Sink = queue.Queue() if into is None else into
        with self._lock:
            for p in ports:
                if p in self._subs:
                    raise HarnessError(f"internal: port {p} is subscribed twice")
                self._subs[p] = q
                if icmp:
                    self._icmp_subs.add(p)
        return q

    def unsubscribe(self, ports: Iterable[int]) -> None:
        with self._lock:
            for p in ports:
                self._subs.pop(p, None)
                self._icmp_subs.discard(p)

    def mac_for(self, seg: Segment) -> str:
        """The Ethernet destination of a segment we send: the next hop of its address family."""
        return self.target_mac6 if self.target_mac6 is not None and ":" in seg.dst else self.target_mac

    def send(self, seg: Segment) -> None:
        if self._filtered and {seg.src, seg.dst} not in self._pairs:  # a named address (core.ipfields): a
            self._pairs.append({seg.src, seg.dst})  # broadcast; what we send, and answers to it, are our flows
        self._out.outs.send(encode(seg, self.our_mac, self.mac_for(seg)))

    def _capture(self) -> None:
        while not self._stop.is_set():
            self._count_drops()
            asked, at = self._barrier.pending()  # before the socket is looked at (see wire.barrier)
            # A question that came while the last select() was waiting has had its pipe byte cleared already:
            # do not wait 0.2 s for the pipe again, look at the socket at once (it was 200 ms per agent step).
            wait = 0.0 if self._barrier.waiting() else 0.2
            ready = select.select([self._cap, self._barrier], [], [], wait)[0]
            if self._barrier in ready:
                self._barrier.clear()
            if self._cap not in ready:
                self._barrier.answer(asked)  # the socket was empty after the question
                continue
            try:  # raw bytes and the kernel's receive time: no Scapy dissection (see conformance.wire.codec)
                _, frame, stamp = self._cap.recv_raw()
            except OSError:
                if self._stop.is_set():
                    return
                continue
            if not frame or stamp is None:
                continue
            self._received(frame, float(stamp))
            if stamp >= at:  # the queue is in arrival order: what came before the question is read
                self._barrier.answer(asked)

    def _received(self, frame: bytes, stamp: float) -> None:
        """A frame the capture socket read, with its kernel timestamp: its segment goes to its dialogue."""
        seg = decode(frame, stamp)
        if seg is not None:
            self._route(seg, frame)
        elif (error := decode_icmp(frame, stamp)) is not None:
            self._route_icmp(error, frame)

    def _count_drops(self) -> None:
        try:  # struct tpacket_stats {tp_packets, tp_drops}; reading it resets the counters
            raw = self._cap.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        except (OSError, AttributeError):
            return
        self.drops += struct.unpack("II", raw)[1]

    def _route(self, seg: Segment, frame: bytes) -> None:
        """Hand a captured segment to the dialogue that owns its flow (our source port)."""
        # Ours: from our address, or from our MAC with a source a case named (core.ipfields: 0.0.0.0, a broadcast)
        named_source = bool(self._our_mac_raw) and seg.src not in self.ours and frame[6:12] == self._our_mac_raw
        if named_source:
            seg.extra["ours"] = True
        elif self._filtered and {seg.src, seg.dst} not in self._pairs:
            self.stray += 1
            return
        port = seg.sport if seg.src in self.ours or named_source else seg.dport
        with self._lock:
            q = self._subs.get(port)
        if q is None:
            self.stray += 1
            return
        q.put(Captured(seg, frame))

    def _route_icmp(self, error: IcmpError, frame: bytes) -> None:
        """Hand an ICMP error to the dialogue that sent the segment it quotes, when that dialogue takes ICMP."""
        q = error.quoted
        if error.src in self.ours:  # one we sent (about the target's segment q), captured on its way out
            q = Segment(q.dst, q.src, q.dport, q.sport)
        if q.src not in self.ours or (self._filtered and {q.src, q.dst} not in self._pairs):
            self.stray += 1
            return
        with self._lock:
            sink = self._subs.get(q.sport) if q.sport in self._icmp_subs else None
        if sink is None:
            self.stray += 1
            return
        sink.put(CapturedIcmp(error, frame))
