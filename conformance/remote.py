"""A remote host as a black-box target: ``--target HOST:PORT [--iface IF] [--closed-port N]``.

The prober works from an interface of the namespace the tool runs in, with that
interface's own address (in 198.18.0.0/15) as its source::

    this namespace                                    the network
    ┌───────────────────────────────┐                 ┌──────────────────────┐
    │ IF 198.18.a.b  (--iface)      │ ── next hop ──▶ │ HOST:PORT  (listen)  │
    │ Scapy injects/captures on IF  │   (ARP, 3 s)    │ HOST:9     (closed)  │
    │ nft table conformance_PID     │                 └──────────────────────┘
    └───────────────────────────────┘

* The next hop is the route's gateway, or HOST itself when it is on the link;
  its MAC is asked by ARP on IF (3 s, then a HarnessError that says so).
* This kernel owns the address, so it would reset the connections we craft:
  :class:`~conformance.firewall.RstFilter` drops its RSTs to HOST's ports from
  the run's source-port window for as long as the run lasts.
* Services: PORT is ``listen``; ``closed`` is ``--closed-port`` (default 9,
  the discard port), which must be closed on the target; there is no
  ``banner`` service, and the host's sysctls cannot be set or read: cases
  that need either are skipped with the reason, and the parameters are the
  documented defaults (the description says so).
"""

from __future__ import annotations

import ipaddress
import socket
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

from . import arp
from .errors import HarnessError
from .firewall import RstFilter
from .netns import Endpoint
from .params import resolve
from .targets import (
    BENCHMARK_NET,
    DEFAULT_CLOSED_PORT,
    TargetOptions,
    TargetSpec,
    benchmark_address,
    parse_port,
)

ARPHRD_ETHER = 1
RTN_LOCAL = 2


@dataclass(frozen=True)
class RemoteSpec(TargetSpec):
    host: str = ""
    port: int = 0
    iface: str | None = None
    closed_port: int = DEFAULT_CLOSED_PORT
    kind: ClassVar[str] = "remote"
    no_sysctls: ClassVar[str | None] = "a remote host's sysctls cannot be set (nor read) by the tool"

    def services(self) -> dict[str, int]:
        return {"listen": self.port, "closed": self.closed_port}

    def unavailable(self) -> dict[str, str]:
        return {"banner": "a remote host has no banner service (only HOST:PORT, the listen service, is known)"}


def parse_remote(text: str, options: TargetOptions) -> RemoteSpec:
    """``HOST:PORT``: HOST an IPv4 address in 198.18.0.0/15."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port:
        raise HarnessError(f"--target {text!r}: expected HOST:PORT", "e.g. --target 198.18.2.2:80")
    address = benchmark_address(host, "--target host")
    listen = parse_port(port, f"--target {text!r}: port")
    closed = DEFAULT_CLOSED_PORT if options.closed_port is None else options.closed_port
    if not 1 <= closed <= 65535:
        raise HarnessError(f"--closed-port {closed} is not a TCP port (1-65535)")
    if closed == listen:
        raise HarnessError(
            f"--closed-port {closed} is the listening port of the target",
            "give a port that is closed on the target (default 9, discard)",
        )
    if options.iface is not None and not options.iface:
        raise HarnessError("--iface needs an interface name")
    return RemoteSpec(text, host=address, port=listen, iface=options.iface, closed_port=closed)


@dataclass(frozen=True)
class Route:
    """How this namespace reaches the target."""

    iface: str
    our_mac: str
    our_ip: str
    next_hop: str  # the gateway, or the target itself when it is on the link
    gateway: bool


def find_route(host: str, iface: str | None) -> Route:
    """The interface, our address and the next hop towards `host`, from this namespace's routing table."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        kw: dict[str, int] = {}
        if iface is not None:
            found = ipr.link_lookup(ifname=iface)
            if not found:
                raise HarnessError(
                    f"no interface {iface!r} in this network namespace",
                    "list them with `ip -br addr`; run the tool in the namespace that holds the interface "
                    "(ip netns exec NAME ...)",
                )
            kw["oif"] = int(found[0])
        try:
            route = ipr.route("get", dst=host, **kw)[0]
        except NetlinkError as exc:
            raise HarnessError(
                f"no route to {host}" + (f" through {iface}" if iface else "") + f": {exc.args[-1]}",
                "add an address on the link (ip addr add 198.18.x.y/24 dev IF) or a route to the target",
            ) from None
        if route["type"] == RTN_LOCAL:
            raise HarnessError(f"{host} is an address of this host, not a remote one", "give the remote host's address")
        oif = int(route.get_attr("RTA_OIF"))
        link = ipr.get_links(oif)[0]
        name = str(link.get_attr("IFLA_IFNAME"))
        if link["ifi_type"] != ARPHRD_ETHER:
            raise HarnessError(
                f"{name}, the interface towards {host}, is not an Ethernet interface (link type {link['ifi_type']})",
                "the tool works at layer 2 on Ethernet links: give one with --iface",
            )
        if link.get_attr("IFLA_OPERSTATE") not in ("UP", "UNKNOWN"):
            raise HarnessError(f"interface {name} is {link.get_attr('IFLA_OPERSTATE')}", f"ip link set {name} up")
        ours = [str(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr(family=socket.AF_INET, index=oif)]
        gateway = route.get_attr("RTA_GATEWAY")
        prefsrc = route.get_attr("RTA_PREFSRC")
    in_range = [a for a in ours if ipaddress.IPv4Address(a) in BENCHMARK_NET]
    if not in_range:
        raise HarnessError(
            f"interface {name} has no address in 198.18.0.0/15 (it has: {', '.join(ours) or 'none'})",
            f"the prober's source address must be in 198.18.0.0/15: ip addr add 198.18.x.y/24 dev {name}",
        )
    our_ip = prefsrc if prefsrc in in_range else in_range[0]
    return Route(name, str(link.get_attr("IFLA_ADDRESS")), our_ip, str(gateway or host), gateway is not None)


class RemoteTarget:
    """Context manager: resolves the path to the host and holds the RST filter; yields the Endpoint."""

    def __init__(self, spec: RemoteSpec, index: int, sports: range) -> None:
        self.spec = spec
        self.index = index
        self.sports = sports
        self._stack = ExitStack()
        self.endpoint: Endpoint | None = None

    def __enter__(self) -> Endpoint:
        try:
            return self._setup()
        except BaseException:
            self._stack.close()
            raise

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stack.close()

    def _setup(self) -> Endpoint:
        spec = self.spec
        if self.index != 0:
            raise HarnessError("internal: a run opens a remote target once (cases with sysctls are skipped)")
        route = find_route(spec.host, spec.iface)
        via = f"the next hop towards {spec.host}" if route.gateway else ""
        target_mac = arp.resolve_on_iface(route.iface, None, route.our_mac, route.our_ip, route.next_hop, via=via)
        ports = spec.services()
        self._stack.enter_context(RstFilter(route.our_ip, spec.host, ports.values(), self.sports))
        hop = f"next hop {route.next_hop} at {target_mac}" if route.gateway else f"on the link at {target_mac}"
        self.endpoint = Endpoint(
            iface=route.iface,
            netns=None,
            our_mac=route.our_mac,
            target_mac=target_mac,
            our_ip=route.our_ip,
            target_ip=spec.host,
            ports=ports,
            params=resolve({}),
            description=(
                f"remote host {spec.host} (listen {spec.port}, closed {spec.closed_port}) via {route.iface} "
                f"from {route.our_ip}, {hop}; parameters: documented defaults (a remote host's sysctls "
                "cannot be read)"
            ),
            kind="remote",
        )
        return self.endpoint
