"""What docker and the kernel say about a container: ``docker inspect``, its interfaces and their veth peers
(netlink), and the sockets in its namespace. Reads only; :mod:`conformance.targets.docker_plumbing` changes things.

May import: :mod:`conformance.core`, :mod:`conformance.inside` and this package's :mod:`base`.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..core.errors import HarnessError
from .base import BENCHMARK_NET

COMMAND_TIMEOUT = 20.0
TCP_LISTEN, TCP_TIME_WAIT = 10, 6  # include/net/tcp_states.h
#: Neighbour states of an address someone answers for (REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT):
#: an INCOMPLETE or FAILED entry is an address nobody answered for, free for the prober.
NUD_LIVE = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80
CLONE_NEWNET = 0x40000000

T = TypeVar("T")


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


def listening_ports(sockets: Iterable[Mapping[str, Any]], ip: str) -> set[int]:
    """Ports with a TCP listener reachable on `ip`: bound to it or to a wildcard (0.0.0.0, ::, ::ffff:ip)."""
    reachable = {ip, "0.0.0.0", "::", f"::ffff:{ip}"}
    return {int(s["local"][1]) for s in sockets if s["state_num"] == TCP_LISTEN and s["local"][0] in reachable}


def namespace_links(ns_name: str, ip: str, where: str) -> tuple[Link, set[str]]:
    """The container's interface holding `ip` (see :func:`container_link`), and the addresses its namespace has
    a live neighbour entry for (taken: the prober must not be one of them)."""
    from pyroute2 import NetNS

    with NetNS(ns_name) as ns:
        inner = container_link([link_of(m, ns.get_addr()) for m in ns.get_links()], ip, where)
        neighbours = {
            str(n.get_attr("NDA_DST"))
            for n in ns.get_neighbours()
            if n.get_attr("NDA_DST") and int(n["state"]) & NUD_LIVE
        }
    return inner, neighbours


def host_links() -> list[Link]:
    """Every interface of this namespace, with its addresses."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [link_of(m, ipr.get_addr()) for m in ipr.get_links()]


# ---------------------------------------------------------------------------------- programs
def command(cmd: list[str], what: str, hint: str = "") -> str:
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
    out = command(["docker", "inspect", "--type", kind, name], f"docker inspect {name}", hint)
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


def all_tcp_sockets() -> list[dict[str, Any]]:
    from ..inside.diag import AgentError, tcp_sockets

    out = tcp_sockets(socket.AF_INET)
    try:
        out += tcp_sockets(socket.AF_INET6)
    except (AgentError, OSError):
        pass  # no IPv6 in this kernel
    return out
