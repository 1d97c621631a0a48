"""The deviant responder, sans-IO: Ethernet frames in with the time they came, frames out, and when to be woken.

Theory of operation
-------------------
One :class:`~conformance.core.rfc9293.Host` per address family plays TCP (its listeners: ``listen`` apps that
never accept, and ``banner`` apps that send :data:`~conformance.core.rfc9293.apps.BANNER` once established). The
:class:`Responder` around it answers ARP and Neighbor Solicitations for its addresses, learns its peers' MAC
addresses from the frames they send, turns segments into frames with the project's codec, and applies the knobs
(:class:`Knobs`) where the model has none:

* ``tick``: the model's timers are run only on multiples of the tick, and are told that the tick's time is "now"
  (a stack whose timers count ticks: lwIP's 500 ms slow timer, BSD's ``tcp_slowtimo``); a timer due at 3.2 s
  fires at 3.5 s, and the next one is armed from 3.5 s;
* ``icmp_closed``: a segment to a port with neither a listener nor a connection gets an ICMP (ICMPv6) port
  unreachable, built with Scapy, instead of the model's RST;
* ``repeat`` / ``repeat_every``: every segment that carries data is sent again ``repeat`` times, ``repeat_every``
  seconds apart (a broken retransmission queue);
* ``synack_options``: every SYN-ACK carries SACK-permitted, timestamps and window scale, asked for or not
  (RFC 7323 §2.2, §3.2 say only if the SYN had them);
* ``accept_bad_checksum``: segments with a wrong TCP checksum are taken like any other (RFC 9293 MUST-3);
* ``rst_unknown_options``: a segment carrying an option of a kind it does not know is answered with a RST
  instead of being processed (RFC 9293 MUST-6 says ignore it);
* ``hang_on_bad_option_length``: after a segment whose options have an illegal length (below 2, or past the
  header), the responder answers nothing more, as a stack that crashed or hung would (MUST-7).
* ``eol_padding``: every SYN-ACK ends its options with an EOL followed by these octets (zeros conform, RFC 9293
  §3.1 MUST-69; anything else is the deviation);
* ``synack_mss``: every SYN-ACK advertises this MSS instead of the model's (above MMS_R - 20, 65495 over IPv4, is
  the deviation: RFC 9293 §3.7.1 MUST-67);
* ``silent_bad_ack_synrcvd``: in SYN-RECEIVED, an ACK other than ISS+1 is dropped without the RST of RFC 9293
  §3.10.7.4 fifth (EP-10).
* ``answer_from_primary``: a connection opened to the responder's second address (``secondary``) is answered
  from its primary address, as a stack that takes the route's source for every segment would (RFC 9293
  §3.9.1.1 MUST-45 says the connection's own local address).
* ``source_route``: what it does with a completed IP source route (RFC 9293 §3.9.2.1): ``follow`` (conforming)
  reverses it and sends every segment of the connection with the latest one received (MUST-53, SHLD-24);
  ``first`` keeps the one the SYN came by (SHLD-24 not followed, as Linux does); ``ignore`` sends no route
  (MUST-53 broken); ``drop`` drops source-routed datagrams, as an IP layer following RFC 7126 §4.3 does. A
  reversed route is sent to the datagram's source, which is the route's last hop in every route a case writes.

The model's own knobs (backoff, initial and minimum RTO, retry counts) are set through :meth:`Knobs.profile`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from conformance.core.ipfields import IP_OPTION_NOP, received_route, route_option
from conformance.core.rfc9293 import LINUX, RFC, Emitted, Host, ModelProfile, State
from conformance.core.rfc9293.rules import RULES
from conformance.core.segment import IpHeader, Segment, seq_add
from conformance.wire import arp, nd
from conformance.wire.codec import decode, encode

ETH_IPV4, ETH_IPV6 = b"\x08\x00", b"\x86\xdd"
#: The options a SYN-ACK gets under ``synack_options`` besides the model's MSS (20 octets with it).
UNASKED_OPTIONS = ("sackok", "timestamp", "nop", "wscale")
#: The values of the ``source_route`` knob (see the module docstring).
ROUTE_MODES = ("follow", "first", "ignore", "drop")
#: A connection as the responder sees it: its address, its port, the peer's address, the peer's port.
Flow = tuple[str, int, str, int]
#: A timer due within this of a tick boundary fires on that boundary (float noise, not a tick late).
EPSILON = 1e-6


@dataclass(frozen=True)
class Knobs:
    """How the responder deviates (the defaults conform). Times in seconds."""

    #: The model profile the knobs start from: ``rfc`` (RFC 6298 timers: 1 s floor) or ``linux`` (200 ms floor).
    base: str = "rfc"
    #: Timers run only on multiples of this (0: at their deadline).
    tick: float = 0.0
    #: RTO <- RTO x backoff on each expiry (RFC 6298 §5.5: 2).
    backoff: float = 2.0
    rto_initial: float | None = None
    rto_min: float | None = None
    synack_retries: int | None = None
    data_retries: int | None = None
    #: ICMP port unreachable instead of a RST for a segment to a closed port.
    icmp_closed: bool = False
    #: Copies of every data segment, `repeat_every` apart.
    repeat: int = 0
    repeat_every: float = 0.005
    #: SACK-permitted, timestamps and window scale in every SYN-ACK.
    synack_options: bool = False
    accept_bad_checksum: bool = False
    rst_unknown_options: bool = False
    hang_on_bad_option_length: bool = False
    silent_bad_ack_synrcvd: bool = False
    answer_from_primary: bool = False
    eol_padding: bytes | None = None
    synack_mss: int | None = None
    source_route: str = "follow"

    def profile(self) -> ModelProfile:
        """The model's profile: `base` with the knobs the model has."""
        bases = {"rfc": RFC, "linux": LINUX}
        if self.base not in bases:
            raise ValueError(f"unknown base profile {self.base!r}: rfc or linux")
        changes: dict[str, object] = {"backoff": self.backoff}
        for knob, field in (
            ("rto_initial", "rto_initial"),
            ("rto_min", "rto_min"),
            ("synack_retries", "synack_retries"),
            ("data_retries", "data_retries"),
        ):
            value = getattr(self, knob)
            if value is not None:
                changes[field] = value
        if self.accept_bad_checksum:
            changes["check_checksum"] = False  # the model's input drops a damaged segment (MUST-3) unless told not to
        name = f"deviant-{self.base}"
        return replace(bases[self.base], name=name, **changes)  # type: ignore[arg-type]


def next_tick(time: float, tick: float) -> float:
    """The first multiple of `tick` at or after `time` (`time` itself without a tick)."""
    if tick <= 0:
        return time
    return math.ceil(time / tick - EPSILON) * tick


class Responder:
    """See the module docstring. `apps`: port -> ``listen`` or ``banner``; `secondary`: a second IPv4 address."""

    def __init__(
        self,
        knobs: Knobs,
        apps: dict[int, str],
        addr: str | None,
        addr6: str | None = None,
        secondary: str | None = None,
    ) -> None:
        if addr is None and addr6 is None:
            raise ValueError("the responder needs an address (IPv4, IPv6 or both)")
        self.knobs = knobs
        self.addr, self.addr6 = addr, addr6
        self.mac = arp.local_mac(addr) if addr is not None else nd.local_mac(addr6 or "")
        profile = knobs.profile()
        self.hosts: dict[str, Host] = {}
        for address in (addr, addr6):
            if address is not None:
                host = Host(address, profile)
                for port, app in apps.items():
                    host.listen(port, app)
                self.hosts[address] = host
        if secondary is not None and addr is not None:  # a host of its own (its local address), or the knob's
            self.hosts[secondary] = self.hosts[addr] if knobs.answer_from_primary else Host(secondary, profile)
            for port, app in apps.items() if not knobs.answer_from_primary else ():
                self.hosts[secondary].listen(port, app)
        self.macs: dict[str, str] = {}  # peer address -> its MAC, learnt from its frames
        self.repeats: list[tuple[float, bytes]] = []  # (when, frame), in time order
        self.counts = {"in": 0, "out": 0, "icmp": 0, "repeats": 0, "arp": 0, "nd": 0}
        self.hung = False
        self.routes: dict[Flow, bytes] = {}  # a connection's reversed source route, the option's octets
        if knobs.source_route not in ROUTE_MODES:
            raise ValueError(f"unknown source_route {knobs.source_route!r}: one of {', '.join(ROUTE_MODES)}")

    # ---------------------------------------------------------------- events
    def receive(self, frame: bytes, now: float) -> list[bytes]:
        """A frame from the wire: the frames to send in reply."""
        found = arp.parse(frame)
        if found is not None:
            return self._arp(found)
        if nd.is_nd(frame):
            solicitation = nd.parse(frame)
            if solicitation is not None and self.addr6 is not None and nd.asks_for(solicitation, self.addr6):
                self.counts["nd"] += 1
                return [nd.advertise_to(solicitation, self.mac)]
            return []
        seg = decode(frame, now)
        damaged = seg is not None and seg.checksum_ok is False and not self.knobs.accept_bad_checksum
        if self.hung or seg is None or seg.dst not in self.hosts or damaged:
            return []  # not ours, or damaged: a stack drops it (RFC 9293 §3.1, MUST-2)
        if self.knobs.hang_on_bad_option_length and illegal_option_length(frame):
            self.hung = True
            return []
        if self.knobs.rst_unknown_options and any(kind.startswith("kind") for kind, _ in seg.options):
            acked = "A" in seg.flags
            rst = Segment(seg.dst, seg.src, seg.dport, seg.sport, seq=seg.ack if acked else 0,
                          ack=seq_add(seg.seq, seg.seg_len), flags="R" if acked else "RA", window=0)  # fmt: skip
            return self._frames([Emitted(rst, RULES["closed/ack" if acked else "closed/no-ack"])], now)
        if not self._take_route(seg):
            return []
        self.counts["in"] += 1
        self.macs[seg.src] = arp.mac_text(frame[6:12])
        host = self.hosts[seg.dst]
        if self.knobs.silent_bad_ack_synrcvd and bad_ack_in_syn_received(host, seg):
            return []
        if self.knobs.icmp_closed and self._closed(host, seg):
            self.counts["icmp"] += 1
            return [icmp_port_unreachable(frame, self.mac)]
        return self._frames(host.receive(seg, now), now)

    def wake(self) -> float | None:
        """When :meth:`due` must next be called if no frame comes (None: only when one does)."""
        times = [next_tick(t, self.knobs.tick) for t in (h.deadline() for h in self.hosts.values()) if t is not None]
        if self.repeats:
            times.append(self.repeats[0][0])
        return min(times) if times else None

    def due(self, now: float) -> list[bytes]:
        """The frames due by `now`: timers (on the tick's boundaries), then repeats."""
        out: list[bytes] = []
        for host in self.hosts.values():
            while (deadline := host.deadline()) is not None and (fire := next_tick(deadline, self.knobs.tick)) <= now:
                # on a tick, the model is told the tick's time: the next timer is armed from the boundary
                out += self._frames(host.advance(fire if self.knobs.tick else now), now)
                if host.deadline() == deadline:
                    break  # nothing changed (a deadline the model does not act on yet): wait for the next event
        while self.repeats and self.repeats[0][0] <= now:
            out.append(self.repeats.pop(0)[1])
            self.counts["repeats"] += 1
        return out

    # ---------------------------------------------------------------- internals
    def _arp(self, packet: arp.Arp) -> list[bytes]:
        self.macs[packet.sender_ip] = packet.sender_mac
        if packet.op == arp.OP_REQUEST and packet.target_ip == self.addr and packet.sender_ip != self.addr:
            self.counts["arp"] += 1
            return [arp.reply_to(packet, self.mac)]
        return []

    def _take_route(self, seg: Segment) -> bool:
        """Keep the reversed route of a completed source route `seg` carries, as the knob says; False: drop `seg`."""
        raw = seg.extra.get("ip_options")
        found = received_route(raw) if isinstance(raw, bytes) else None
        if found is None:
            return True
        mode = self.knobs.source_route
        _, pointer, hops = found
        flow = (seg.dst, seg.dport, seg.src, seg.sport)
        completed = pointer > 3 + 4 * len(hops)
        if completed and mode == "follow" or (completed and mode == "first" and flow not in self.routes):
            # the return route: the last hop first (where it is sent), then the others backwards, then the source
            back = (*hops[-2::-1], seg.src)
            self.routes[flow] = route_option(back, seg.src, pointer=4) + bytes([IP_OPTION_NOP])
        return mode != "drop"

    @staticmethod
    def _closed(host: Host, seg: Segment) -> bool:
        return seg.dport not in host.listeners and (seg.dport, seg.src, seg.sport) not in host.tcbs

    def _frames(self, emitted: list[Emitted], now: float) -> list[bytes]:
        out = []
        for item in emitted:
            seg = item.segment
            if self.knobs.synack_options and seg.flags == "SA":
                seg = with_unasked_options(seg, now)
            if self.knobs.synack_mss is not None and seg.flags == "SA":
                mss = self.knobs.synack_mss
                seg = replace(seg, options=tuple((k, mss if k == "mss" else v) for k, v in seg.options))
            if self.knobs.eol_padding is not None and seg.flags == "SA":  # EOL and what follows it, as they are
                seg = replace(seg, options=(*seg.options, ("raw", b"\0" + self.knobs.eol_padding)))
            route = self.routes.get((seg.src, seg.sport, seg.dst, seg.dport))
            if route is not None:
                seg = replace(seg, ip=IpHeader(options=route))
            frame = encode(seg, self.mac, self.macs.get(seg.dst, arp.BROADCAST))
            out.append(frame)
            if seg.payload and self.knobs.repeat:
                every = self.knobs.repeat_every
                self.repeats += [(now + every * (i + 1), frame) for i in range(self.knobs.repeat)]
                self.repeats.sort(key=lambda item: item[0])
        self.counts["out"] += len(out)
        return out


def bad_ack_in_syn_received(host: Host, seg: Segment) -> bool:
    """Whether `seg` is an ACK (not a RST) other than ISS+1 for a connection of `host` in SYN-RECEIVED."""
    tcb = host.tcbs.get((seg.dport, seg.src, seg.sport))
    if tcb is None or tcb.state is not State.SYN_RECEIVED or "A" not in seg.flags or "R" in seg.flags:
        return False
    return seg.ack != seq_add(tcb.iss, 1)


def illegal_option_length(frame: bytes) -> bool:
    """Whether the TCP options of an IPv4 or IPv6 frame (no IP options, no extension headers) hold a length
    below 2 or one that runs past the header."""
    start = 14 + (20 if frame[12:14] == ETH_IPV4 else 40)
    raw = frame[start + 20 : start + (frame[start + 12] >> 4) * 4]
    i = 0
    while i < len(raw) and raw[i] != 0:
        if raw[i] == 1:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            return True
        i += raw[i + 1]
    return False


def with_unasked_options(seg: Segment, now: float) -> Segment:
    """`seg` (a SYN-ACK) with SACK-permitted, timestamps and window scale after its own options."""
    tsval = int(now * 1000) & 0xFFFFFFFF
    values: dict[str, object] = {"sackok": None, "timestamp": (tsval, 0), "nop": None, "wscale": 7}
    return replace(seg, options=seg.options + tuple((name, values[name]) for name in UNASKED_OPTIONS))


def icmp_port_unreachable(frame: bytes, our_mac: str) -> bytes:
    """The ICMP (RFC 792: type 3 code 3) or ICMPv6 (RFC 4443: type 1 code 4) port unreachable that answers the
    TCP segment in `frame`, quoting its IP datagram (as much as fits in 576 / 1280 octets), built with Scapy."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
    from scapy.layers.l2 import Ether

    ether = Ether(src=our_mac, dst=arp.mac_text(frame[6:12]))
    if frame[12:14] == ETH_IPV4:
        datagram = frame[14 : 14 + int.from_bytes(frame[16:18], "big")]
        ip = IP(datagram)
        return bytes(ether / IP(src=ip.dst, dst=ip.src) / ICMP(type=3, code=3) / datagram[: 576 - 28])
    if frame[12:14] == ETH_IPV6:
        datagram = frame[14 : 54 + int.from_bytes(frame[18:20], "big")]
        ip6 = IPv6(datagram)
        return bytes(ether / IPv6(src=ip6.dst, dst=ip6.src) / ICMPv6DestUnreach(code=4) / datagram[: 1280 - 48])
    raise ValueError("not an IPv4 or IPv6 frame")
