"""A remote host as a black-box target: ``--target HOST:PORT [--iface IF] [--closed-port N]``.

HOST is an IPv4 address in 198.18.0.0/15, an IPv6 address in 2001:2::/48 in
brackets, or one of each: ``198.18.2.2:80``, ``[2001:2:0:2::2]:80``,
``198.18.2.2,[2001:2:0:2::2]:80``; the cases are played over the families
given (a case over a family HOST lacks is skipped with the reason). The
prober works from an interface of the namespace the tool runs in, with that
interface's own addresses (in the same ranges) as its sources::

    this namespace                                    the network
    ┌───────────────────────────────┐                 ┌──────────────────────┐
    │ IF 198.18.a.b, 2001:2:..      │ ── next hop ──▶ │ HOST:PORT  (listen)  │
    │ Scapy injects/captures on IF  │  (ARP / ND, 3 s)│ HOST:9     (closed)  │
    │ nft table conformance_PID     │                 └──────────────────────┘
    └───────────────────────────────┘

* For each family, the next hop is the route's gateway, or HOST itself when
  it is on the link; its MAC is asked on IF by ARP (IPv4) or Neighbor
  Discovery (IPv6, :mod:`conformance.wire.nd`) (3 s, then a HarnessError that says
  so). Both families must go out of the same interface (a run works on one);
  each family's frames go to its own next hop's MAC.
* This kernel owns the addresses, so it would reset the connections we craft:
  :class:`~conformance.wire.firewall.RstFilter` drops its RSTs to HOST's ports from
  the run's source-port window, over each family, for as long as the run lasts.
* Services: PORT is ``listen``; ``closed`` is ``--closed-port`` (default 9,
  the discard port), which must be closed on the target; there is no
  ``banner`` service, and the host's sysctls cannot be set or read: cases
  that need either are skipped with the reason, and the parameters are the
  documented defaults (the description says so).
* The agent: with ``--agent tcp:ADDR:PORT --agent-token F`` the run reaches an
  agent the user started on the host (``python -m conformance.inside.agent
  --listen ADDR:PORT --token-file F``, docs/agent-protocol.md): the cases with
  app steps play, and states are read white box. The agent's cases listen on
  ports of the run's window, and its ``connect`` cases connect to ports of the
  window from ports the host picks: with an agent, this kernel's RSTs from the
  window to any of HOST's ports are dropped (tests/test_targets_remote.py shows
  the client cases failing without it).
"""

from __future__ import annotations

import ipaddress
import socket
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

from ..core.errors import HarnessError
from ..wire import arp, nd
from ..wire.firewall import FAMILY, RstFilter
from . import records
from .agent_client import AgentAddress, AgentClient, parse_agent_address
from .base import (
    BENCHMARK_NET,
    BENCHMARK_NET6,
    DEFAULT_CLOSED_PORT,
    Endpoint,
    TargetOptions,
    TargetSpec,
    black_box_endpoint,
    closed_port,
    joined,
    parse_hosts_port,
    parse_port,
)

ARPHRD_ETHER = 1
RTN_LOCAL = 2
#: An IPv6 address that cannot be used yet (duplicate address detection running) or ever (it failed).
IFA_F_TENTATIVE, IFA_F_DADFAILED = 0x40, 0x08


@dataclass(frozen=True)
class RemoteSpec(TargetSpec):
    host: str | None = None  # IPv4
    host6: str | None = None  # IPv6
    port: int = 0
    iface: str | None = None
    closed_port: int = DEFAULT_CLOSED_PORT
    kind: ClassVar[str] = "remote"
    no_sysctls: ClassVar[str | None] = "a remote host's sysctls cannot be set (nor read) by the tool"

    def own_services(self) -> dict[str, int]:
        return {"listen": self.port, "closed": self.closed_port}

    agent: AgentAddress | None = None

    def families(self) -> frozenset[int]:
        return frozenset(f for f, host in ((4, self.host), (6, self.host6)) if host is not None)


@dataclass(frozen=True)
class RemoteAgentSpec(RemoteSpec):
    """A remote host with an agent the user started there (``--agent``)."""

    has_agent: ClassVar[bool] = True


def parse_remote(text: str, options: TargetOptions) -> RemoteSpec:
    """``HOST:PORT``: HOST an IPv4 address in 198.18.0.0/15, an IPv6 one in 2001:2::/48 in brackets, or both."""
    example = "--target 198.18.2.2:80, [2001:2:0:2::2]:80 or 198.18.2.2,[2001:2:0:2::2]:80"
    host, host6, port = parse_hosts_port(text, f"--target {text!r}", "--target host", "HOST:PORT", example)
    if not port:
        raise HarnessError(f"--target {text!r}: expected HOST:PORT", f"e.g. {example}")
    listen = parse_port(port, f"--target {text!r}: port")
    closed = closed_port(options, listen, "on the target")
    if options.iface is not None and not options.iface:
        raise HarnessError("--iface needs an interface name")
    if options.agent is None and options.agent_token is None:
        return RemoteSpec(text, host=host, host6=host6, port=listen, iface=options.iface, closed_port=closed)
    agent = parse_agent_address(options.agent or "", options.agent_token) if options.agent else None
    if agent is None:
        raise HarnessError("--agent-token without --agent", "e.g. --agent tcp:198.18.2.2:7700 --agent-token F")
    return RemoteAgentSpec(
        text, host=host, host6=host6, port=listen, iface=options.iface, closed_port=closed, agent=agent
    )


@dataclass(frozen=True)
class Route:
    """How this namespace reaches the target over one address family."""

    iface: str
    our_mac: str
    our_ip: str
    next_hop: str  # the gateway, or the target itself when it is on the link
    gateway: bool


def find_route(host: str, iface: str | None) -> Route:
    """The interface, our address and the next hop towards `host` (IPv4 or IPv6), from this namespace's
    routing table."""
    from pyroute2 import IPRoute

    v6 = ipaddress.ip_address(host).version == 6
    family = socket.AF_INET6 if v6 else socket.AF_INET
    with IPRoute() as ipr:
        route = _route_to(ipr, host, family, iface)
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
        ours: list[str] = []
        unusable: list[str] = []
        for a in ipr.get_addr(family=family, index=oif):
            address = ipaddress.ip_address(str(a.get_attr("IFA_ADDRESS"))).compressed
            flags = int(a.get_attr("IFA_FLAGS") or a["flags"])
            (unusable if flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) else ours).append(address)
        gateway = route.get_attr("RTA_GATEWAY")
        prefsrc = route.get_attr("RTA_PREFSRC")
    our_ip = _source_address(name, v6, ours, unusable, prefsrc)
    next_hop = ipaddress.ip_address(str(gateway or host)).compressed
    return Route(name, str(link.get_attr("IFLA_ADDRESS")), our_ip, next_hop, gateway is not None)


def _example(v6: bool) -> tuple[str, str]:
    """The benchmarking range of a family, and an example address with its prefix length."""
    return ("2001:2::/48", "2001:2:x::y/64") if v6 else ("198.18.0.0/15", "198.18.x.y/24")


def _route_to(ipr: Any, host: str, family: int, iface: str | None) -> Any:
    """The kernel's route towards `host` (through `iface` when given), which must not be a local address."""
    from pyroute2.netlink.exceptions import NetlinkError

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
        route = ipr.route("get", dst=host, family=family, **kw)[0]
    except NetlinkError as exc:
        raise HarnessError(
            f"no route to {host}" + (f" through {iface}" if iface else "") + f": {exc.args[-1]}",
            f"add an address on the link (ip addr add {_example(family == socket.AF_INET6)[1]} dev IF) or a route "
            "to the target",
        ) from None
    if route["type"] == RTN_LOCAL:
        raise HarnessError(f"{host} is an address of this host, not a remote one", "give the remote host's address")
    return route


def _source_address(name: str, v6: bool, ours: list[str], unusable: list[str], prefsrc: str | None) -> str:
    """Our source address on interface `name`: the route's preferred one if it is in the benchmarking range,
    else the first of the interface's usable addresses in it."""
    net, example = _example(v6)
    bench = BENCHMARK_NET6 if v6 else BENCHMARK_NET
    in_range = [a for a in ours if ipaddress.ip_address(a) in bench]
    if not in_range:
        waiting = [a for a in unusable if ipaddress.ip_address(a) in bench]
        if waiting:
            raise HarnessError(
                f"the address {waiting[0]} of interface {name} is tentative (duplicate address detection has not "
                "finished, or failed)",
                f"wait a few seconds and run again, or add it without the wait: ip addr add ... dev {name} nodad",
            )
        raise HarnessError(
            f"interface {name} has no address in {net} (it has: {', '.join(ours) or 'none'})",
            f"the prober's source address must be in {net}: ip addr add {example} dev {name}",
        )
    src = ipaddress.ip_address(prefsrc).compressed if prefsrc else None
    return src if src in in_range else in_range[0]


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

    def _filter(self, rst_filter: RstFilter) -> None:
        """Install the table, written in the run's record first and struck off it once removed."""
        record, entry = records.this_run(), (FAMILY + " " + rst_filter.table)
        record.add("nft", entry)
        self._stack.callback(lambda: None if rst_filter.installed else record.forget("nft", entry))
        self._stack.enter_context(rst_filter)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stack.close()

    def _setup(self) -> Endpoint:
        spec = self.spec
        if self.index != 0:
            raise HarnessError("internal: a run opens a remote target once (cases with sysctls are skipped)")
        routes: dict[int, Route] = {}
        macs: dict[int, str] = {}
        for family, host in ((4, spec.host), (6, spec.host6)):
            if host is None:
                continue
            route = routes[family] = find_route(host, spec.iface)
            via = f"the next hop towards {host}" if route.gateway else ""
            ask = arp.resolve_on_iface if family == 4 else nd.resolve_on_iface
            macs[family] = ask(route.iface, None, route.our_mac, route.our_ip, route.next_hop, via=via)
        first = routes[min(routes)]
        if len(routes) == 2:
            r4, r6 = routes[4], routes[6]
            if r4.iface != r6.iface:
                raise HarnessError(
                    f"{spec.host} is reached through {r4.iface} and {spec.host6} through {r6.iface}: a run works "
                    "on one interface",
                    "give --iface, or test one address family at a time (--target HOST:PORT with one address)",
                )
        ports = spec.services()
        pairs = [(routes[f].our_ip, host) for f, host in ((4, spec.host), (6, spec.host6)) if host is not None]
        # With an agent, the target also listens on ports of the run's window and its application connects to
        # ours from ports its kernel picks: this kernel's RSTs from our window go to any of the target's ports.
        filtered = None if spec.agent is not None else ports.values()
        self._filter(RstFilter(pairs, filtered, self.sports))
        agent = None
        if spec.agent is not None:
            agent = AgentClient.over_tcp(spec.agent)
            self._stack.callback(agent.close)
        target_mac = macs[min(macs)]  # IPv4's when there is IPv4; IPv6 frames go to their own next hop
        target_mac6 = macs[6] if 6 in macs and macs[6] != target_mac else None
        hops = []
        for family in sorted(routes):
            route = routes[family]
            hops.append(
                f"next hop {route.next_hop} at {macs[family]}" if route.gateway else f"on the link at {macs[family]}"
            )
        hop = ", ".join(dict.fromkeys(hops))
        ours = joined(*(routes[f].our_ip for f in sorted(routes)))
        self.endpoint = black_box_endpoint(
            "remote",
            first.iface,
            first.our_mac,
            macs=(target_mac, target_mac6),
            ours=(routes[4].our_ip if 4 in routes else None, routes[6].our_ip if 6 in routes else None),
            theirs=(spec.host, spec.host6),
            ports=ports,
            description=(
                f"remote host {joined(spec.host, spec.host6)} (listen {spec.port}, closed {spec.closed_port}) via "
                f"{first.iface} from {ours}, {hop}; parameters: documented defaults (a remote host's sysctls "
                "cannot be read)" + (f"; agent at {spec.agent} (kernel {agent.kernel})" if agent is not None else "")
            ),
        )
        self.endpoint.agent = agent
        return self.endpoint
