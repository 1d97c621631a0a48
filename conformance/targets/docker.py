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
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from ..core.errors import HarnessError
from ..core.params import SYSCTLS, resolve
from ..wire import arp, firewall
from .agent_client import AgentClient, spawn, stop
from .base import (
    BENCHMARK_NET,
    BENCHMARK_NET6,
    DEFAULT_CLOSED_PORT,
    Endpoint,
    TargetOptions,
    TargetSpec,
    benchmark_address,
    parse_port,
)
from .netns import PREFIX_DOCKER, check_privileges

NETNS_DIR = "/var/run/netns"
#: Ports tried, in order, for the tool's banner listener in the container.
BANNER_PORTS = range(7001, 7100)
COMMAND_TIMEOUT = 20.0
READY_TIMEOUT = 10.0
TCP_LISTEN, TCP_TIME_WAIT = 10, 6  # include/net/tcp_states.h
#: Neighbour states of an address someone answers for (REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT):
#: an INCOMPLETE or FAILED entry is an address nobody answered for, free for the prober.
NUD_LIVE = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80
CLONE_NEWNET = 0x40000000
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")

T = TypeVar("T")


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
    closed = DEFAULT_CLOSED_PORT if options.closed_port is None else options.closed_port
    if not 1 <= closed <= 65535:
        raise HarnessError(f"--closed-port {closed} is not a TCP port (1-65535)")
    if closed == port:
        raise HarnessError(
            f"--closed-port {closed} is the listening port of the target",
            "give a port that is closed in the container (default 9, discard)",
        )
    if options.prober_ip and "," in options.prober_ip:
        raise HarnessError(
            f"--prober-ip {options.prober_ip}: a docker target takes one, IPv4",
            "give one IPv4 address of the container's subnet; the prober's IPv6 address is chosen by the tool",
        )
    prober = benchmark_address(options.prober_ip, "--prober-ip") if options.prober_ip else None
    return DockerSpec(text, container=name, port=port, closed_port=closed, prober_ip=prober)


# ------------------------------------------------------------------------- what docker says
@dataclass(frozen=True)
class Network:
    """One network of a container, from ``docker inspect``."""

    name: str
    network_id: str
    ip: str
    prefixlen: int
    gateway: str
    ip6: str = ""
    prefixlen6: int = 0
    gateway6: str = ""


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    image: str
    pid: int
    networks: tuple[Network, ...]


def container_facts(info: Mapping[str, Any], wanted: str) -> Container:
    """The facts the target needs from ``docker inspect``'s object; HarnessError when it cannot be a target."""
    state = info.get("State") or {}
    name = str(info.get("Name") or wanted).lstrip("/")
    if state.get("Paused"):
        raise HarnessError(f"container {name} is paused", f"docker unpause {name}")
    if not state.get("Running") or state.get("Restarting"):
        raise HarnessError(
            f"container {name} is not running (status: {state.get('Status', '?')})", f"start it: docker start {name}"
        )
    pid = int(state.get("Pid") or 0)
    if pid <= 0:
        raise HarnessError(f"docker reports no process for container {name}")
    mode = str((info.get("HostConfig") or {}).get("NetworkMode") or "")
    if mode == "host":
        raise HarnessError(
            f"container {name} uses the host's network namespace (--network host): its TCP stack is this host's, "
            "with no link of its own to test across",
            "run it on a bridge network (the default one, started with dockerd --bip 198.19.0.1/16, or "
            "docker network create --subnet 198.19.1.0/24 NAME)",
        )
    if mode.startswith("container:"):
        raise HarnessError(
            f"container {name} shares the network namespace of container {mode[10:]}",
            f"test that container: --target docker:{mode[10:]}",
        )
    networks = []
    for net_name, n in sorted(((info.get("NetworkSettings") or {}).get("Networks") or {}).items()):
        if not n or not (n.get("IPAddress") or n.get("GlobalIPv6Address")):
            continue
        networks.append(
            Network(
                name=str(net_name),
                network_id=str(n.get("NetworkID") or ""),
                ip=str(n.get("IPAddress") or ""),
                prefixlen=int(n.get("IPPrefixLen") or 0),
                gateway=str(n.get("Gateway") or ""),
                ip6=str(n.get("GlobalIPv6Address") or ""),
                prefixlen6=int(n.get("GlobalIPv6PrefixLen") or 0),
                gateway6=str(n.get("IPv6Gateway") or ""),
            )
        )
    return Container(
        id=str(info.get("Id") or ""),
        name=name,
        image=str((info.get("Config") or {}).get("Image") or info.get("Image") or "?"),
        pid=pid,
        networks=tuple(networks),
    )


def pick_network(container: Container) -> Network:
    """The container's network whose address is in 198.18.0.0/15 (the first by name when several are)."""
    for net in container.networks:
        if net.ip and ipaddress.IPv4Address(net.ip) in BENCHMARK_NET:
            return net
    has = ", ".join(f"{n.ip or n.ip6} on {n.name}" for n in container.networks) or "no address"
    raise HarnessError(
        f"container {container.name} has no address in 198.18.0.0/15 (it has: {has}): refused",
        "the tool only sends to the benchmarking range 198.18.0.0/15: start dockerd with --bip 198.19.0.1/16, or "
        "docker network create --subnet 198.19.1.0/24 lab && docker network connect lab "
        f"{container.name}",
    )


def network_addresses(info: Mapping[str, Any]) -> set[str]:
    """Every address ``docker network inspect`` knows in a network: gateways, reserved ones, containers'."""
    out: set[str] = set()

    def add(text: object) -> None:
        if isinstance(text, str) and text:
            try:
                out.add(ipaddress.ip_interface(text).ip.compressed)
            except ValueError:
                pass

    for conf in (info.get("IPAM") or {}).get("Config") or []:
        add(conf.get("Gateway"))
        for aux in (conf.get("AuxiliaryAddresses") or {}).values():
            add(aux)
    for member in (info.get("Containers") or {}).values():
        add(member.get("IPv4Address"))
        add(member.get("IPv6Address"))
    return out


# --------------------------------------------------------------------------- links, from netlink
@dataclass(frozen=True)
class Link:
    """An interface, as netlink describes it."""

    index: int
    name: str
    kind: str  # IFLA_INFO_KIND: "veth", "bridge", ... ("" when not given)
    peer: int  # IFLA_LINK: for a veth, its peer's index (in the peer's namespace); 0 when none
    mac: str
    master: int = 0  # IFLA_MASTER: the bridge it is a port of
    addrs: tuple[tuple[str, int], ...] = ()  # (address, prefix length), both families


def link_of(msg: Any, addrs: Iterable[Any] = ()) -> Link:
    """A :class:`Link` from a pyroute2 link message and the address messages of the namespace."""
    info = msg.get_attr("IFLA_LINKINFO")
    index = int(msg["index"])
    own = tuple(
        (str(a.get_attr("IFA_ADDRESS")), int(a["prefixlen"]))
        for a in addrs
        if int(a["index"]) == index and a.get_attr("IFA_ADDRESS")
    )
    return Link(
        index=index,
        name=str(msg.get_attr("IFLA_IFNAME")),
        kind=str(info.get_attr("IFLA_INFO_KIND") or "") if info is not None else "",
        peer=int(msg.get_attr("IFLA_LINK") or 0),
        mac=str(msg.get_attr("IFLA_ADDRESS") or ""),
        master=int(msg.get_attr("IFLA_MASTER") or 0),
        addrs=own,
    )


def container_link(links: Iterable[Link], ip: str, where: str) -> Link:
    """The container's interface holding `ip`, which must be a veth."""
    for link in links:
        if any(a == ip for a, _ in link.addrs):
            if link.kind != "veth" or not link.peer:
                raise HarnessError(
                    f"{link.name}, the interface of {where} with {ip}, is a {link.kind or 'non-veth'} interface, "
                    "not a veth",
                    "the tool injects on the host side of a container's veth: put the container on a bridge "
                    "network (the default, or docker network create --driver bridge)",
                )
            return link
    raise HarnessError(f"no interface of {where} holds {ip} (docker inspect says it should)")


def host_peer(links: Iterable[Link], inner: Link, where: str) -> Link:
    """The host side of the container's veth in this namespace: index = inner's peer, peer = inner's index."""
    for link in links:
        if link.index == inner.peer and link.kind == "veth" and link.peer == inner.index:
            return link
    raise HarnessError(
        f"the host side of {where}'s veth ({inner.name}, peer ifindex {inner.peer}) is not in this network namespace",
        "run the tool on the docker host, in the network namespace where dockerd runs (not in a container, "
        "nor against a daemon on another machine or VM through DOCKER_HOST)",
    )


# ---------------------------------------------------------------------------------- services
def listening_ports(sockets: Iterable[Mapping[str, Any]], ip: str) -> set[int]:
    """Ports with a TCP listener reachable on `ip`: bound to it or to a wildcard (0.0.0.0, ::, ::ffff:ip)."""
    reachable = {ip, "0.0.0.0", "::", f"::ffff:{ip}"}
    return {int(s["local"][1]) for s in sockets if s["state_num"] == TCP_LISTEN and s["local"][0] in reachable}


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


def choose_prober_ip(network: ipaddress.IPv4Network, taken: set[str], wanted: str | None = None) -> str:
    """An address of the container's subnet nobody uses: `wanted`, or the highest free one."""
    if network.prefixlen > 30:
        raise HarnessError(f"the container's subnet {network} has no room for a prober address")
    if wanted is not None:
        ip = ipaddress.IPv4Address(wanted)
        if ip not in network or ip in (network.network_address, network.broadcast_address):
            raise HarnessError(
                f"--prober-ip {ip} is not a host address of the container's subnet {network}",
                "the container reaches the prober on its link: give an address of its subnet",
            )
        if str(ip) in taken:
            raise HarnessError(f"--prober-ip {ip} is in use in {network}", "give an address nobody owns")
        return str(ip)
    candidate = network.broadcast_address - 1
    for _ in range(4096):
        if candidate <= network.network_address:
            break
        if str(candidate) not in taken and candidate in BENCHMARK_NET:
            return str(candidate)
        candidate -= 1
    raise HarnessError(f"no free address for the prober in {network}", "give one with --prober-ip")


def choose_prober_ip6(network: ipaddress.IPv6Network, taken: set[str]) -> str | None:
    """An unused address of the container's IPv6 subnet, in 2001:2::/48 (None: none found)."""
    candidate = network.broadcast_address - 1
    for _ in range(4096):
        if candidate <= network.network_address:
            return None
        if candidate.compressed not in taken and candidate in BENCHMARK_NET6:
            return candidate.compressed
        candidate -= 1
    return None


# ---------------------------------------------------------------------------------- host plumbing
def bridge_ruleset(table: str, port: str, mac: str) -> str:
    """The ``nft -f`` script of the table that drops, on the bridge, the container's frames to the prober."""
    if not re.match(rf"^{firewall.TABLE_PREFIX}\d+$", table):
        raise ValueError(f"table name {table!r} is not {firewall.TABLE_PREFIX}PID")
    if not _IFNAME.match(port):
        raise ValueError(f"{port!r} is not an interface name")
    mac = arp.mac_text(arp.mac_bytes(mac))  # validated, normalised
    rule = f'\t\tiifname "{port}" ether daddr {mac} counter drop\n'
    chains = "".join(
        f"\tchain {hook} {{\n\t\ttype filter hook {hook} priority filter; policy accept;\n{rule}\t}}\n"
        for hook in ("forward", "input")
    )
    return f"table bridge {table}\ndelete table bridge {table}\ntable bridge {table} {{\n{chains}}}\n"


def tx_checksumming(ethtool_k: str) -> bool | None:
    """Whether ``ethtool -k`` says transmit checksum offload is on (None: it does not say)."""
    for line in ethtool_k.splitlines():
        if line.startswith("tx-checksumming:"):
            return line.split(":", 1)[1].split()[0] == "on"
    return None


def _command(cmd: list[str], what: str, hint: str = "") -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except FileNotFoundError:
        raise HarnessError(f"the program {cmd[0]!r} is missing", hint or f"install {cmd[0]}") from None
    except subprocess.TimeoutExpired:
        raise HarnessError(f"{what}: {' '.join(cmd)} did not finish within {COMMAND_TIMEOUT:g} s", hint) from None
    if proc.returncode != 0:
        raise HarnessError(f"{what}: {proc.stderr.strip() or proc.stdout.strip() or 'failed'}", hint)
    return proc.stdout


def docker_inspect(kind: str, name: str) -> dict[str, Any]:
    """``docker inspect --type KIND NAME`` (the CLI in PATH, honouring DOCKER_HOST and contexts)."""
    hint = "start the container (docker ps lists the running ones); set DOCKER_HOST if the daemon is not the default"
    out = _command(["docker", "inspect", "--type", kind, name], f"docker inspect {name}", hint)
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        raise HarnessError(f"docker inspect {name}: not JSON: {out[:200]!r}") from None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise HarnessError(f"docker inspect {name}: no such {kind}")
    return data[0]


def in_netns(path: str, fn: Callable[[], T], timeout: float = 10.0) -> T:
    """Call `fn` on a thread of its own that first enters the network namespace at `path`.

    setns(2) moves only the calling thread, so the rest of the process stays where it is;
    the thread ends with the call.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, name="in-netns", daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in box:
        raise box["error"]
    if "value" not in box:
        raise HarnessError(f"reading the container's namespace did not finish within {timeout:g} s")
    return box["value"]  # type: ignore[no-any-return]


def _all_tcp_sockets() -> list[dict[str, Any]]:
    from ..inside.agent import AgentError, tcp_sockets

    out = tcp_sockets(socket.AF_INET)
    try:
        out += tcp_sockets(socket.AF_INET6)
    except (AgentError, OSError):
        pass  # no IPv6 in this kernel
    return out


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


# ------------------------------------------------------------------------------------ the target
@dataclass
class _Undo:
    what: str
    fn: Callable[[], None]


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
        self._owner = os.getpid()
        self._undo: list[_Undo] = []
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

    def _later(self, what: str, fn: Callable[[], None]) -> None:
        self._undo.append(_Undo(what, fn))

    def close(self) -> list[str]:
        """Undo everything, newest first; returns what could not be undone (safe to call twice)."""
        if os.getpid() != self._owner:  # a forked copy (pyroute2 forks): not ours to undo
            return []
        problems = []
        while self._undo:
            step = self._undo.pop()
            try:
                step.fn()
            except Exception as exc:
                problems.append(f"{step.what}: {exc}")
        return problems

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> Endpoint:
        from pyroute2 import IPRoute, NetNS, netns

        spec = self.spec
        check_privileges()
        for tool, package in (("docker", "docker.io (the docker CLI)"), ("nsenter", "util-linux")):
            if shutil.which(tool) is None:
                raise HarnessError(f"the program {tool!r} is missing", f"install it: apt-get install {package}")
        container = container_facts(docker_inspect("container", spec.container), spec.container)
        net = pick_network(container)  # refuses a container outside 198.18.0.0/15 before anything is done
        where = f"container {container.name}"
        self.found.container, self.found.network = container, net
        proc_ns = f"/proc/{container.pid}/ns/net"
        if not os.path.exists(proc_ns):
            raise HarnessError(
                f"the process of {where} (pid {container.pid}) is not on this machine",
                "run the tool on the docker host (DOCKER_HOST may name a daemon elsewhere)",
            )

        # The container's namespace, under a name of ours for the run.
        if self.ns_name in netns.listnetns():
            raise HarnessError(f"network namespace {self.ns_name!r} exists already", "run `conformance cleanup`")
        self._later(f"ip netns delete {self.ns_name}", self._detach)
        _command(["ip", "netns", "attach", self.ns_name, str(container.pid)], f"cannot attach to {where}'s namespace")

        with NetNS(self.ns_name) as ns:
            inner = container_link([link_of(m, ns.get_addr()) for m in ns.get_links()], net.ip, where)
            neighbours = {
                str(n.get_attr("NDA_DST"))
                for n in ns.get_neighbours()
                if n.get_attr("NDA_DST") and int(n["state"]) & NUD_LIVE
            }
        with IPRoute() as ipr:
            host_links = [link_of(m, ipr.get_addr()) for m in ipr.get_links()]
        outer = host_peer(host_links, inner, where)
        master = next((h for h in host_links if outer.master and h.index == outer.master), None)
        self.found.inner, self.found.outer = inner, outer
        self.found.bridge = master.name if master is not None and master.kind == "bridge" else ""

        listening = listening_ports(in_netns(self.ns_path, _all_tcp_sockets), net.ip)
        ports = choose_services(spec, listening, where)
        self.found.services = ports

        taken = {net.ip, net.gateway} | neighbours | {a for h in host_links for a, _ in h.addrs}
        if net.network_id:
            taken |= network_addresses(docker_inspect("network", net.network_id))
        subnet = ipaddress.IPv4Interface(f"{net.ip}/{net.prefixlen}").network
        prober = choose_prober_ip(subnet, taken, spec.prober_ip)
        our_mac = arp.local_mac(prober)
        target_ip6 = prober6 = None
        for addr, plen in inner.addrs:
            ip6 = ipaddress.ip_address(addr)
            if ip6.version == 6 and ip6 in BENCHMARK_NET6 and plen <= 126:
                prober6 = choose_prober_ip6(ipaddress.IPv6Interface(f"{addr}/{plen}").network, taken)
                if prober6 is not None:
                    target_ip6 = ip6.compressed
                    break
        self.found.prober_ip, self.found.prober_ip6, self.found.target_ip6 = prober, prober6, target_ip6

        # The bridge must neither flood the container's frames to the prober nor pass them up to this host.
        if self.found.bridge:
            script = bridge_ruleset(self.table, outer.name, our_mac)
            self._later(f"nft delete table bridge {self.table}", self._unfilter)
            proc = firewall._nft(["-f", "-"], stdin=script)
            if proc.returncode != 0:
                raise HarnessError(
                    f"cannot install the nftables table bridge {self.table}: {proc.stderr.strip()}",
                    "run as root with nftables (nft) and the kernel's nf_tables bridge family",
                )
            self.found.filtered = True

        # The container reaches the prober without asking: permanent neighbour entries.
        self._later(f"neighbour entry {prober} in {where}", lambda: self._unneigh(inner.index, prober))
        with NetNS(self.ns_name) as ns:  # replace: a FAILED entry of an earlier run may be there
            ns.neigh("replace", dst=prober, lladdr=our_mac, ifindex=inner.index, state="permanent")
        probers = [prober]
        if prober6 is not None:
            probers.append(prober6)
            self._later(f"neighbour entry {prober6} in {where}", lambda: self._unneigh(inner.index, prober6))
            with NetNS(self.ns_name) as ns:
                ns.neigh(
                    "replace",
                    dst=prober6,
                    lladdr=our_mac,
                    ifindex=inner.index,
                    state="permanent",
                    family=socket.AF_INET6,
                )
        # Runs after the agent and the banner listener have stopped, before the neighbour entries go.
        self._later(f"the connections of {where} to the prober", lambda: self._abort_connections(probers))

        # Checksums computed by the container's kernel, not left to the veth.
        enter = ["nsenter", f"--net={self.ns_path}"]
        features = _command([*enter, "ethtool", "-k", inner.name], f"ethtool -k {inner.name} in {where}")
        self.found.offload_was_on = tx_checksumming(features)
        if self.found.offload_was_on:
            restore = [*enter, "ethtool", "-K", inner.name, "tx", "on"]
            self._later(f"ethtool -K {inner.name} tx on in {where}", lambda: self._run_if_attached(restore))
            _command([*enter, "ethtool", "-K", inner.name, "tx", "off"], f"ethtool -K {inner.name} tx off in {where}")

        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        agent = AgentClient([*enter, sys.executable, "-m", "conformance.inside.agent"], env=env)
        self._later("the target agent", agent.close)
        self._start_banner(enter, ports["banner"], env)
        sysctls = {}
        for name in SYSCTLS:
            answer = _ask(agent, "sysctl", {"name": name})
            if answer.get("ok"):
                try:
                    sysctls[name] = int(str(answer.get("value", "")).split()[0])
                except (ValueError, IndexError):
                    pass

        self.endpoint = Endpoint(
            iface=outer.name,
            netns=None,
            our_mac=our_mac,
            target_mac=inner.mac,
            our_ip=prober,
            target_ip=net.ip,
            ports=ports,
            params=resolve(sysctls),
            description=self._describe(agent.kernel),
            kind="docker",
            sysctls=sysctls,
            agent=agent,
            our_ip6=prober6,
            target_ip6=target_ip6,
        )
        return self.endpoint

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

    def _start_banner(self, enter: list[str], port: int, env: dict[str, str]) -> None:
        cmd = [*enter, sys.executable, "-m", "conformance.inside.services", "--banner", str(port)]
        proc, _ = spawn(cmd, "the banner listener in the container's namespace", env)
        self._later("the banner listener", lambda: stop(proc))

    # ---------------------------------------------------------------- teardown
    def _detach(self) -> None:
        if os.path.exists(self.ns_path):
            _command(["ip", "netns", "delete", self.ns_name], f"ip netns delete {self.ns_name}")

    def _abort_connections(self, probers: list[str]) -> None:
        """Destroy the container's sockets towards the prober (SOCK_DESTROY, ``ss -K``).

        A connection a case left behind (a SYN-RECEIVED request its server never accepted, data
        never acknowledged) would go on retransmitting to the prober after the run, and the
        container would ask for the prober by ARP on the bridge once its neighbour entry is gone.
        TIME-WAIT sockets stay: they send nothing unless a segment arrives.
        """
        if not os.path.exists(self.ns_path):
            return
        for ip in probers:
            _command(
                ["nsenter", f"--net={self.ns_path}", "ss", "-K", "-H", "-t", "-a", "-n", "dst", ip],
                f"ss -K dst {ip} in the container",
            )
        wanted = set(probers) | {f"::ffff:{ip}" for ip in probers}
        left = [
            s
            for s in in_netns(self.ns_path, _all_tcp_sockets)
            if s["remote"][0] in wanted and s["state_num"] != TCP_TIME_WAIT
        ]
        if left:
            raise HarnessError(
                f"{len(left)} connection(s) to the prober remain (the kernel may lack CONFIG_INET_DIAG_DESTROY); "
                "they retransmit until they time out"
            )

    def _run_if_attached(self, cmd: list[str]) -> None:
        if os.path.exists(self.ns_path):
            _command(cmd, " ".join(cmd))

    def _unfilter(self) -> None:
        firewall.delete_table(self.table, "bridge")

    def _unneigh(self, ifindex: int, ip: str) -> None:
        from pyroute2 import NetNS
        from pyroute2.netlink.exceptions import NetlinkError

        if not os.path.exists(self.ns_path):
            return
        with NetNS(self.ns_name) as ns:
            try:
                ns.neigh("del", dst=ip, ifindex=ifindex, family=socket.AF_INET6 if ":" in ip else socket.AF_INET)
            except NetlinkError as exc:
                if exc.code != 2:  # ENOENT: gone with the container
                    raise
