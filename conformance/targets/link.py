"""A stack on the other side of an existing interface: ``--target link:IFNAME:ADDR[:PORT] [--prober-ip IP]``.

IFNAME is an interface of the namespace the tool runs in whose other side is the stack under test: a TAP device
that a user-space stack holds (frames it writes arrive on IFNAME, frames sent out of IFNAME reach it), one end of
a veth pair, or a physical port cabled to a device. ADDR, PORT and ``--prober-ip`` are as for ``tap:``
(:mod:`conformance.targets.tap`)::

    the tool (this process)                       IFNAME's other side
    ┌───────────────────────────────────┐         ┌──────────────────────────┐
    │ LinkWire: packet sockets on IFNAME│ ◀─────▶ │ the stack under test     │
    │ prober 198.18.x.1, 02:cf:...      │ frames  │ ADDR, PORT listening     │
    │ answers ARP and ND for it         │         │ (holds a TAP fd, a veth) │
    └───────────────────────────────────┘         └──────────────────────────┘

The wire is :class:`~conformance.wire.link.LinkWire`: the packet sockets of the namespace and docker targets, so
receive and send times are the kernel's timestamps, on both directions.

IFNAME must be up and have no address: the kernel would otherwise answer the stack's frames too (a RST for every
segment of ours it does not know). For the run the tool keeps the kernel quiet on it: IPv6 off
(``net.ipv6.conf.IFNAME.disable_ipv6=1``: no link-local address, no router or neighbour solicitations) and ARP off
(``ip link set IFNAME arp off``). Both are put back when the run ends; the run's record
(:mod:`conformance.targets.records`, entry kind ``link``) names what to put back, so ``conformance cleanup``
restores them after a killed run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from ..core.errors import HarnessError
from ..wire.link import LinkWire
from . import records
from .base import Endpoint, TargetOptions
from .tap import StackTarget, TapSpec, parse_tap, prober_mac, stack_endpoint

IFF_UP, IFF_NOARP = 0x1, 0x80


@dataclass(frozen=True)
class LinkSpec(TapSpec):
    """``link:IFNAME:ADDR[:PORT]``: the fields of ``tap:``, another wire."""

    kind: ClassVar[str] = "link"
    no_sysctls: ClassVar[str | None] = "the tool cannot set the parameters of a stack it reaches over a link"


def parse_link(text: str, options: TargetOptions) -> LinkSpec:
    """``link:IFNAME:ADDR[:PORT]``; ADDR: IPv4, [IPv6] or both, comma-separated."""
    spec = parse_tap(text, options, LinkSpec)
    assert isinstance(spec, LinkSpec)
    return spec


def _sys(ifname: str, name: str) -> Path:
    return Path(f"/sys/class/net/{ifname}/{name}")


def _ipv6_switch(ifname: str) -> Path:
    return Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6")


def this_netns() -> int:
    """The inode of this process's network namespace: a record entry names the namespace its interface is in."""
    return os.stat("/proc/self/ns/net").st_ino


def _ip_link_arp(ifname: str, on: bool) -> None:
    proc = subprocess.run(
        ["ip", "link", "set", "dev", ifname, "arp", "on" if on else "off"], capture_output=True, text=True, timeout=20
    )
    if proc.returncode != 0:
        raise HarnessError(f"cannot turn ARP {'on' if on else 'off'} on {ifname}: {proc.stderr.strip()}")


def addresses(ifname: str) -> list[str]:
    """The addresses on `ifname` that would make the kernel answer there: any IPv4 one, any IPv6 one but
    link-local (which goes with IPv6 off)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = ipr.get_addr(index=ipr.link_lookup(ifname=ifname)[0])
    out = []
    for msg in found:
        ip = msg.get_attr("IFA_ADDRESS")
        if ip and not (":" in ip and ip.lower().startswith("fe80:")):
            out.append(f"{ip}/{msg['prefixlen']}")
    return out


def check_interface(ifname: str) -> None:
    """IFNAME exists here, is up and has no address; HarnessError saying what to do otherwise."""
    if not _sys(ifname, "flags").exists():
        raise HarnessError(
            f"there is no interface {ifname!r} in this network namespace",
            "give the interface whose other side is the stack under test (ip link shows them), and run the tool in "
            "the namespace that holds it",
        )
    if not int(_sys(ifname, "flags").read_text(), 16) & IFF_UP:
        raise HarnessError(f"interface {ifname} is down", f"bring it up first: ip link set {ifname} up")
    found = addresses(ifname)
    if found:
        raise HarnessError(
            f"interface {ifname} has addresses ({', '.join(found)}): this host's kernel would answer the stack too",
            f"remove them (ip addr flush dev {ifname}): the tool needs an interface of its own, without addresses",
        )


def quiet_entry(ifname: str) -> str:
    """The record entry that puts IFNAME's settings back: ``IFNAME NETNS disable_ipv6=V arp=on|off``."""
    switch = _ipv6_switch(ifname)
    ipv6 = switch.read_text().strip() if switch.exists() else "-"
    arp_on = not int(_sys(ifname, "flags").read_text(), 16) & IFF_NOARP
    return f"{ifname} {this_netns()} disable_ipv6={ipv6} arp={'on' if arp_on else 'off'}"


def quiet(ifname: str) -> None:
    """IPv6 and ARP off on IFNAME: the kernel sends nothing there, and answers nothing."""
    switch = _ipv6_switch(ifname)
    if switch.exists():
        switch.write_text("1\n")
    _ip_link_arp(ifname, False)


def restore(entry: str) -> bool:
    """Put back what a ``link`` record entry names; False when the interface is gone (nothing to put back).
    HarnessError when the interface is in another network namespace than this process's."""
    ifname, netns, ipv6, arp_state = entry.split()
    if int(netns) != this_netns():
        raise HarnessError(
            f"interface {ifname} is in another network namespace (inode {netns})",
            "run `conformance cleanup` in that namespace (ip netns exec NAME ...)",
        )
    if not _sys(ifname, "flags").exists():
        return False
    value = ipv6.partition("=")[2]
    if value != "-" and _ipv6_switch(ifname).exists():
        _ipv6_switch(ifname).write_text(f"{value}\n")
    _ip_link_arp(ifname, arp_state == "arp=on")
    return True


class LinkTarget(StackTarget):
    """Context manager: quiets IFNAME's kernel, opens the wire, resolves ADDR; yields the Endpoint and its wire."""

    kind_name: ClassVar[str] = "link"

    def __init__(self, spec: LinkSpec, index: int, sysctls: dict[str, int] | None = None) -> None:
        super().__init__(spec, index, sysctls)
        self.wire: LinkWire | None = None
        self._entry: str | None = None

    def __enter__(self) -> tuple[Endpoint, LinkWire]:
        spec = self.spec
        self._opened_once()
        check_interface(spec.ifname)
        entry = quiet_entry(spec.ifname)
        records.this_run().add("link", entry)  # before changing anything: cleanup puts it back after a kill
        self._entry = entry
        try:
            quiet(spec.ifname)
            endpoint, self.wire = self._open_wire()
        except BaseException:
            self.close()
            raise
        return endpoint, self.wire

    def _open_wire(self) -> tuple[Endpoint, LinkWire]:
        spec = self.spec
        our_mac = prober_mac(spec)
        self.wire = wire = LinkWire(spec.ifname, our_mac, spec.prober_ip, spec.addr, spec.prober_ip6, spec.addr6)
        wire.open()
        where = f"on the link of interface {spec.ifname}"
        self.endpoint = stack_endpoint(spec, wire, where, "kernel timestamps (packet socket)")
        return self.endpoint, wire

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.wire is not None:
            wire, self.wire = self.wire, None
            wire.close()
        if self._entry is not None:
            entry, self._entry = self._entry, None
            try:
                restore(entry)
            except (HarnessError, OSError) as exc:
                print(
                    f"conformance: could not restore {self.spec.ifname}'s settings ({exc})", file=sys.stderr, flush=True
                )
                return
            records.this_run().forget("link", entry)
