"""A stack on the other side of a TAP device: ``--target tap:IFNAME:ADDR[:PORT] [--prober-ip IP]``.

ADDR is the stack's IPv4 address (198.18.0.0/15), its IPv6 address (2001:2::/48)
in brackets, or both: ``198.18.3.2``, ``[2001:2:0:3::2]``,
``198.18.3.2,[2001:2:0:3::2]``; the cases are played over the families given.

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
    │ answers ARP and ND for it    │           │ PORT listening           │
    └──────────────────────────────┘           └──────────────────────────┘

The tool does not create the device (``ip tuntap add dev IFNAME mode tap``
does); it attaches to it in the network namespace it runs in and detaches on
exit (the device stays). The prober's IPv4 address is 198.18.x.1 in ADDR's
/24 (x.254 when ADDR is x.1), its IPv6 address ``::1`` in ADDR's /64 (``::fe``
when ADDR is ``::1``), unless ``--prober-ip`` names others (one of each family,
comma-separated or the option repeated); its MAC is a locally administered one
made from its IPv4 address (``02:cf:`` + the address), or from the low 32 bits
of its IPv6 one when it has no IPv4 address. The capture thread answers ARP
requests and Neighbor Solicitations (:mod:`conformance.wire.nd`) for it, and
ADDR's MAC is asked by ARP and by Neighbor Solicitation; each family's frames
go to the MAC that answered for it.

Receive times are ``time.time()`` when the frame is read from the descriptor,
and our own frames are stamped just before they are written: a descriptor has
no kernel timestamp, so timing on this path includes the scheduling of the
capture thread (tens of microseconds on an idle machine).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

from ..core.errors import HarnessError
from ..wire import arp, nd
from ..wire.neighbours import NeighbourResponder
from ..wire.tap import IFNAMSIZ, TapWire
from .base import (
    DEFAULT_CLOSED_PORT,
    Endpoint,
    TargetOptions,
    TargetSpec,
    benchmark_address,
    benchmark_address6,
    black_box_endpoint,
    closed_port,
    joined,
    parse_hosts_port,
    parse_port,
)


@dataclass(frozen=True)
class TapSpec(TargetSpec):
    ifname: str = ""
    addr: str | None = None  # IPv4
    addr6: str | None = None  # IPv6
    port: int | None = None
    prober_ip: str | None = None  # IPv4, when addr is set
    prober_ip6: str | None = None  # IPv6, when addr6 is set
    closed_port: int = DEFAULT_CLOSED_PORT
    kind: ClassVar[str] = "tap"
    no_sysctls: ClassVar[str | None] = "the tool cannot set a stack's parameters through a TAP device"

    def own_services(self) -> dict[str, int]:
        out = {"closed": self.closed_port}
        if self.port is not None:
            out["listen"] = self.port
        return out

    def families(self) -> frozenset[int]:
        return frozenset(f for f, addr in ((4, self.addr), (6, self.addr6)) if addr is not None)

    def lacks(self, service: str) -> str:
        if service == "listen":
            return f"no listening port given (--target {self.kind}:IFNAME:ADDR:PORT, or --service listen=PORT)"
        return super().lacks(service)


def default_prober_ip(addr: str) -> str:
    """198.18.x.1 in ADDR's /24, or x.254 when ADDR is x.1."""
    net = ipaddress.IPv4Network(f"{addr}/24", strict=False)
    first = net.network_address + 1
    return str(first if str(first) != addr else net.network_address + 254)


def default_prober_ip6(addr6: str) -> str:
    """::1 in ADDR6's /64, or ::fe when ADDR6 is ::1."""
    net = ipaddress.IPv6Network(f"{addr6}/64", strict=False)
    first = net.network_address + 1
    return (first if first != ipaddress.IPv6Address(addr6) else net.network_address + 0xFE).compressed


def parse_prober_ips(text: str | None) -> tuple[str | None, str | None]:
    """``--prober-ip``: up to one address of each family, comma-separated (the CLI joins a repeated option so);
    an IPv6 one with or without brackets."""
    ip4: str | None = None
    ip6: str | None = None
    for item in (text or "").split(","):
        item = item.strip()
        bare = item[1:-1] if item.startswith("[") and item.endswith("]") else item
        if not bare:
            continue
        if ":" in bare:
            if ip6 is not None:
                raise HarnessError("--prober-ip: two IPv6 addresses", "give at most one of each family")
            ip6 = benchmark_address6(bare, "--prober-ip")
        else:
            if ip4 is not None:
                raise HarnessError("--prober-ip: two IPv4 addresses", "give at most one of each family")
            ip4 = benchmark_address(bare, "--prober-ip")
    return ip4, ip6


def parse_tap(text: str, options: TargetOptions, spec_class: type[TapSpec] = TapSpec) -> TapSpec:
    """``tap:IFNAME:ADDR[:PORT]``; ADDR: IPv4, [IPv6] or both, comma-separated. `spec_class` is the kind parsed
    (``link:`` has the same form, :mod:`conformance.targets.link`)."""
    k = spec_class.kind
    example = f"--target {k}:tap0:198.18.3.2:80, {k}:tap0:[2001:2:0:3::2]:80 or {k}:tap0:198.18.3.2,[2001:2:0:3::2]:80"
    ifname, _, rest = text[len(k) + 1 :].partition(":")
    if not ifname or not rest:
        raise HarnessError(f"--target {text!r}: expected {k}:IFNAME:ADDR[:PORT]", f"e.g. {example}")
    if len(ifname) >= IFNAMSIZ or "/" in ifname or any(c.isspace() for c in ifname):
        raise HarnessError(f"--target {text!r}: {ifname!r} is not an interface name (at most 15 characters)")
    addr, addr6, port_text = parse_hosts_port(
        rest, f"--target {text!r}", f"--target {k} address", f"{k}:IFNAME:ADDR[:PORT]", example
    )
    port = parse_port(port_text, f"--target {text!r}: port") if port_text is not None else None
    prober, prober6 = parse_prober_ips(options.prober_ip)
    for given, family, target in ((prober, "IPv4", addr), (prober6, "IPv6", addr6)):
        if given is not None and target is None:
            raise HarnessError(
                f"--prober-ip {given} is an {family} address, and the target has none",
                f"give the target's {family} address too ({k}:IFNAME:ADDR4,[ADDR6][:PORT]), or leave it out",
            )
        if given is not None and given == target:
            raise HarnessError(f"--prober-ip {given} is the target's address", "give another address in its subnet")
    if addr is not None and prober is None:
        prober = default_prober_ip(addr)
    if addr6 is not None and prober6 is None:
        prober6 = default_prober_ip6(addr6)
    closed = closed_port(options, port)
    return spec_class(
        text,
        ifname=ifname,
        addr=addr,
        addr6=addr6,
        port=port,
        prober_ip=prober,
        prober_ip6=prober6,
        closed_port=closed,
    )


def prober_mac(spec: TapSpec) -> str:
    """The prober's MAC: made from its IPv4 address, or from its IPv6 one when it has none."""
    if spec.prober_ip is not None:
        return arp.local_mac(spec.prober_ip)
    assert spec.prober_ip6 is not None
    return nd.local_mac(spec.prober_ip6)


def stack_endpoint(spec: TapSpec, wire: NeighbourResponder, where: str, times: str) -> Endpoint:
    """Ask the stack's MACs on the opened `wire` (ARP, ND: each family's frames go to the MAC that answered for
    it) and describe the stack, `where` it is and what its `times` are."""
    macs = {ip: wire.resolve(ip) for ip in (spec.addr, spec.addr6) if ip is not None}
    wire.target_mac = target_mac = next(iter(macs.values()))  # IPv4's when there is IPv4
    if spec.addr6 is not None and macs[spec.addr6] != target_mac:
        wire.target_mac6 = macs[spec.addr6]
    listen = f"listen {spec.port}, " if spec.port is not None else ""
    return black_box_endpoint(
        spec.kind,
        spec.ifname,
        wire.our_mac,
        macs=(target_mac, wire.target_mac6),
        ours=(spec.prober_ip, spec.prober_ip6),
        theirs=(spec.addr, spec.addr6),
        ports=spec.services(),
        description=(
            f"stack {where} at {joined(spec.addr, spec.addr6)} ({target_mac}; {listen}closed {spec.closed_port}), "
            f"prober {joined(spec.prober_ip, spec.prober_ip6)} ({wire.our_mac}); parameters: documented defaults "
            f"(the stack's settings cannot be read); times: {times}"
        ),
    )


class StackTarget:
    """What a target on the other side of one interface shares (``tap:`` and ``link:``): it is opened once per
    run (cases that set sysctls are skipped on it), and holds its Endpoint once open."""

    kind_name: ClassVar[str] = "stack"

    def __init__(self, spec: TapSpec, index: int, sysctls: dict[str, int] | None = None) -> None:
        self.spec = spec
        self.index = index
        self.sysctls = dict(sysctls or {})
        self.endpoint: Endpoint | None = None

    def _opened_once(self) -> None:
        if self.sysctls or self.index != 0:
            raise HarnessError(f"internal: a run opens a {self.kind_name} target once (cases with sysctls are skipped)")


class TapTarget(StackTarget):
    """Context manager: attaches to the TAP device, resolves ADDR; yields the Endpoint and its wire."""

    kind_name: ClassVar[str] = "TAP"

    def __init__(self, spec: TapSpec, index: int, sysctls: dict[str, int] | None = None) -> None:
        super().__init__(spec, index, sysctls)
        self.wire: TapWire | None = None

    def __enter__(self) -> tuple[Endpoint, TapWire]:
        spec = self.spec
        self._opened_once()
        our_mac = prober_mac(spec)
        self.wire = wire = TapWire(spec.ifname, our_mac, spec.prober_ip, spec.addr, spec.prober_ip6, spec.addr6)
        try:
            wire.open()
            endpoint = self.endpoint = stack_endpoint(
                spec,
                wire,
                f"behind TAP device {spec.ifname}",
                "user-space receive times (no kernel timestamps on a TAP descriptor)",
            )
        except BaseException:
            self.close()
            raise
        return endpoint, wire

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.wire is not None:
            wire, self.wire = self.wire, None
            wire.close()
