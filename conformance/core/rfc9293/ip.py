"""The IP layer under the model's TCP (RFC 9293 §3.9.2, RFC 1122 §3.2): what reaches TCP, and what leaves it.

Theory of operation
-------------------
An :class:`IpLayer` stands between the wire and :class:`~.host.Host`, which is TCP. On the way in,
:meth:`IpLayer.arrive` says whether a datagram the wire brought reaches TCP at all: one to a broadcast address
(MUST-57), one from an invalid source (MUST-63), a source-routed one the host does not accept (Linux
``accept_source_route``) are dropped, each with the :class:`~.rules.Rule` that dropped it; a completed
source route on a connection's segment is kept as the connection's return route (MUST-53, SHLD-24). An ICMP
error (a segment whose ``extra["icmp"]`` is the :class:`~conformance.core.segment.IcmpError`, as the engine sends
it) goes to :func:`icmp`, which says what the connection it quotes does (§3.9.2.2). On the way out,
:meth:`IpLayer.output` gives each segment the header fields the wire decoder fills for a captured one
(``extra``: ``ttl``, ``tos``, ``ip_id``, ``ip_options``, :mod:`conformance.wire.codec`) from the connection's
:class:`IpState` (IP_TTL, IP_TOS, the IPv4 identification, the return route), and sends a source-routed segment to
the route's first hop.

The profile's knobs say where Linux 6.18 departs from the documents (:mod:`.profile`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from ..ipfields import IP_OPTION_EOL, received_route
from ..segment import IcmpError, Segment, seq_diff
from .profile import ICMP_HARD, ICMP_SOFT, ModelProfile
from .rules import Rule

#: RFC 1122 §3.2.1.7: the TTL of the host's datagrams, when the application set none (Linux ip_default_ttl 64).
DEFAULT_TTL = 64
#: ICMP Source Quench (RFC 792), which RFC 6633 deprecated.
SOURCE_QUENCH = 4
#: Destination unreachable codes and the errno Linux gives the application (icmp_err_convert).
UNREACHABLE_ERRNO = {
    0: "ENETUNREACH",
    1: "EHOSTUNREACH",
    2: "ENOPROTOOPT",
    3: "ECONNREFUSED",
    4: "EMSGSIZE",
    5: "EOPNOTSUPP",
}
#: The connection's key in the host: local port, remote address, remote port.
Key = tuple[int, str, int]

_RULES = (
    Rule("ip/to-broadcast", "§3.9.2.3", "a SYN addressed to a broadcast or multicast address is discarded (MUST-57)"),
    Rule(
        "ip/bad-source",
        "§3.9.2.3 (RFC 1122 §3.2.1.3)",
        "a SYN from an invalid source address is ignored (MUST-63): IP discards a datagram from one",
    ),
    Rule(
        "ip/source-routed",
        "§3.9.2.1 (RFC 7126 §4.3; Linux accept_source_route 0)",
        "a source-routed datagram is dropped by IP before TCP sees it",
    ),
    Rule("icmp/no-connection", "§3.9.2.2", "an ICMP error quoting no connection of the host: nothing to act on"),
    Rule(
        "icmp/stale",
        "§3.9.2.2 (RFC 5927 §4.1; Linux tcp_v4_err, tcp_req_err)",
        "an ICMP error quoting a sequence number not in flight (SND.UNA..SND.NXT) is ignored",
    ),
    Rule("icmp/quench", "§3.9.2.2", "an ICMP Source Quench is silently discarded (MUST-55)"),
    Rule(
        "icmp/soft",
        "§3.9.2.2",
        "a soft error (unreachable 0, 1, 5, time exceeded, parameter problem): not aborted (MUST-56)",
    ),
    Rule("icmp/hard", "§3.9.2.2", "a hard error (unreachable 2-4): the connection is aborted (SHLD-26)"),
    Rule(
        "icmp/kept",
        "§3.9.2.2 (Linux tcp_v4_err, tcp_req_err; RFC 5461 §4)",
        "an ICMP error the stack only notes (Linux: sk_err_soft unless IP_RECVERR): the connection goes on",
    ),
    Rule(
        "icmp/aborted",
        "§3.9.2.2 (Linux tcp_v4_err, tcp_req_err; RFC 5461 §4)",
        "an ICMP error during the handshake ends the connection (Linux treats it as hard there)",
    ),
)
RULES: dict[str, Rule] = {r.key: r for r in _RULES}


class Conn(Protocol):
    """What the IP layer reads and sets of a connection (a :class:`~.tcb.Tcb`)."""

    local: tuple[str, int]

    @property
    def state(self) -> object: ...
    @property
    def passive(self) -> bool: ...
    @property
    def iss(self) -> int: ...
    @property
    def snd_una(self) -> int: ...
    @property
    def snd_nxt(self) -> int: ...
    @property
    def ip(self) -> IpState: ...


C = TypeVar("C", bound=Conn)


@dataclass
class IpState:
    """The IP header fields of one connection's datagrams: the application's IP_TTL and IP_TOS (RFC 9293 §3.9.2
    MUST-49, §3.9.1.9 MUST-48), the IPv4 identification of each datagram (§3.8.1 MAY-4), and the return route
    (MUST-53): its first hop and the option octets."""

    ttl: int = DEFAULT_TTL
    tos: int = 0
    tos_set: bool = False
    next_id: int | None = None
    #: (seq, flags, length) of a segment sent -> the identification it went with (for a retransmission).
    ids: dict[tuple[int, str, int], int] = field(default_factory=dict)
    route: tuple[str, bytes] | None = None


def return_route(options: bytes, source: str) -> tuple[str, bytes] | None:
    """The return route of a completed source route (RFC 791 §3.1, RFC 1122 §3.2.1.8): the recorded hops
    reversed, then the datagram's `source`; the first of them is the first hop, the option carries the rest,
    pointer 4. A recorded hop equal to `source` is left out (RFC 1812 §5.2.4.1; Linux ip_options_echo). None when
    the options hold no completed route."""
    found = received_route(options)
    if found is None:
        return None
    kind, pointer, hops = found
    if not hops or pointer <= 3 + 4 * len(hops):  # not completed: the datagram has not reached its end
        return None
    back = [*reversed(hops[:-1])] + ([] if hops[0] == source else [source])
    body = b"".join(ipaddress.IPv4Address(h).packed for h in back)
    option = bytes([kind, 3 + len(body), 4]) + body
    return hops[-1], option + bytes([IP_OPTION_EOL]) * (-len(option) % 4)


class IpLayer:
    """The host's IP layer: its addresses, the input checks, and the header of what it sends (module docstring)."""

    def __init__(self, profile: ModelProfile, address: str, prefix: int | None = None, secondary: str | None = None):
        self.profile = profile
        self.addresses = (address,) if secondary is None else (address, secondary)
        self.network = ipaddress.ip_network(f"{address}/{prefix}", strict=False) if prefix is not None else None
        self._next_id = 1  # for datagrams of no connection (a RST from CLOSED)

    # ---------------------------------------------------------------- addresses
    def is_broadcast(self, address: str) -> bool:
        """The limited broadcast, the subnet's directed broadcast, or a multicast address (RFC 1122 §3.2.1.3)."""
        a = ipaddress.ip_address(address)
        directed = self.network is not None and a == self.network.broadcast_address
        return a.is_multicast or str(a) == "255.255.255.255" or directed

    def invalid_source(self, address: str) -> bool:
        """RFC 1122 §3.2.1.3 (MUST-63): 0.0.0.0, a broadcast or multicast address, or the host's own."""
        return address == "0.0.0.0" or self.is_broadcast(address) or address in self.addresses

    def refuses_open(self, remote: str) -> bool:
        """An active OPEN to a broadcast or multicast address is an error (§3.9.1.1 MUST-46; Linux tcp_v4_connect:
        a route with RTCF_BROADCAST or RTCF_MULTICAST, ENETUNREACH)."""
        return self.profile.reject_open_to_broadcast and self.is_broadcast(remote)

    # ---------------------------------------------------------------- input
    def arrive(self, seg: Segment, tcb: Conn | None) -> Rule | None:
        """A datagram for the host: None when TCP gets it (a route it carries becomes `tcb`'s return route where
        the profile says so, SHLD-24), else the rule that dropped it."""
        p = self.profile
        if p.drop_syn_to_broadcast and self.is_broadcast(seg.dst):  # Linux: tcp_v4_conn_request, tcp_v4_send_reset
            return RULES["ip/to-broadcast"]  # skip a route that is not local
        if p.drop_invalid_source and self.invalid_source(seg.src):
            return RULES["ip/bad-source"]
        route = return_route(seg.ip.options, seg.src) if seg.ip is not None else None
        if route is not None and not p.accept_source_route:
            return RULES["ip/source-routed"]
        if route is not None and tcb is not None and p.later_route_overrides:
            tcb.ip.route = route
        return None

    def passive_open(self, tcb: C, syn: Segment) -> C:
        """A connection a SYN opened: at the address the SYN came to (§3.9.1.1 MUST-45: the same local address as
        the segments received), with the SYN's return route (MUST-53)."""
        if self.profile.reply_from_arrival_address and syn.dst in self.addresses:
            tcb.local = (syn.dst, tcb.local[1])
        if syn.ip is not None:
            tcb.ip.route = return_route(syn.ip.options, syn.src)
        return tcb

    # ---------------------------------------------------------------- output
    def output(self, seg: Segment, tcb: Conn | None) -> Segment:
        """`seg` as it leaves in a datagram: the connection's TTL, TOS, identification and return route (sent to
        its first hop); a segment of no connection gets the defaults."""
        if tcb is None:
            self._next_id = (self._next_id + 1) & 0xFFFF
            return replace(seg, extra={**seg.extra, "ttl": DEFAULT_TTL, "tos": 0, "ip_id": self._next_id})
        state = tcb.ip
        extra: dict[str, object] = {"ttl": state.ttl, "tos": state.tos, "ip_id": self._ident(seg, tcb)}
        dst = seg.dst
        if state.route is not None and self.profile.reverse_route:
            dst, extra["ip_options"] = state.route
        return replace(seg, dst=dst, extra={**seg.extra, **extra})

    def _ident(self, seg: Segment, tcb: Conn) -> int:
        """The IPv4 identification: 0 on a SYN-ACK under Linux (DF set, ip_build_and_send_pkt); else the next of
        the connection's counter (Linux inet_id, from a random start: here from the ISS), the original's for a
        retransmission when the profile reuses it (MAY-4)."""
        p, state = self.profile, tcb.ip
        if "S" in seg.flags and "A" in seg.flags and p.synack_ip_id_zero:
            return 0
        key = (seg.seq, seg.flags, len(seg.payload))
        if seg.seg_len and p.retransmit_reuses_ip_id and key in state.ids:
            return state.ids[key]
        ident = tcb.iss >> 16 if state.next_id is None else state.next_id
        state.next_id = (ident + 1) & 0xFFFF
        if seg.seg_len:
            state.ids[key] = ident
        return ident

    def set_options(self, tcb: Conn, options: Mapping[str, object]) -> None:
        """setsockopt IP_TTL (MUST-49) and IP_TOS (MUST-48, SHLD-21): the fields of the connection's next datagrams.
        IP_TOS keeps the two ECN bits (Linux __ip_sock_set_tos on a stream socket; RFC 3168 §6.1)."""
        p, state = self.profile, tcb.ip
        if "IP_TTL" in options and p.honour_ip_ttl:
            ttl = int(str(options["IP_TTL"]))
            state.ttl = DEFAULT_TTL if ttl == -1 else ttl
        if "IP_TOS" in options and p.honour_ip_tos and (p.tos_changes or not state.tos_set):
            state.tos = (int(str(options["IP_TOS"])) & ~3 | state.tos & 3) & 0xFF
            state.tos_set = True


def connection_of(seg: Segment, tcbs: Mapping[Key, Conn], gone: Iterable[Conn]) -> Conn | None:
    """The connection a segment the host sends belongs to: a live one, or the last deleted with its addressing
    (the RST of an ABORT leaves after its TCB)."""
    key = (seg.sport, seg.dst, seg.dport)
    found = tcbs.get(key)
    if found is None:
        found = next((t for t in reversed(list(gone)) if _key(t) == key), None)
    return found


def _key(tcb: object) -> Key | None:
    local, remote = getattr(tcb, "local", None), getattr(tcb, "remote", None)
    if not isinstance(local, tuple) or not isinstance(remote, tuple):
        return None
    return (int(local[1]), str(remote[0]), int(remote[1]))


def icmp(profile: ModelProfile, error: IcmpError, tcb: Conn | None) -> tuple[Rule, bool]:
    """What an ICMP error does to the connection of the segment it quotes (§3.9.2.2, MUST-54): the rule applied,
    and whether the connection is aborted. The error must quote a sequence number in flight (RFC 5927 §4.1; Linux
    tcp_v4_err: SND.UNA..SND.NXT, tcp_req_err: a request's ISS)."""
    p, kind = profile, (error.type, error.code)
    if error.type == SOURCE_QUENCH:
        return (RULES["icmp/quench"], False) if p.discard_source_quench else (RULES["icmp/hard"], tcb is not None)
    if tcb is None:
        return RULES["icmp/no-connection"], False
    seq = error.quoted.seq
    state = getattr(tcb.state, "value", tcb.state)
    request = state == "SYN-RECEIVED" and tcb.passive
    if seq_diff(seq, tcb.snd_una) < 0 or seq_diff(tcb.snd_nxt, seq) < 0 or (request and seq != tcb.iss):
        return RULES["icmp/stale"], False
    if request:
        aborting = p.icmp_abort_request
    elif state in ("SYN-SENT", "SYN-RECEIVED"):
        aborting = p.icmp_abort_syn_sent
    elif state == "TIME-WAIT":  # Linux tcp_v4_err: a timewait sock ignores ICMP; RFC 9293: nothing to abort
        aborting = frozenset()
    else:
        aborting = p.icmp_abort_synchronized
    if kind in aborting:
        return RULES["icmp/hard" if kind in ICMP_HARD else "icmp/aborted"], True
    return RULES["icmp/soft" if kind in ICMP_SOFT else "icmp/kept"], False


def reason(error: IcmpError) -> str:
    """Why an ICMP error ended a connection, as the errno the application gets (Linux net/ipv4/icmp.c
    icmp_err_convert for destination unreachable; tcp_v4_err: EHOSTUNREACH for time exceeded, EPROTO for a
    parameter problem)."""
    if error.type == 3:
        return UNREACHABLE_ERRNO.get(error.code, "EHOSTUNREACH")
    return "EPROTO" if error.type == 12 else "EHOSTUNREACH"


def icmp_error(seg: Segment) -> IcmpError | None:
    """The ICMP error a segment stands for (the engine's ``extra["icmp"]``), or None."""
    error = seg.extra.get("icmp")
    return error if isinstance(error, IcmpError) else None
