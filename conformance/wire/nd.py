"""IPv6 Neighbor Discovery (RFC 4861) on Ethernet: building and parsing NS/NA frames, resolving a next hop.

What ARP (:mod:`conformance.wire.arp`) is to IPv4. The frame functions are pure
(bytes in, bytes out) so they are tested offline, against Scapy's dissection.
:func:`resolve_on_iface` asks one address on an interface with a short-lived
packet socket (:func:`conformance.wire.arp.ask_on_iface`); the TAP wire
(:mod:`conformance.targets.tap`) uses the frame functions on its descriptor, where it
also answers solicitations for the prober's address.

The rules kept here, by section of RFC 4861:

* §7.2.2: a solicitation goes to the solicited-node multicast address of the
  address asked (``ff02::1:ff`` + its low 24 bits, §2.3 / RFC 4291 §2.7.1), in
  an Ethernet frame to ``33:33`` + that address's low 32 bits (RFC 2464 §7),
  with our link-layer address in a Source Link-Layer Address option.
* §7.1.1 / §7.1.2: hop limit 255 (a node discards NS/NA with any other, so
  none can come from off the link) and a valid ICMPv6 checksum (RFC 4443 §2.3,
  over the pseudo-header of RFC 8200 §8.1); :func:`parse` drops frames that
  break these or the other checks of those sections.
* §7.2.4: the answer to a solicitation for our address is unicast to its
  source, with the Solicited and Override flags and a Target Link-Layer Address
  option; when the source is the unspecified address (duplicate address
  detection), it goes to all-nodes ``ff02::1`` with the Solicited flag clear.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ..core.errors import HarnessError
from .arp import TIMEOUT, ask_on_iface, mac_bytes, mac_text
from .codec import internet_checksum, ones_sum

ETH_P_IPV6 = 0x86DD
IPPROTO_ICMPV6 = 58
NS, NA = 135, 136
OPT_SOURCE_LLA, OPT_TARGET_LLA = 1, 2
HOP_LIMIT = 255
FLAG_ROUTER, FLAG_SOLICITED, FLAG_OVERRIDE = 0x80000000, 0x40000000, 0x20000000
UNSPECIFIED = "::"
ALL_NODES = "ff02::1"

_IPV6 = struct.Struct("!IHBB16s16s")  # version/class/flow, payload length, next header, hop limit, src, dst
_ND = struct.Struct("!BBHI16s")  # type, code, checksum, flags (NA) or reserved (NS), target address
_ETH = 14
_MIN = _ETH + _IPV6.size + _ND.size


def _ip6(text: str) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(text)


def solicited_node(ip: str) -> str:
    """The solicited-node multicast address of `ip`: ff02::1:ffXX:XXXX with its low 24 bits."""
    low = int(_ip6(ip)) & 0xFFFFFF
    return (ipaddress.IPv6Address("ff02::1:ff00:0") + low).compressed


def multicast_mac(ip: str) -> str:
    """The Ethernet address of an IPv6 multicast address: 33:33 and its low 32 bits (RFC 2464 §7)."""
    return mac_text(b"\x33\x33" + _ip6(ip).packed[-4:])


def local_mac(ip: str) -> str:
    """A locally administered unicast MAC made from an IPv6 address: 02:cf and its low 32 bits."""
    return mac_text(b"\x02\xcf" + _ip6(ip).packed[-4:])


def _pseudo(src: bytes, dst: bytes, length: int) -> bytes:
    return src + dst + struct.pack("!I3xB", length, IPPROTO_ICMPV6)


@dataclass(frozen=True)
class Nd:
    """A Neighbor Solicitation or Advertisement, from the frame that carried it."""

    kind: int  # NS or NA
    src: str
    dst: str
    target: str
    flags: int  # NA: FLAG_ROUTER | FLAG_SOLICITED | FLAG_OVERRIDE bits; NS: 0
    #: The Source (NS) or Target (NA) Link-Layer Address option; None when the message has none.
    lladdr: str | None
    eth_src: str
    eth_dst: str

    @property
    def solicited(self) -> bool:
        return bool(self.flags & FLAG_SOLICITED)

    @property
    def override(self) -> bool:
        return bool(self.flags & FLAG_OVERRIDE)


def build(
    kind: int,
    src_mac: str,
    eth_dst: str,
    src_ip: str,
    dst_ip: str,
    target: str,
    flags: int = 0,
    lladdr: str | None = None,
) -> bytes:
    """An Ethernet frame holding an NS or NA, hop limit 255, checksum filled in.

    `lladdr` goes in a Source (NS) or Target (NA) Link-Layer Address option; None: no option.
    """
    if kind not in (NS, NA):
        raise ValueError(f"not an NS or NA type: {kind}")
    src, dst = _ip6(src_ip).packed, _ip6(dst_ip).packed
    option = b""
    if lladdr is not None:
        option = struct.pack("!BB", OPT_SOURCE_LLA if kind == NS else OPT_TARGET_LLA, 1) + mac_bytes(lladdr)
    body = _ND.pack(kind, 0, 0, flags if kind == NA else 0, _ip6(target).packed) + option
    checksum = internet_checksum(_pseudo(src, dst, len(body)) + body)
    body = body[:2] + struct.pack("!H", checksum) + body[4:]
    eth = mac_bytes(eth_dst) + mac_bytes(src_mac) + struct.pack("!H", ETH_P_IPV6)
    return eth + _IPV6.pack(6 << 28, len(body), IPPROTO_ICMPV6, HOP_LIMIT, src, dst) + body


def solicit(our_mac: str, our_ip: str, ip: str) -> bytes:
    """Who has `ip`? A solicitation from `our_ip` to `ip`'s solicited-node group (§7.2.2)."""
    group = solicited_node(ip)
    return build(NS, our_mac, multicast_mac(group), our_ip, group, ip, lladdr=our_mac)


def advertise_to(ns: Nd, our_mac: str) -> bytes:
    """The answer to a solicitation for our address: `ns.target` is at `our_mac` (§7.2.4)."""
    if ns.src == UNSPECIFIED:  # duplicate address detection: tell every node, not as a solicited answer
        return build(NA, our_mac, multicast_mac(ALL_NODES), ns.target, ALL_NODES, ns.target, FLAG_OVERRIDE, our_mac)
    to_mac = ns.lladdr or ns.eth_src
    return build(NA, our_mac, to_mac, ns.target, ns.src, ns.target, FLAG_SOLICITED | FLAG_OVERRIDE, our_mac)


def is_nd(frame: bytes) -> bool:
    """A cheap first look: an IPv6 frame whose next header is ICMPv6 (NS/NA or any other ICMPv6)."""
    return len(frame) >= _MIN and frame[12:14] == b"\x86\xdd" and frame[20] == IPPROTO_ICMPV6


def parse(frame: bytes) -> Nd | None:
    """The NS or NA in an Ethernet frame; None for anything else, and for one that §7.1 says to discard
    (hop limit not 255, a bad checksum, code not 0, a zero-length option). Extension headers and VLAN tags
    are not handled."""
    if not is_nd(frame):
        return None
    vtf, plen, _, hlim, src, dst = _IPV6.unpack_from(frame, _ETH)
    body = frame[_ETH + _IPV6.size : _ETH + _IPV6.size + plen]
    if vtf >> 28 != 6 or hlim != HOP_LIMIT or len(body) != plen or plen < _ND.size:
        return None
    kind, code, _, flags, target = _ND.unpack_from(body)
    if kind not in (NS, NA) or code != 0 or ones_sum(_pseudo(src, dst, plen) + body) != 0xFFFF:
        return None
    wanted = OPT_SOURCE_LLA if kind == NS else OPT_TARGET_LLA
    lladdr = None
    at = _ND.size
    while at + 2 <= plen:
        opt, units = body[at], body[at + 1]
        if units == 0 or at + units * 8 > plen:
            return None
        if opt == wanted and units == 1:
            lladdr = mac_text(body[at + 2 : at + 8])
        at += units * 8
    source, destination = ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst)
    if kind == NA and destination.is_multicast and flags & FLAG_SOLICITED:
        return None  # §7.1.2
    if kind == NS and source.is_unspecified and (lladdr is not None or not destination.is_multicast):
        return None  # §7.1.1
    return Nd(
        kind=kind,
        src=source.compressed,
        dst=destination.compressed,
        target=ipaddress.IPv6Address(target).compressed,
        flags=flags if kind == NA else 0,
        lladdr=lladdr,
        eth_src=mac_text(frame[6:12]),
        eth_dst=mac_text(frame[0:6]),
    )


def asks_for(nd: Nd | None, our_ip: str) -> bool:
    """Whether `nd` is a solicitation for our address from another node (one we must answer)."""
    return nd is not None and nd.kind == NS and nd.target == our_ip and nd.src != our_ip


def answer_mac(nd: Nd | None, ip: str) -> str | None:
    """The MAC address an advertisement gives for `ip`; None when `nd` is no such advertisement."""
    if nd is None or nd.kind != NA or nd.target != _ip6(ip).compressed:
        return None
    return nd.lladdr or nd.eth_src


def no_answer(ip: str, where: str, timeout: float = TIMEOUT, via: str = "") -> HarnessError:
    what = f"no ND answer from {ip} on {where} within {timeout:g} s"
    if via:
        what += f" ({via})"
    return HarnessError(
        what,
        "check that the host is up, on that link and has IPv6 on it (its address not tentative: add it with "
        "nodad, or wait for duplicate address detection), and the address and interface",
    )


def resolve_on_iface(
    iface: str, netns: str | None, our_mac: str, our_ip: str, ip: str, timeout: float = TIMEOUT, via: str = ""
) -> str:
    """The MAC address of `ip` on `iface`, by Neighbor Discovery; HarnessError after `timeout` s without one."""
    mac = ask_on_iface(iface, netns, solicit(our_mac, our_ip, ip), lambda raw: answer_mac(parse(raw), ip), timeout)
    if mac is None:
        raise no_answer(ip, iface, timeout, via)
    return mac
