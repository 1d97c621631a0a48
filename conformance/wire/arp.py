"""ARP (RFC 826) for Ethernet/IPv4: building and parsing frames, and resolving a next hop.

The frame functions are pure (bytes in, bytes out) so they are tested offline.
:func:`resolve_on_iface` asks one address on an interface with a Scapy layer-2
socket (opened inside a namespace when one is given) and waits a few seconds
for the answer (:func:`ask_on_iface`, which :mod:`conformance.wire.nd` shares for
IPv6); the TAP wire (:mod:`conformance.targets.tap`) uses the frame functions
on its descriptor, where it also answers requests for the prober's address.
"""

from __future__ import annotations

import ipaddress
import select
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import HarnessError

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
BROADCAST = "ff:ff:ff:ff:ff:ff"
OP_REQUEST, OP_REPLY = 1, 2
#: How long a next hop has to answer (the request is repeated every RETRY s).
TIMEOUT = 3.0
RETRY = 1.0

_ARP = struct.Struct("!HHBBH6s4s6s4s")  # htype ptype hlen plen op sha spa tha tpa


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def local_mac(ip: str) -> str:
    """A locally administered unicast MAC made from an IPv4 address: 02:cf:a:b:c:d."""
    return mac_text(b"\x02\xcf" + ipaddress.IPv4Address(ip).packed)


@dataclass(frozen=True)
class Arp:
    """An Ethernet/IPv4 ARP packet, from the frame that carried it."""

    op: int
    sender_mac: str
    sender_ip: str
    target_mac: str
    target_ip: str
    eth_src: str
    eth_dst: str


def build(op: int, src_mac: str, src_ip: str, dst_mac: str, dst_ip: str, eth_dst: str | None = None) -> bytes:
    """An Ethernet frame holding an ARP request or reply (padded to the 60-octet minimum)."""
    eth = mac_bytes(eth_dst or (BROADCAST if op == OP_REQUEST else dst_mac)) + mac_bytes(src_mac)
    eth += struct.pack("!H", ETH_P_ARP)
    tha = b"\x00" * 6 if op == OP_REQUEST else mac_bytes(dst_mac)
    body = _ARP.pack(
        1,
        ETH_P_IP,
        6,
        4,
        op,
        mac_bytes(src_mac),
        ipaddress.IPv4Address(src_ip).packed,
        tha,
        ipaddress.IPv4Address(dst_ip).packed,
    )
    return (eth + body).ljust(60, b"\x00")


def request(our_mac: str, our_ip: str, ip: str) -> bytes:
    """Who has `ip`? Tell `our_ip` (broadcast)."""
    return build(OP_REQUEST, our_mac, our_ip, "00:00:00:00:00:00", ip)


def reply_to(req: Arp, our_mac: str) -> bytes:
    """The reply to a request for our address: `req.target_ip` is at `our_mac`."""
    return build(OP_REPLY, our_mac, req.target_ip, req.sender_mac, req.sender_ip)


def parse(frame: bytes) -> Arp | None:
    """The ARP packet in an Ethernet frame; None for anything else (VLAN tags are not handled)."""
    if len(frame) < 14 + _ARP.size or struct.unpack_from("!H", frame, 12)[0] != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, 14)
    if htype != 1 or ptype != ETH_P_IP or hlen != 6 or plen != 4:
        return None
    return Arp(
        op=op,
        sender_mac=mac_text(sha),
        sender_ip=str(ipaddress.IPv4Address(spa)),
        target_mac=mac_text(tha),
        target_ip=str(ipaddress.IPv4Address(tpa)),
        eth_src=mac_text(frame[6:12]),
        eth_dst=mac_text(frame[0:6]),
    )


def is_answer(arp: Arp | None, ip: str, our_ip: str) -> bool:
    """Whether `arp` tells us where `ip` is: a reply from it to us (or a gratuitous one)."""
    return arp is not None and arp.op == OP_REPLY and arp.sender_ip == ip and arp.target_ip in (our_ip, ip)


def no_answer(ip: str, where: str, timeout: float = TIMEOUT, via: str = "") -> HarnessError:
    what = f"no ARP answer from {ip} on {where} within {timeout:g} s"
    if via:
        what += f" ({via})"
    return HarnessError(what, "check that the host is up and on that link, and the address and interface")


def resolve_on_iface(
    iface: str, netns: str | None, our_mac: str, our_ip: str, ip: str, timeout: float = TIMEOUT, via: str = ""
) -> str:
    """The MAC address of `ip` on `iface`, by ARP; HarnessError after `timeout` seconds without an answer."""

    def answer(raw: bytes) -> str | None:
        found = parse(raw)
        return found.sender_mac if found is not None and is_answer(found, ip, our_ip) else None

    mac = ask_on_iface(iface, netns, request(our_mac, our_ip, ip), answer, timeout)
    if mac is None:
        raise no_answer(ip, iface, timeout, via)
    return mac


def ask_on_iface(
    iface: str, netns: str | None, question: bytes, answer: Callable[[bytes], str | None], timeout: float = TIMEOUT
) -> str | None:
    """Send `question` on `iface` every RETRY s until `answer` finds what it wants in a frame (its result) or
    `timeout` seconds pass (None); on a short-lived Scapy layer-2 socket, opened inside `netns` when given.

    :func:`resolve_on_iface` asks by ARP, :func:`conformance.wire.nd.resolve_on_iface` by Neighbor Discovery.
    """
    import scapy.layers.l2  # noqa: F401 - registers Ether for the socket's dissector
    from scapy.arch.linux import L2Socket

    entered = False
    try:
        if netns:
            from pyroute2 import netns as pr_netns

            pr_netns.pushns(netns)
            entered = True
        try:
            sock = L2Socket(iface=iface, promisc=False)
        except OSError as exc:
            raise HarnessError(
                f"cannot open a raw socket on {iface}: {exc.strerror}", "run as root (CAP_NET_RAW)"
            ) from None
    finally:
        if entered:
            from pyroute2 import netns as pr_netns

            pr_netns.popns()
    try:
        end = time.monotonic() + timeout
        next_send = 0.0
        while (now := time.monotonic()) < end:
            if now >= next_send:
                sock.outs.send(question)
                next_send = now + RETRY
            ready, _, _ = select.select([sock.ins], [], [], max(0.0, min(next_send, end) - time.monotonic()))
            if not ready:
                continue
            found = answer(sock.ins.recv(65535))
            if found is not None:
                return found
    finally:
        sock.close()
    return None
