"""What the tool changes for a docker target's run, each change with its undo: the container's namespace
attached under a name of ours, the nftables bridge table, the permanent neighbour entries for the prober, the
container's transmit checksum offload; and the prober's addresses, chosen where nobody answers.

:class:`Undo` holds what to undo, newest first; each change is recorded there before it is made, so a failure
(or a signal) halfway leaves nothing behind.

May import: :mod:`conformance.core`, :mod:`conformance.wire`, :mod:`conformance.inside` and this package.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..core.errors import HarnessError
from ..wire import arp, firewall
from . import records
from .base import BENCHMARK_NET, BENCHMARK_NET6
from .docker_discovery import TCP_TIME_WAIT, all_tcp_sockets, command, in_netns

NETNS_DIR = "/var/run/netns"
_IFNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")


# ------------------------------------------------------------------------------------ undo
@dataclass
class _Step:
    what: str
    fn: Callable[[], None]


class Undo:
    """What to undo, newest first; only the process that made the changes undoes them (pyroute2 forks)."""

    def __init__(self) -> None:
        self._owner = os.getpid()
        self._steps: list[_Step] = []

    def later(self, what: str, fn: Callable[[], None]) -> None:
        self._steps.append(_Step(what, fn))

    def run(self) -> list[str]:
        """Undo everything, newest first; returns what could not be undone (safe to call twice)."""
        if os.getpid() != self._owner:  # a forked copy (pyroute2 forks): not ours to undo
            return []
        problems = []
        while self._steps:
            step = self._steps.pop()
            try:
                step.fn()
            except Exception as exc:
                problems.append(f"{step.what}: {exc}")
        return problems


# ------------------------------------------------------------------------------- addresses
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


def _unfilter(table: str) -> None:
    firewall.delete_table(table, "bridge")
    records.this_run().forget("nft", f"bridge {table}")


# ------------------------------------------------------------------------------- changes
class Plumber:
    """Makes the changes in the container's namespace, attached as `ns_name`, recording each undo in `undo`."""

    def __init__(self, ns_name: str, undo: Undo) -> None:
        self.ns_name = ns_name
        self.ns_path = os.path.join(NETNS_DIR, ns_name)
        self.undo = undo

    def attach(self, pid: int, where: str) -> None:
        """The container's namespace (that of process `pid`), under our name for the run."""
        from pyroute2 import netns

        if self.ns_name in netns.listnetns():
            raise HarnessError(f"network namespace {self.ns_name!r} exists already", "run `conformance cleanup`")
        self.undo.later(f"ip netns delete {self.ns_name}", self._detach)
        records.this_run().add("netns", self.ns_name)  # before: a kill right after the attach leaves no orphan
        command(["ip", "netns", "attach", self.ns_name, str(pid)], f"cannot attach to {where}'s namespace")

    def filter_bridge(self, table: str, port: str, mac: str) -> None:
        """The bridge must neither flood the container's frames to the prober nor pass them up to this host."""
        script = bridge_ruleset(table, port, mac)
        self.undo.later(f"nft delete table bridge {table}", partial(_unfilter, table))
        records.this_run().add("nft", f"bridge {table}")
        proc = firewall._nft(["-f", "-"], stdin=script)
        if proc.returncode != 0:
            raise HarnessError(
                f"cannot install the nftables table bridge {table}: {proc.stderr.strip()}",
                "run as root with nftables (nft) and the kernel's nf_tables bridge family",
            )

    def neighbours(self, ifindex: int, probers: list[str], mac: str, where: str) -> None:
        """The container reaches the prober without asking: permanent neighbour entries."""
        from pyroute2 import NetNS

        for ip in probers:
            self.undo.later(f"neighbour entry {ip} in {where}", partial(self._unneigh, ifindex, ip))
            family = {"family": socket.AF_INET6} if ":" in ip else {}
            with NetNS(self.ns_name) as ns:  # replace: a FAILED entry of an earlier run may be there
                ns.neigh("replace", dst=ip, lladdr=mac, ifindex=ifindex, state="permanent", **family)
        # Runs after the agent and the banner listener have stopped, before the neighbour entries go.
        self.undo.later(f"the connections of {where} to the prober", lambda: self._abort_connections(probers))

    def offload_off(self, ifname: str, where: str) -> bool | None:
        """Checksums computed by the container's kernel, not left to the veth; whether offload was on."""
        enter = ["nsenter", f"--net={self.ns_path}"]
        was_on = tx_checksumming(command([*enter, "ethtool", "-k", ifname], f"ethtool -k {ifname} in {where}"))
        if was_on:
            restore = [*enter, "ethtool", "-K", ifname, "tx", "on"]
            self.undo.later(f"ethtool -K {ifname} tx on in {where}", lambda: self._run_if_attached(restore))
            command([*enter, "ethtool", "-K", ifname, "tx", "off"], f"ethtool -K {ifname} tx off in {where}")
        return was_on

    # ---------------------------------------------------------------- undoing
    def _detach(self) -> None:
        if os.path.exists(self.ns_path):
            command(["ip", "netns", "delete", self.ns_name], f"ip netns delete {self.ns_name}")
        records.this_run().forget("netns", self.ns_name)

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
            command(
                ["nsenter", f"--net={self.ns_path}", "ss", "-K", "-H", "-t", "-a", "-n", "dst", ip],
                f"ss -K dst {ip} in the container",
            )
        wanted = set(probers) | {f"::ffff:{ip}" for ip in probers}
        left = [
            s
            for s in in_netns(self.ns_path, all_tcp_sockets)
            if s["remote"][0] in wanted and s["state_num"] != TCP_TIME_WAIT
        ]
        if left:
            raise HarnessError(
                f"{len(left)} connection(s) to the prober remain (the kernel may lack CONFIG_INET_DIAG_DESTROY); "
                "they retransmit until they time out"
            )

    def _run_if_attached(self, cmd: list[str]) -> None:
        if os.path.exists(self.ns_path):
            command(cmd, " ".join(cmd))

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
