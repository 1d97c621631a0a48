"""A docker container as the target: ``--target docker:CONTAINER[:PORT] [--closed-port N] [--prober-ip IP]``.

The tool runs on the docker host, in the network namespace that holds the
container's bridge (where ``dockerd`` runs), and reaches the container's
namespace from outside: nothing is installed in the image, so any image works,
distroless included::

    this namespace (the docker host)                 the container's namespace (docker inspect .State.Pid)
    ┌──────────────────────────────────────┐         ┌─────────────────────────────────────────────┐
    │ bridge docker0 (or br-...)           │         │ eth0 198.19.0.2/16 (tx checksum offload off)│
    │   └ vethXXX ◀── Scapy injects and ───┼──veth───┤ PORT: the container's own server (listen)   │
    │     captures here, on the host side  │         │ 7001: the tool's banner listener            │
    │ nft table bridge conformance_PID:    │         │ the agent (host Python, nsenter --net)      │
    │   frames to the prober's MAC dropped │         │ permanent neighbour: prober -> 02:cf:...    │
    └──────────────────────────────────────┘         └─────────────────────────────────────────────┘

* The container's namespace is attached as ``cfd-PID-N`` (``ip netns attach``,
  removed at the end: the namespace itself is the container's and stays).
* Its interface is the one holding the container's address in 198.18.0.0/15;
  it must be one end of a veth whose peer (its ``IFLA_LINK``, checked both
  ways) is in this namespace: a container on a bridge network.
* The prober is an address of the container's subnet that nobody owns (the
  highest one not used by the gateway, a container of the network, this
  host or a neighbour entry of the container), or ``--prober-ip``; its MAC is
  a locally administered one made from it (``02:cf:`` + the address). The
  container gets a permanent neighbour entry for it, so it never asks by ARP.
* No kernel answers for the prober: no namespace owns its address, and the
  container's frames to it arrive on the bridge port, where an nftables table
  of the ``bridge`` family drops them (so the bridge neither floods them to
  the other containers nor passes them up to this host; the capture on the
  veth sees them first).
* Transmit checksum offload is turned off on the container's interface for
  the run (``ethtool -K IF tx off`` through ``nsenter --net``) and restored
  after, so that the checksums we capture are the ones the container's
  kernel computed.
* The agent (:mod:`conformance.inside.agent`) runs in the container's namespace with
  this host's Python (``nsenter --net=/var/run/netns/cfd-PID-N``), and reads
  its sysctls there; cases that set sysctls are skipped (the container is one
  target shared by the whole run; the tool does not change its settings).
* Services: ``listen`` is PORT, the container's own server (default: the one
  port it listens on; several are an error that lists them); ``banner`` is a
  listener of the tool's (:mod:`conformance.inside.services`) in the container's
  namespace, on 7001 or the next free port; ``closed`` is ``--closed-port``
  (default 9), checked closed.

Everything is undone in reverse order at the end, on failure, on Ctrl-C and
SIGTERM; first the container's connections to the prober that cases left
behind are destroyed (``ss -K``), so that nothing retransmits to the prober
after the run. After a SIGKILL, ``conformance cleanup`` removes the attached name and
the nft table; the container keeps the neighbour entry and the offload
setting until it restarts.

Three modules: :mod:`~conformance.targets.docker_discovery` reads what docker and the
kernel say about the container, :mod:`~conformance.targets.docker_plumbing` makes (and
undoes) the changes above, and this one parses the spec and puts the two together.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import sys
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

from ..core.errors import HarnessError
from ..core.params import SYSCTLS, resolve
from ..wire import arp, firewall
from .agent_client import AgentClient, spawn, stop
from .base import (
    BENCHMARK_NET6,
    DEFAULT_CLOSED_PORT,
    Endpoint,
    TargetOptions,
    TargetSpec,
    benchmark_address,
    closed_port,
    parse_port,
)
from .docker_discovery import (
    Container,
    Link,
    Network,
    all_tcp_sockets,
    container_facts,
    docker_inspect,
    host_links,
    host_peer,
    in_netns,
    listening_ports,
    namespace_links,
    network_addresses,
    pick_network,
)
from .docker_plumbing import NETNS_DIR, Plumber, Undo, choose_prober_ip, choose_prober_ip6
from .netns import PREFIX_DOCKER, check_privileges

__all__ = ["DockerSpec", "DockerTarget", "Plumbing", "choose_services", "parse_docker"]

#: Ports tried, in order, for the tool's banner listener in the container.
BANNER_PORTS = range(7001, 7100)
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


# ------------------------------------------------------------------------------------------ spec
@dataclass(frozen=True)
class DockerSpec(TargetSpec):
    container: str = ""
    port: int | None = None  # None: the one port the container listens on
    closed_port: int = DEFAULT_CLOSED_PORT
    prober_ip: str | None = None  # None: a free address of the container's subnet
    kind: ClassVar[str] = "docker"
    no_sysctls: ClassVar[str | None] = (
        "a docker container is one target shared by the whole run: the tool reads its sysctls but does not "
        "change them (start the container with docker run --sysctl net.ipv4.NAME=VALUE and run the case on it "
        "with --target netns:... or the embedded target instead)"
    )
    has_agent: ClassVar[bool] = True

    def unavailable(self) -> dict[str, str]:
        """listen (the container's server), banner (the tool's) and closed are found when it is opened."""
        given = dict(self.given_services)
        return {kind: self.lacks(kind) for kind in ("echo", "http") if kind not in given}


def parse_docker(text: str, options: TargetOptions) -> DockerSpec:
    """``docker:CONTAINER[:PORT]``: a container name or ID, as ``docker ps`` shows it."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise HarnessError(
            f"--target {text!r}: expected docker:CONTAINER[:PORT]",
            "e.g. --target docker:web:80 (a container name or ID, as docker ps shows it)",
        )
    name = parts[1]
    if not _CONTAINER.match(name):
        raise HarnessError(f"--target {text!r}: {name!r} is not a container name or ID")
    port = parse_port(parts[2], f"--target {text!r}: port") if len(parts) == 3 else None
    closed = closed_port(options, port, "in the container")
    if options.prober_ip and "," in options.prober_ip:
        raise HarnessError(
            f"--prober-ip {options.prober_ip}: a docker target takes one, IPv4",
            "give one IPv4 address of the container's subnet; the prober's IPv6 address is chosen by the tool",
        )
    prober = benchmark_address(options.prober_ip, "--prober-ip") if options.prober_ip else None
    return DockerSpec(text, container=name, port=port, closed_port=closed, prober_ip=prober)


# ---------------------------------------------------------------------------------- services
def choose_services(spec: DockerSpec, listening: set[int], where: str) -> dict[str, int]:
    """listen (the container's server), banner (a free port for the tool's listener), closed (checked closed)."""
    shown = ", ".join(map(str, sorted(listening))) or "none"
    if spec.port is None:
        if not listening:
            raise HarnessError(
                f"nothing listens in {where}", "start its server, or name the port: --target docker:NAME:PORT"
            )
        if len(listening) > 1:
            raise HarnessError(
                f"{where} listens on several ports ({shown})", f"name the one to test: --target {spec.text}:PORT"
            )
        listen = next(iter(listening))
    elif spec.port not in listening:
        raise HarnessError(
            f"nothing listens on port {spec.port} in {where} (listening: {shown})",
            "start the container's server first, or name a port it listens on",
        )
    else:
        listen = spec.port
    if spec.closed_port in listening:
        raise HarnessError(
            f"--closed-port {spec.closed_port}: {where} listens on it, and the closed service must be closed",
            "give a port that is closed in the container with --closed-port N",
        )
    banner = next((p for p in BANNER_PORTS if p not in listening and p not in (listen, spec.closed_port)), None)
    if banner is None:
        raise HarnessError(f"no free port for the banner listener in {where} ({BANNER_PORTS.start}-{BANNER_PORTS[-1]})")
    return {"listen": listen, "banner": banner, "closed": spec.closed_port}


def _ask(agent: AgentClient, cmd: str, args: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """One request to the agent, waited for."""
    done = threading.Event()
    box: list[dict[str, Any]] = []

    def got(answer: dict[str, Any], t: float) -> None:
        box.append(answer)
        done.set()

    agent.request(cmd, args, got)
    if not done.wait(timeout):
        raise HarnessError(f"the target agent did not answer {cmd!r} within {timeout:g} s")
    return box[0]


def read_sysctls(agent: AgentClient) -> dict[str, int]:
    """The container's values of the sysctls the cases know (:data:`~conformance.core.params.SYSCTLS`), asked of
    the agent in its namespace; those it cannot read are left out."""
    sysctls = {}
    for name in SYSCTLS:
        answer = _ask(agent, "sysctl", {"name": name})
        if answer.get("ok"):
            try:
                sysctls[name] = int(str(answer.get("value", "")).split()[0])
            except (ValueError, IndexError):
                pass
    return sysctls


def _check_tools() -> None:
    check_privileges()
    for tool, package in (("docker", "docker.io (the docker CLI)"), ("nsenter", "util-linux")):
        if shutil.which(tool) is None:
            raise HarnessError(f"the program {tool!r} is missing", f"install it: apt-get install {package}")


# ------------------------------------------------------------------------------------ the target
@dataclass
class Plumbing:
    """What the target found and made, for its description and for tests."""

    container: Container | None = None
    network: Network | None = None
    inner: Link | None = None
    outer: Link | None = None
    bridge: str = ""
    prober_ip: str = ""
    prober_ip6: str | None = None
    target_ip6: str | None = None
    services: dict[str, int] = field(default_factory=dict)
    offload_was_on: bool | None = None
    filtered: bool = False


class DockerTarget:
    """Context manager: attaches to a running container's namespace; yields the Endpoint. See the module docstring."""

    def __init__(self, spec: DockerSpec, index: int, sysctls: dict[str, int] | None = None) -> None:
        if sysctls or index != 0:
            raise HarnessError("internal: a run opens a docker target once (cases with sysctls are skipped)")
        self.spec = spec
        self.ns_name = f"{PREFIX_DOCKER}{os.getpid()}-{index}"
        self.ns_path = os.path.join(NETNS_DIR, self.ns_name)
        self.table = firewall.table_name()
        self.found = Plumbing()
        self.undo = Undo()
        self.plumber = Plumber(self.ns_name, self.undo)
        self.endpoint: Endpoint | None = None

    def __enter__(self) -> Endpoint:
        try:
            return self._setup()
        except BaseException:
            problems = self.close()
            if problems:
                print("conformance: " + "; ".join(problems), file=sys.stderr)
            raise

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        # Said, not raised: the run's results are complete and their reports still to be written.
        problems = self.close()
        if problems:
            print(
                "conformance: warning: could not undo everything on the docker target: " + "; ".join(problems),
                file=sys.stderr,
            )

    def close(self) -> list[str]:
        """Undo everything, newest first; returns what could not be undone (safe to call twice)."""
        return self.undo.run()

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> Endpoint:
        _check_tools()
        container, net = self._find_container()
        where = f"container {container.name}"
        # The container's namespace, under a name of ours for the run.
        self.plumber.attach(container.pid, where)
        inner, neighbours = namespace_links(self.ns_name, net.ip, where)
        links = host_links()
        outer = self._find_host_side(links, inner, where)
        listening = listening_ports(in_netns(self.ns_path, all_tcp_sockets), net.ip)
        ports = self.found.services = {**choose_services(self.spec, listening, where), **dict(self.spec.given_services)}
        taken = {net.ip, net.gateway} | neighbours | {a for h in links for a, _ in h.addrs}
        our_mac = self._choose_probers(net, inner, taken)
        self._plumb(inner, outer, our_mac, where)
        agent = self._start_inside(ports["banner"])
        sysctls = read_sysctls(agent)
        self.endpoint = Endpoint(
            iface=outer.name,
            netns=None,
            our_mac=our_mac,
            target_mac=inner.mac,
            our_ip=self.found.prober_ip,
            target_ip=net.ip,
            ports=ports,
            params=resolve(sysctls),
            description=self._describe(agent.kernel),
            kind="docker",
            sysctls=sysctls,
            agent=agent,
            our_ip6=self.found.prober_ip6,
            target_ip6=self.found.target_ip6,
        )
        return self.endpoint

    def _find_container(self) -> tuple[Container, Network]:
        """The container and its network in 198.18.0.0/15, whose process must be on this machine."""
        container = container_facts(docker_inspect("container", self.spec.container), self.spec.container)
        net = pick_network(container)  # refuses a container outside 198.18.0.0/15 before anything is done
        self.found.container, self.found.network = container, net
        if not os.path.exists(f"/proc/{container.pid}/ns/net"):
            raise HarnessError(
                f"the process of container {container.name} (pid {container.pid}) is not on this machine",
                "run the tool on the docker host (DOCKER_HOST may name a daemon elsewhere)",
            )
        return container, net

    def _find_host_side(self, links: list[Link], inner: Link, where: str) -> Link:
        """The host side of the container's veth (and the bridge it is a port of, in :attr:`found`)."""
        outer = host_peer(links, inner, where)
        master = next((h for h in links if outer.master and h.index == outer.master), None)
        self.found.inner, self.found.outer = inner, outer
        self.found.bridge = master.name if master is not None and master.kind == "bridge" else ""
        return outer

    def _choose_probers(self, net: Network, inner: Link, taken: set[str]) -> str:
        """The prober's addresses, owned by no one: IPv4, and IPv6 when the container has an address in
        2001:2::/48 (in :attr:`found`); returns the prober's MAC."""
        if net.network_id:
            taken |= network_addresses(docker_inspect("network", net.network_id))
        subnet = ipaddress.IPv4Interface(f"{net.ip}/{net.prefixlen}").network
        prober = choose_prober_ip(subnet, taken, self.spec.prober_ip)
        target_ip6 = prober6 = None
        for addr, plen in inner.addrs:
            ip6 = ipaddress.ip_address(addr)
            if ip6.version == 6 and ip6 in BENCHMARK_NET6 and plen <= 126:
                prober6 = choose_prober_ip6(ipaddress.IPv6Interface(f"{addr}/{plen}").network, taken)
                if prober6 is not None:
                    target_ip6 = ip6.compressed
                    break
        self.found.prober_ip, self.found.prober_ip6, self.found.target_ip6 = prober, prober6, target_ip6
        return arp.local_mac(prober)

    def _plumb(self, inner: Link, outer: Link, our_mac: str, where: str) -> None:
        """The bridge filter, the neighbour entries for the prober, the checksum offload off."""
        found = self.found
        if found.bridge:
            self.plumber.filter_bridge(self.table, outer.name, our_mac)
            found.filtered = True
        probers = [found.prober_ip] + ([found.prober_ip6] if found.prober_ip6 is not None else [])
        self.plumber.neighbours(inner.index, probers, our_mac, where)
        found.offload_was_on = self.plumber.offload_off(inner.name, where)

    def _start_inside(self, banner: int) -> AgentClient:
        """The agent and the banner listener, in the container's namespace with this host's Python."""
        enter = ["nsenter", f"--net={self.ns_path}"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        agent = AgentClient([*enter, sys.executable, "-m", "conformance.inside.agent"], env=env)
        self.undo.later("the target agent", agent.close)
        cmd = [*enter, sys.executable, "-m", "conformance.inside.services", "--banner", str(banner)]
        proc, _ = spawn(cmd, "the banner listener in the container's namespace", env)
        self.undo.later("the banner listener", lambda: stop(proc))
        return agent

    def _describe(self, kernel: str) -> str:
        f = self.found
        assert f.container is not None and f.network is not None and f.inner is not None and f.outer is not None
        c, p = f.container, f.services
        v6 = f", {f.target_ip6}" if f.target_ip6 else ""
        prober6 = f", {f.prober_ip6}" if f.prober_ip6 else ""
        bridge = f"bridge {f.bridge}" if f.bridge else "no bridge"
        offload = {
            True: f"tx checksum offload off on {f.inner.name} for the run",
            False: f"tx checksum offload was off on {f.inner.name}",
            None: f"tx checksum offload of {f.inner.name} unknown (checksums may be the veth's)",
        }[f.offload_was_on]
        return (
            f"Linux {kernel} in docker container {c.name} ({c.id[:12]}, image {c.image}), {f.network.ip}{v6} on "
            f"{f.inner.name}; injected on the host side {f.outer.name} ({bridge}); prober {f.prober_ip}{prober6} "
            f"({arp.local_mac(f.prober_ip)}, owned by no one, permanent neighbour entries); listen {p['listen']} "
            f"(the container's), banner {p['banner']} (the tool's listener in the container's namespace), closed "
            f"{p['closed']}; {offload}"
        )
