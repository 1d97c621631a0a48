"""The IP level of the case language: ICMP errors we send, IPv4 header fields we set, and those we check.

Three things a TCP case needs below TCP (RFC 9293 §3.9.2):

* ``send: {icmp: {type: 3, code: 3, quote: LABEL}}`` — an ICMP error (RFC 792) from the prober about the
  target's segment LABEL (an earlier ``expect``), quoting that segment: its IP header and TCP header as captured.
  Only the errors RFC 9293 §3.9.2.2 classifies can be sent (:data:`ICMP_SENDABLE`); IPv4 only.
* ``send: {..., ip: {ttl, tos, id, options, src, dst}}`` — IPv4 header fields of a segment we send. ``options``
  (RFC 791 §3.1) in the order written: ``nop: N``, ``eol: true``, ``timestamp: N`` (an empty timestamp option,
  type 68, with room for N stamps), ``unknown: T`` (an option of type T, four octets, where T is one of the
  values RFC 4727 §2.5 reserves for experiments, so that no stack can know it). ``src`` and ``dst`` are names,
  never addresses: ``dst: broadcast`` (the target subnet's directed broadcast, which the run knows only for a
  target whose prefix it set up), ``dst: secondary`` (the target's second address, which only the embedded target
  has: the connection's segments go there from then on, RFC 9293 §3.9.1.1), ``src: unspecified`` (0.0.0.0) or
  ``src: broadcast``; every address that can come out of them is in the test range or 0.0.0.0. A send that names
  only ``dst: secondary`` is played over IPv6 too.
* ``options: {lsrr: [198.18.0.9, prober]}`` in a send — a completed loose source route (RFC 791 §3.1, type
  131): the hops the datagram is said to have come through, the pointer past the last (it has arrived). Each
  hop is an address in the test range 198.18.0.0/15 or ``prober`` (our own address), and the last is
  ``prober``: the target's reply goes to that hop first (the reversed route, RFC 9293 §3.9.2.1 MUST-53), so
  it comes to us and to no other host. The TCP checksum covers the IP destination (the route is complete).
  The same list in an expect (``ip: {options: {lsrr: [...]}}``) is the route the target's segment must carry,
  pointer 4 (nothing of it used yet), and the segment must be addressed to the prober (the route's first hop);
  the check is named ``ip``.
* ``expect: {..., ip: {src: secondary}}`` — the target's address the segment must come from, by name
  (``primary``, ``secondary``, or a list of them: any one); the check is named ``ip``.
* ``expect: {..., ip: {ttl: 64, tos: 0, id: NAME}}`` — IP header fields of the target's segment (TTL or IPv6 hop
  limit, TOS or IPv6 traffic class, IPv4 identification): each is a check named ``ip``. ``bind: {NAME: ip_id}``
  (or ``ttl``, ``tos``) keeps a field's value.

Every value is bounded here and every error names the file, line and field (through the step builder).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .errors import CaseFormatError
from .segment import IpHeader, Segment
from .values import Expr

Path_ = tuple[str | int, ...]
#: A check's field, what was expected, what was observed, and whether they agree (a matching.FieldDiff's parts).
FieldDiffLike = tuple[str, str, str, bool]

#: ICMP errors a case may send (type: codes), RFC 9293 §3.9.2.2: destination unreachable's soft (0, 1, 5) and hard
#: (2-4) codes, source quench, time exceeded, parameter problem.
ICMP_SENDABLE: dict[int, tuple[int, ...]] = {3: (0, 1, 2, 3, 4, 5), 4: (0,), 11: (0, 1), 12: (0,)}
#: Names a case gives the source and destination of a segment it sends in place of its own and the target's.
SOURCES = ("unspecified", "broadcast")
DESTINATIONS = ("broadcast", "secondary")
#: Names of the target's addresses an expect checks the source of a segment against (``ip: {src: ...}``).
TARGET_ADDRESSES = ("primary", "secondary")
#: IP option types RFC 4727 §2.5 reserves for experiments (copied flag, class, number 30): no stack knows them.
UNKNOWN_OPTION_TYPES = (30, 94, 158, 222)
IP_OPTION_NOP, IP_OPTION_EOL, IP_OPTION_TIMESTAMP = 1, 0, 68
#: Loose and strict source and record route (RFC 791 §3.1).
IP_OPTION_LSRR, IP_OPTION_SSRR = 131, 137
#: The name of our own address among a source route's hops; the range every other hop must be in.
PROBER = "prober"
ROUTE_RANGE = ipaddress.ip_network("198.18.0.0/15")
#: A route's hops: at least two (a route of the prober alone, the datagram's source, is no route back: RFC 1122
#: §3.2.1.8 case (B), a recorded source left out of the return route), at most what fits in 40 octets.
ROUTE_HOPS = (2, 9)
#: The room for options in an IPv4 header (RFC 791: IHL at most 15 words).
MAX_IP_OPTIONS = 40
#: Fields of the target's IP header an expect can check, and what ``bind:`` calls them.
CHECKED = {"ttl": "ttl", "tos": "tos", "id": "ip_id"}
BIND_FIELDS = tuple(CHECKED.values())
#: Each checked field's bound (TTL, TOS: one octet; ID: 16 bits).
FIELD_MAX = {"ttl": 0xFF, "tos": 0xFF, "id": 0xFFFF}


@dataclass(frozen=True)
class IcmpSpec:
    """An ICMP error to send about the target's segment `quote` (a label)."""

    type: int
    code: int
    quote: str


@dataclass(frozen=True)
class IpSend:
    """The IPv4 header of a segment we send: fields, options, and named addresses (None: ours, the target's);
    `route`: the hops of a completed loose source route put in front of the options when played (``prober``
    stands for our address, known then)."""

    header: IpHeader
    src: str | None = None
    dst: str | None = None
    route: tuple[str, ...] = ()


class Builder(Protocol):
    """What the parsers here need of :class:`~conformance.core.step_parsers.StepBuilder`."""

    labels: set[str]

    def error(self, path: Path_, problem: str, valid: Iterable[str] = ()) -> CaseFormatError: ...
    def expr(self, value: Any, path: Path_) -> Expr: ...


def _int(b: Builder, value: Any, path: Path_, top: int, low: int = 0) -> int:
    if type(value) is not int or not low <= value <= top:
        raise b.error(path, f"{value!r} is not a whole number from {low} to {top}")
    return value


def parse_icmp(b: Builder, body: dict[str, Any], path: Path_) -> IcmpSpec:
    """``send: {icmp: {...}}``: the error alone (no TCP field goes with it)."""
    others = sorted(set(body) - {"icmp"})
    if others:
        raise b.error(path + (others[0],), "an icmp send is an ICMP error, not a segment: it takes no TCP field")
    spec, ip = body["icmp"], path + ("icmp",)
    kind = _int(b, spec.get("type"), ip + ("type",), 255)
    if kind not in ICMP_SENDABLE:
        problem = f"ICMP type {kind} is not an error RFC 9293 §3.9.2.2 names"
        raise b.error(ip + ("type",), problem, map(str, ICMP_SENDABLE))
    code = _int(b, spec.get("code", 0), ip + ("code",), 255)
    if code not in ICMP_SENDABLE[kind]:
        raise b.error(ip + ("code",), f"code {code} of ICMP type {kind} is not sent", map(str, ICMP_SENDABLE[kind]))
    label = spec.get("quote")
    if label not in b.labels:
        raise b.error(ip + ("quote",), f"no earlier expect step has label {label!r}", sorted(b.labels))
    return IcmpSpec(kind, code, label)


def _options(b: Builder, spec: dict[str, Any], path: Path_) -> bytes:
    out = bytearray()
    for kind, value in spec.items():
        at = path + (kind,)
        if kind == "nop":
            out += bytes([IP_OPTION_NOP]) * _int(b, value, at, MAX_IP_OPTIONS, 1)
        elif kind == "eol":
            if value is not True:
                raise b.error(at, "write eol: true")
            out.append(IP_OPTION_EOL)
        elif kind == "timestamp":  # RFC 791: type 68, length, pointer 5 (the first slot), overflow 0, flag 0
            slots = _int(b, value, at, 9, 1)
            out += bytes([IP_OPTION_TIMESTAMP, 4 + 4 * slots, 5, 0]) + bytes(4 * slots)
        elif kind == "unknown":
            if value not in UNKNOWN_OPTION_TYPES:
                raise b.error(at, f"{value!r}: use a type reserved for experiments", map(str, UNKNOWN_OPTION_TYPES))
            out += bytes([value, 4, 0, 0])
        elif kind != "lsrr":  # parse_route
            raise b.error(at, f"unknown IP option {kind!r}", ["eol", "lsrr", "nop", "timestamp", "unknown"])
    out += bytes(-len(out) % 4)
    if len(out) > MAX_IP_OPTIONS:
        raise b.error(path, f"the IP options take {len(out)} octets; an IPv4 header has room for {MAX_IP_OPTIONS}")
    return bytes(out)


def parse_route(b: Builder, options: dict[str, Any], path: Path_) -> tuple[str, ...]:
    """``options: {lsrr: [hop, ..., prober]}``: the hops, each ``prober`` or an address in the test range, the
    last ``prober``; () when the options have no route."""
    if "lsrr" not in options:
        return ()
    hops, at = options["lsrr"], path + ("lsrr",)
    low, high = ROUTE_HOPS
    if not isinstance(hops, list) or not low <= len(hops) <= high:
        raise b.error(at, f"write a list of {low} to {high} hops, the last of them {PROBER}")
    for i, hop in enumerate(hops):
        if hop == PROBER:
            continue
        try:
            address = ipaddress.IPv4Address(hop) if isinstance(hop, str) else None
        except ValueError:
            address = None
        if address is None or address not in ROUTE_RANGE:
            raise b.error(at + (i,), f"{hop!r}: a hop is {PROBER} or an IPv4 address in the test range {ROUTE_RANGE}")
    if hops[-1] != PROBER:
        raise b.error(at + (len(hops) - 1,), f"the last hop must be {PROBER}: the target's reply goes there first")
    return tuple(hops)


def route_option(route: tuple[str, ...], prober: str, pointer: int | None = None) -> bytes:
    """The loose source route option of `route` (``prober``: our address `prober`), its pointer past the last hop
    (a completed route) unless given."""
    hops = b"".join(ipaddress.IPv4Address(prober if hop == PROBER else hop).packed for hop in route)
    return bytes([IP_OPTION_LSRR, 3 + len(hops), 4 + len(hops) if pointer is None else pointer]) + hops


def parse_ip_send(b: Builder, spec: dict[str, Any], path: Path_) -> IpSend:
    """``send: {..., ip: {...}}``."""
    src, dst = spec.get("src"), spec.get("dst")
    route = parse_route(b, spec.get("options") or {}, path + ("options",))
    if route and (src is not None or dst is not None):
        raise b.error(path + ("options", "lsrr"), "a source route goes from our address to the target's: no src/dst")
    if src is not None and src not in SOURCES:
        raise b.error(path + ("src",), f"{src!r}: a source is named, never written as an address", SOURCES)
    if dst is not None and dst not in DESTINATIONS:
        raise b.error(path + ("dst",), f"{dst!r}: a destination is named, never written as an address", DESTINATIONS)
    header = IpHeader(
        ttl=_int(b, spec["ttl"], path + ("ttl",), 255, 1) if "ttl" in spec else None,
        tos=_int(b, spec["tos"], path + ("tos",), 255) if "tos" in spec else None,
        id=_int(b, spec["id"], path + ("id",), 0xFFFF) if "id" in spec else None,
        options=_options(b, spec.get("options") or {}, path + ("options",)),
    )
    if route and len(header.options) + 4 * len(route) + 4 > MAX_IP_OPTIONS:
        raise b.error(path + ("options",), f"the route and the other IP options exceed {MAX_IP_OPTIONS} octets")
    return IpSend(header, src, dst, route)


def parse_ip_expect(b: Builder, spec: dict[str, Any], path: Path_) -> tuple[tuple[str, Expr], ...]:
    """``expect: {..., ip: {ttl: 64, id: NAME}}``: each field a number in its range or a bound name."""
    out = []
    for name, value in spec.items():
        if name in ("src", "options"):  # a named address (parse_ip_source), a route (parse_ip_route)
            continue
        if name not in CHECKED:
            raise b.error(path + (name,), f"no IP field {name!r} is checked", sorted(CHECKED))
        e = b.expr(value, path + (name,))
        if e.name is None and not 0 <= e.offset <= FIELD_MAX[name]:
            raise b.error(path + (name,), f"{e.offset} is beyond the field (0-{FIELD_MAX[name]})")
        out.append((name, e))
    return tuple(out)


def parse_ip_route(b: Builder, spec: dict[str, Any], path: Path_) -> tuple[str, ...] | None:
    """``expect: {..., ip: {options: {lsrr: [...]}}}``: the route the target's segment must carry (None: not
    checked)."""
    options = spec.get("options")
    if options is None:
        return None
    if not isinstance(options, dict) or set(options) != {"lsrr"}:
        raise b.error(path + ("options",), "an expect checks one IP option: lsrr", ["lsrr"])
    return parse_route(b, options, path + ("options",))


def received_route(options: bytes) -> tuple[int, int, tuple[str, ...]] | None:
    """The first source route option (loose or strict) in received IP option octets: (type, pointer, hops); None
    when there is none or it is malformed."""
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == IP_OPTION_EOL:
            return None
        if kind == IP_OPTION_NOP:
            i += 1
            continue
        size = options[i + 1] if i + 1 < len(options) else 0
        if size < 2 or i + size > len(options):
            return None
        if kind in (IP_OPTION_LSRR, IP_OPTION_SSRR):
            if size < 3 or (size - 3) % 4:
                return None
            body = options[i + 3 : i + size]
            hops = tuple(str(ipaddress.IPv4Address(body[j : j + 4])) for j in range(0, len(body), 4))
            return kind, options[i + 2], hops
        i += size
    return None


def route_diff(route: tuple[str, ...], seg: Segment) -> FieldDiffLike:
    """The source route the target's `seg` carries against `route` (its ``prober`` hops: our address): a loose
    route of those hops, pointer 4, and `seg` addressed to us, the reversed route's first hop (RFC 9293 MUST-53).
    The engine says whether it was (``extra["to_prober"]``: the segment's destination is our address)."""
    got = seg.extra.get("ip_options")
    raw = got if isinstance(got, bytes) else b""
    found = received_route(raw)
    prober = seg.dst if seg.extra.get("to_prober") is True else None
    want = "LSRR pointer 4 route " + ", ".join(route) + f", sent to {PROBER}"
    if found is None:
        return "ip options", want, "no source route" + (f" (options {raw.hex(' ')})" if raw else ""), False
    kind, pointer, hops = found
    shown = f"{'LSRR' if kind == IP_OPTION_LSRR else 'SSRR'} pointer {pointer} route {', '.join(hops)}"
    shown += f", sent to {seg.dst}" + (f" ({PROBER})" if prober else " (not the prober)")
    expected = tuple(prober if hop == PROBER else hop for hop in route)
    ok = prober is not None and kind == IP_OPTION_LSRR and pointer == 4 and hops == expected
    return "ip options", want, shown, ok


def parse_ip_source(b: Builder, spec: dict[str, Any], path: Path_) -> tuple[str, ...] | None:
    """``expect: {..., ip: {src: secondary}}`` (or a list of names): the target's addresses the segment may come
    from; None when the expect does not check it."""
    if "src" not in spec:
        return None
    value = spec["src"]
    names = value if isinstance(value, list) else [value]
    if not names or len(names) > len(TARGET_ADDRESSES):
        raise b.error(path + ("src",), "name one of the target's addresses, or a list of them", TARGET_ADDRESSES)
    for name in names:
        if name not in TARGET_ADDRESSES:
            problem = f"{name!r}: the target's address is named, never written as an address"
            raise b.error(path + ("src",), problem, TARGET_ADDRESSES)
    return tuple(dict.fromkeys(names))


def source_diff(allowed: tuple[str, ...], seg: Segment) -> FieldDiffLike:
    """Where the target's `seg` came from, against the names allowed: (field, expected, observed, ok). The engine
    names the source when the segment arrives (``extra["src_name"]``: primary, secondary, or absent)."""
    name = seg.extra.get("src_name")
    shown = f"{seg.src} ({name})" if isinstance(name, str) else f"{seg.src} (not an address of the target)"
    return "ip src", " or ".join(allowed), shown, name in allowed


def observed(extra: dict[str, object], name: str) -> int | None:
    """A checked IP field of a captured segment (IPv6: hop limit for ttl, traffic class for tos; no id)."""
    key = {"ttl": ("ttl", "hlim"), "tos": ("tos", "tclass"), "id": ("ip_id",)}[name]
    for k in key:
        value = extra.get(k)
        if type(value) is int:
            return value
    return None


#: Where a named address may ever lie: the benchmarking range of RFC 2544, the only one the tool sends to.
TEST_RANGE = ipaddress.ip_network("198.18.0.0/15")


def broadcast(address: str, prefix: int | None) -> str | None:
    """The directed broadcast of `address`'s IPv4 subnet of `prefix` bits (None: not known, or IPv6)."""
    if prefix is None or ":" in address or not 8 <= prefix <= 30:
        return None
    found = ipaddress.ip_network(f"{address}/{prefix}", strict=False).broadcast_address
    return str(found) if found in TEST_RANGE else None  # never an address outside the test range


def resolve(name: str, address: str, prefix: int | None, secondary: str | None = None) -> str | None:
    """The address a case's name stands for, next to the target's `address`: None when it has none here."""
    if name == "secondary":
        return secondary
    if name == "unspecified":
        return None if ":" in address else "0.0.0.0"
    return broadcast(address, prefix)


def with_ip(seg: Segment, ip: IpSend, target: str, prefix: int | None, secondary: str | None = None) -> Segment | None:
    """`seg` with the header fields and named addresses of `ip`; None when a name has no address here."""
    src, dst = seg.src, seg.dst
    if ip.src is not None:
        src = resolve(ip.src, target, prefix, secondary) or ""
    if ip.dst is not None:
        dst = resolve(ip.dst, target, prefix, secondary) or ""
    if not src or not dst or (":" in target and not only_secondary(ip)):
        return None
    header = ip.header
    if ip.route:  # in front of the other options, a NOP keeping them on four-octet words
        header = replace(header, options=route_option(ip.route, seg.src) + bytes([IP_OPTION_NOP]) + header.options)
    return replace(seg, src=src, dst=dst, ip=None if header == IpHeader() else header)


def only_secondary(ip: IpSend) -> bool:
    """Whether `ip` only sends to the target's secondary address (no header field): any family can carry it."""
    return ip.dst == "secondary" and ip.src is None and ip.header == IpHeader() and not ip.route


def unplayable(steps: Iterable[object], family: int, prefix: int | None, secondary: str | None = None) -> str | None:
    """Why the IP-level steps among `steps` cannot be played over `family` on a target of IPv4 `prefix` and
    second address `secondary` (None: they can): ICMP errors and IP header fields are IPv4 only; a broadcast
    needs the target's prefix, the secondary address a target that has one."""
    for step in steps:
        if secondary is None and _names_secondary(step):
            return f"needs the target's second IPv{family} address, which only the embedded target has"
        if ("to", "broadcast") in getattr(step, "args", ()):  # an app connect to the broadcast address
            if family != 4 or prefix is None:
                return "connects to the target subnet's broadcast address: IPv4, on a target the tool set up"
        checked = getattr(getattr(step, "pattern", None), "ip", None) or ()
        if family != 4 and any(name == "id" for name, _ in checked):
            return "checks the IPv4 identification, which IPv6 has no counterpart of in its header"
        if family != 4 and getattr(getattr(step, "pattern", None), "route", None) is not None:
            return "checks an IPv4 source route option (IPv6's type 0 routing header is deprecated, RFC 5095)"
        icmp, ip = getattr(step, "icmp", None), getattr(step, "ip", None)
        if isinstance(ip, IpSend) and only_secondary(ip):
            continue  # the secondary address alone: any family (checked above)
        if not isinstance(icmp, IcmpSpec) and not isinstance(ip, IpSend):
            continue
        if family != 4:
            return "sends ICMP errors or IPv4 header fields: IPv4 only (no ICMPv6 or IPv6 header counterpart yet)"
        if isinstance(ip, IpSend) and "broadcast" in (ip.src, ip.dst) and prefix is None:
            return (
                "sends to or from the target subnet's broadcast address, which the tool knows only on targets it set up"
            )
    return None


def _names_secondary(step: object) -> bool:
    """Whether `step` sends to the target's secondary address or names it among a segment's sources (a case about
    a target of two addresses)."""
    ip = getattr(step, "ip", None)
    if isinstance(ip, IpSend) and "secondary" in (ip.src, ip.dst):
        return True
    return "secondary" in (getattr(getattr(step, "pattern", None), "src", None) or ())
