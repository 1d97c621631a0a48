"""The embedded target: a Linux kernel TCP stack in a network namespace.

Layout (made by :class:`NamespaceTarget`, removed on exit, also on failure)::

    prober namespace cfp-PID-N           target namespace cft-PID-N (or the user's)
    ┌──────────────────────────┐         ┌──────────────────────────────────┐
    │ cfPIDpN  (no IP address) │ ─veth─  │ cfPIDtN 198.18.N.2/24, N.3/24    │
    │ Scapy injects/captures   │         │  2001:2:0:N::2/64, N::3/64       │
    └──────────────────────────┘         │ services: listen 7000, banner    │
                                         │ 7001, echo 7007, http 7080,      │
                                         │ nothing on 7009                  │
                                         └──────────────────────────────────┘

The services and the agent's listeners bind to the target's two addresses only, never to every address
of the namespace (which may be the user's, with services of its own). The embedded target (not a
``netns:NAME`` one) has a second address of each family, ``.3`` and ``::3`` (``secondary`` in a case): the
services listen there too, the agent does not.

The prober's interface carries no address and sits in a namespace of its own,
so no kernel answers for the prober (no stray RSTs) and nothing it sends can be
forwarded anywhere. The target gets a permanent neighbour entry for the prober's
address; transmit checksum offload is off on the target's veth so that captured
checksums are the ones the target computed (RFC 9293 MUST-2).

Every namespace is written in the run's record (:mod:`conformance.targets.records`) before it is made;
:func:`cleanup` removes only what the records of dead runs name. A namespace of the user's
(``netns:NAME``) keeps its sysctls: the cases that set some are skipped there, and what the tool
changes in it (its veth end, the state of ``lo``) is undone on exit. A namespace another run made
is refused.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from ..core.errors import HarnessError
from ..core.params import SYSCTLS, resolve
from . import records
from .agent_client import AgentClient, spawn, stop
from .base import Endpoint, TargetSpec

PREFIX_PROBER = "cfp-"
PREFIX_TARGET = "cft-"
#: A docker container's namespace, attached under this name for a run (conformance.targets.docker).
PREFIX_DOCKER = "cfd-"
PREFIXES = (PREFIX_PROBER, PREFIX_TARGET, PREFIX_DOCKER)
LISTEN_PORT, BANNER_PORT, CLOSED_PORT = 7000, 7001, 7009
ECHO_PORT, HTTP_PORT = 7007, 7080
#: The target's IPv4 subnet: 198.18.N.0/24 (its directed broadcast 198.18.N.255 is in the test range).
#: The target's ports kept out of its ephemeral range (net.ipv4.ip_local_reserved_ports): every window of source
#: and agent ports a run takes (conformance.run.session.Ports: a base in 20000-39999, PORT_WINDOW 10000 ports).
RESERVED_PORTS = "20000-49999"
PREFIX_LEN = 24
#: The services of :mod:`conformance.inside.services` in the target namespace (closed: nobody listens there).
PORTS = {"listen": LISTEN_PORT, "banner": BANNER_PORT, "echo": ECHO_PORT, "http": HTTP_PORT, "closed": CLOSED_PORT}


@dataclass(frozen=True)
class NamespaceSpec(TargetSpec):
    """``embedded`` (existing None) or ``netns:NAME``."""

    existing: str | None = None
    kind: ClassVar[str] = "netns"
    has_agent: ClassVar[bool] = True

    def own_services(self) -> dict[str, int]:
        return dict(PORTS)

    def refuses_sysctls(self) -> str | None:
        if self.existing is None:
            return None
        return (
            f"namespace {self.existing} is yours and keeps its sysctls (leave out --target to play the case on a "
            "namespace of the tool's)"
        )


def check_privileges() -> None:
    """Fail early, with what to do, when the run cannot make namespaces."""
    if os.geteuid() != 0:
        raise HarnessError(
            "creating network namespaces and raw sockets needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW)",
            "run as root, e.g. sudo .venv/bin/conformance run",
        )
    for tool, package in (("ip", "iproute2"), ("ethtool", "ethtool")):
        if shutil.which(tool) is None:
            raise HarnessError(
                f"the program {tool!r} is missing", f"install it: apt-get install {package} (or run .ci/setup)"
            )


def _wait_link(ns: Any, ifname: str, where: str, timeout: float = 3.0) -> int:
    """The index of `ifname` in namespace `ns`, waiting for a moved link to appear."""
    end = time.monotonic() + timeout
    while True:
        found = ns.link_lookup(ifname=ifname)
        if found:
            return int(found[0])
        if time.monotonic() > end:
            raise HarnessError(f"interface {ifname} did not appear in namespace {where} within {timeout:g} s")
        time.sleep(0.05)


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")


class NamespaceTarget:
    """Context manager: builds the two namespaces, the veth and the services."""

    def __init__(self, index: int, sysctls: dict[str, int] | None = None, existing: str | None = None) -> None:
        if not 0 <= index < 250:
            raise HarnessError(f"target index {index} out of range (at most 250 namespace targets per run)")
        if existing is not None and sysctls:
            raise HarnessError("internal: cases that set sysctls are skipped on a netns:NAME target")
        pid = os.getpid()
        self.index = index
        self.sysctls = dict(sysctls or {})
        self.prober_ns = f"{PREFIX_PROBER}{pid}-{index}"
        self.existing = existing
        self.target_ns = existing or f"{PREFIX_TARGET}{pid}-{index}"
        tag = f"{pid % 100000}"
        self.prober_if = f"cf{tag}p{index}"
        self.target_if = f"cf{tag}t{index}"
        self.our_ip = f"198.18.{index}.1"
        self.target_ip = f"198.18.{index}.2"
        self.our_ip6 = ipaddress.ip_address(f"2001:2:0:{index:x}::1").compressed
        self.target_ip6 = ipaddress.ip_address(f"2001:2:0:{index:x}::2").compressed
        # A second address of each family on the same link and subnet (cases about a connection's local address,
        # RFC 9293 §3.9.1.1), on the embedded target only: a netns:NAME namespace gets just the two above.
        embedded = existing is None
        self.secondary_ip = f"198.18.{index}.3" if embedded else None
        self.secondary_ip6 = ipaddress.ip_address(f"2001:2:0:{index:x}::3").compressed if embedded else None
        self._made_ns: list[str] = []
        self._record = records.this_run()
        self._lo_was_down = False  # in the user's namespace: we set lo up, and set it down again on exit
        self._owner = os.getpid()  # clean up only from the process that set up
        self._services: subprocess.Popen[str] | None = None
        self._agent: AgentClient | None = None
        self.endpoint: Endpoint | None = None

    # ------------------------------------------------------------------ set-up
    def __enter__(self) -> Endpoint:
        try:
            return self._setup()
        except BaseException:
            self.close()
            raise

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _setup(self) -> Endpoint:
        check_privileges()
        self._make_namespaces()
        self._make_veth()
        our_mac, target_mac = self._configure_links()
        _run(["ip", "netns", "exec", self.target_ns, "ethtool", "-K", self.target_if, "tx", "off"])
        has_ipv6 = self._setup_ipv6(our_mac)
        # Bound to the target's own addresses: they exist now.
        binds = [a for a in (self.target_ip, self.target_ip6 if has_ipv6 else None) if a is not None]
        secondaries = [a for a in (self.secondary_ip, self.secondary_ip6 if has_ipv6 else None) if a is not None]
        self._start_services(binds + secondaries)
        ready = self._ready
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        inside = [sys.executable, "-m", "conformance.inside.agent", *(f"--addr={a}" for a in binds)]
        self._agent = AgentClient(["ip", "netns", "exec", self.target_ns, *inside], env=env)
        sysctls = {k: int(v) for k, v in ready.get("sysctls", {}).items()}
        where = f"namespace {self.target_ns}" + (" (yours)" if self.existing else "")
        self.endpoint = Endpoint(
            iface=self.prober_if,
            netns=self.prober_ns,
            our_mac=our_mac,
            target_mac=target_mac,
            our_ip=self.our_ip,
            target_ip=self.target_ip,
            ports=dict(PORTS),
            params=resolve(sysctls),
            description=f"Linux {ready.get('kernel', '?')} in {where}, {self.target_ip}"
            + ("" if self.existing else f", rp_filter=2 (as distributions ship it), ports {RESERVED_PORTS} reserved"),
            sysctls=sysctls,
            agent=self._agent,
            our_ip6=self.our_ip6 if has_ipv6 else None,
            target_ip6=self.target_ip6 if has_ipv6 else None,
            prefix=PREFIX_LEN,
            secondary_ip=self.secondary_ip,
            secondary_ip6=self.secondary_ip6 if has_ipv6 else None,
        )
        return self.endpoint

    def _make_namespaces(self) -> None:
        """The prober's namespace (IPv6 off), and the target's unless it is the user's."""
        from pyroute2 import netns

        existing = set(netns.listnetns())
        if self.existing is not None:
            refuse_foreign(self.existing, existing)
        for name in (self.prober_ns,) if self.existing else (self.prober_ns, self.target_ns):
            if name in existing:
                raise HarnessError(f"network namespace {name!r} exists already", "run `conformance cleanup`")
            # Recorded first (here and in the run's record): a signal during create() must not leave a namespace
            # we forget.
            self._record.add("netns", name)
            self._made_ns.append(name)
            netns.create(name)
        disable_ipv6 = "for s in all default; do echo 1 > /proc/sys/net/ipv6/conf/$s/disable_ipv6; done"
        _run(["ip", "netns", "exec", self.prober_ns, "sh", "-c", disable_ipv6])
        if self.existing is None:
            # Reverse-path filtering as distributions ship it (systemd's 50-default.conf: rp_filter=2), not the
            # kernel's 0: with 0 Linux answers a SYN from the subnet's directed broadcast, which RFC 9293 MUST-63
            # lets the IP layer or TCP refuse (README, Targets: "The embedded target").
            rp_filter = "for s in all default; do echo 2 > /proc/sys/net/ipv4/conf/$s/rp_filter; done"
            _run(["ip", "netns", "exec", self.target_ns, "sh", "-c", rp_filter])
            # The ports the tool may give the agent's listeners (every run's window lies in them) are no ephemeral
            # port of the target's own connects: else a connect of one case may take the port a later case's
            # listener is given (EADDRINUSE, the tool's doing). Reserved ports still bind when asked for.
            reserve = f"echo {RESERVED_PORTS} > /proc/sys/net/ipv4/ip_local_reserved_ports"
            _run(["ip", "netns", "exec", self.target_ns, "sh", "-c", reserve])

    def _make_veth(self) -> None:
        """The veth pair, one end moved into each namespace (both removed again if a move fails)."""
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            ipr.link("add", ifname=self.prober_if, kind="veth", peer={"ifname": self.target_if})
            try:
                ipr.link("set", index=ipr.link_lookup(ifname=self.prober_if)[0], net_ns_fd=self.prober_ns)
                ipr.link("set", index=ipr.link_lookup(ifname=self.target_if)[0], net_ns_fd=self.target_ns)
            except Exception:
                for name in (self.prober_if, self.target_if):
                    found = ipr.link_lookup(ifname=name)
                    if found:
                        ipr.link("del", index=found[0])
                raise

    def _configure_links(self) -> tuple[str, str]:
        """Both ends up, the target's address and its permanent neighbour entry for the prober; the two MACs."""
        from pyroute2 import NetNS

        with NetNS(self.prober_ns) as ns:
            i = _wait_link(ns, self.prober_if, self.prober_ns)
            ns.link("set", index=i, state="up")
            our_mac = ns.get_links(i)[0].get_attr("IFLA_ADDRESS")
        with NetNS(self.target_ns) as ns:
            i = _wait_link(ns, self.target_if, self.target_ns)
            ns.addr("add", index=i, address=self.target_ip, prefixlen=PREFIX_LEN)
            if self.secondary_ip is not None:  # after the primary: the kernel marks it secondary (not the route's src)
                ns.addr("add", index=i, address=self.secondary_ip, prefixlen=PREFIX_LEN)
            ns.link("set", index=i, state="up")
            lo = ns.link_lookup(ifname="lo")
            if lo:
                up = ns.get_links(lo[0])[0]["flags"] & 1  # IFF_UP
                self._lo_was_down = self.existing is not None and not up
                ns.link("set", index=lo[0], state="up")
            target_mac = ns.get_links(i)[0].get_attr("IFLA_ADDRESS")
            ns.neigh("add", dst=self.our_ip, lladdr=our_mac, ifindex=i, state="permanent")
        return str(our_mac), str(target_mac)

    def _setup_ipv6(self, our_mac: str) -> bool:
        """The target's IPv6 address (no DAD wait) and a permanent ND entry for the prober.

        The prober's namespace keeps IPv6 off: its interface carries no address of either
        family, so its kernel never answers for the prober. False when the target has no IPv6.
        """
        ns = ["ip", "-n", self.target_ns]
        try:
            _run([*ns, "-6", "addr", "add", f"{self.target_ip6}/64", "dev", self.target_if, "nodad"])
            if self.secondary_ip6 is not None:  # deprecated (preferred_lft 0): it takes connections, but source
                # selection keeps the primary for the target's own connects, as before it existed (RFC 6724 rule 3)
                second = [f"{self.secondary_ip6}/64", "dev", self.target_if, "nodad", "preferred_lft", "0"]
                _run([*ns, "-6", "addr", "add", *second])
            _run(
                [
                    *ns,
                    "-6",
                    "neigh",
                    "replace",
                    self.our_ip6,
                    "lladdr",
                    our_mac,
                    "dev",
                    self.target_if,
                    "nud",
                    "permanent",
                ]
            )
        except HarnessError:
            return False
        return True

    def _start_services(self, binds: list[str]) -> None:
        cmd = [
            "ip",
            "netns",
            "exec",
            self.target_ns,
            sys.executable,
            "-m",
            "conformance.inside.services",
            "--listen",
            str(LISTEN_PORT),
            "--banner",
            str(BANNER_PORT),
            "--echo",
            str(ECHO_PORT),
            "--http",
            str(HTTP_PORT),
            *(f"--addr={a}" for a in binds),
        ]
        for name, value in self.sysctls.items():
            cmd += ["--sysctl", f"{name}={value}"]
        for name in SYSCTLS:
            cmd += ["--read", name]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._services, ready = spawn(cmd, "the target's services", env)
        self._ready: dict[str, Any] = ready

    # ---------------------------------------------------------------- teardown
    def close(self) -> None:
        """Remove everything this target made; safe to call twice."""
        from pyroute2 import IPRoute, NetNS

        if os.getpid() != self._owner:  # a forked copy of this process (pyroute2 forks): not ours to undo
            return

        if self._agent is not None:
            agent, self._agent = self._agent, None
            agent.close()
        if self._services is not None:
            proc, self._services = self._services, None
            stop(proc)
        if self.existing is not None and self._made_ns:
            # The user's namespace stays; our veth end goes (and with it the pair).
            # (Only when we got as far as making ours: NetNS() would create a missing one.)
            try:
                with NetNS(self.existing) as ns:
                    found = ns.link_lookup(ifname=self.target_if)
                    if found:
                        ns.link("del", index=found[0])
                    lo = ns.link_lookup(ifname="lo")
                    if self._lo_was_down and lo:
                        ns.link("set", index=lo[0], state="down")
                        self._lo_was_down = False
            except Exception:
                pass
        for name in reversed(self._made_ns):
            if _remove_netns(name):
                self._record.forget("netns", name)
        self._made_ns.clear()
        with IPRoute() as ipr:  # a veth left in this namespace after a failed move
            for name in (self.prober_if, self.target_if):
                found = ipr.link_lookup(ifname=name)
                if found:
                    ipr.link("del", index=found[0])


def _remove_netns(name: str, patience: float = 1.5) -> bool:
    """Remove a namespace we made; if a signal cut its creation short, the helper that
    creates it may still be at work: wait a little for it to appear, then remove it.
    Whether the name is gone."""
    from pyroute2 import netns

    end = time.monotonic() + patience
    while True:
        try:
            netns.remove(name)
            return True
        except OSError:
            if time.monotonic() > end:
                return name not in netns.listnetns()
            time.sleep(0.05)


def refuse_foreign(name: str, existing: set[str], directory: Path | None = None) -> None:
    """A ``netns:NAME`` must exist and be the user's: not one a conformance run made (recorded)."""
    if name not in existing:
        raise HarnessError(
            f"network namespace {name!r} does not exist",
            "create it first (ip netns add NAME) or leave out --target to use the embedded one",
        )
    owner = records.owner_of(("netns", name), directory)
    if owner is None:
        return
    if owner.alive():
        raise HarnessError(
            f"network namespace {name!r} belongs to the conformance run of process {owner.pid}, which is still "
            "running: refused (the run would change that run's target)",
            "give a namespace of your own (ip netns add NAME), or leave out --target to use the embedded one",
        )
    raise HarnessError(
        f"network namespace {name!r} was made by a conformance run that has ended (process {owner.pid}): refused",
        "run `conformance cleanup` to remove it, and give a namespace of your own",
    )


@dataclass
class Cleaned:
    """What :func:`cleanup` did: what it removed, and what it left with the reason (``NAME: not ours, ...``)."""

    removed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def _label(kind: str, name: str) -> str:
    return f"nft table {name}" if kind == "nft" else name


def _remove_made(kind: str, name: str) -> bool:
    """Remove one thing a record names; False when it is gone already."""
    from pyroute2 import netns

    from ..wire import firewall

    if kind == "netns":
        if name not in netns.listnetns():
            return False
        netns.remove(name)
        return True
    if kind == "nft":
        family, _, table = name.partition(" ")
        return firewall.delete_table(table, family)
    if kind == "link":  # an interface's settings a link target changed: put back
        from .link import restore

        return restore(name)
    raise HarnessError(f"unknown kind of record entry {kind!r}")


def cleanup(directory: Path | None = None) -> Cleaned:
    """Remove what the records of dead runs name (namespaces, names of containers' namespaces, nftables tables)
    and their records; report the namespaces and tables named like ours that no record names, left in place."""
    from pyroute2 import netns

    from ..wire import firewall

    done = Cleaned()
    known: set[records.Entry] = set()
    for record in records.read_all(directory):
        known.update(record.made)
        if record.alive():
            continue
        for kind, name in list(record.made):
            try:
                if _remove_made(kind, name):
                    done.removed.append(_label(kind, name))
            except (HarnessError, OSError) as exc:
                done.left.append(f"{_label(kind, name)}: could not remove it ({exc})")
                continue
            record.made.remove((kind, name))
        record.save()
    named = [("netns", n) for n in sorted(netns.listnetns()) if n.startswith(PREFIXES)]
    named += [("nft", f"{family} {table}") for family, table in firewall.tables_named_like_ours()]
    done.left += [f"{_label(*e)}: not ours, left in place" for e in named if e not in known]
    return done
