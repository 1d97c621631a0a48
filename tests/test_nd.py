"""Offline: Neighbor Discovery frames (conformance.wire.nd), checked against Scapy's dissection.

The frames are written with struct; Scapy (scapy.layers.inet6) reads them back
field by field and recomputes the ICMPv6 checksum, so a wrong byte, length or
checksum fails here. The other way round, frames Scapy builds (as a kernel
would send them) must parse.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether

from conformance.wire import arp, nd
from conformance.wire.tap import TapWire

OUR_MAC, OUR_IP = "02:cf:00:00:00:01", "2001:2:0:3::1"
KERNEL_MAC, KERNEL_IP = "aa:bb:cc:dd:ee:01", "2001:2:0:3::2"
LINK_LOCAL = "fe80::a8bb:ccff:fedd:ee01"


def checksum_ok(frame: bytes) -> bool:
    """Scapy's own verdict: the checksum it computes for the dissected message equals the one sent."""
    pkt = Ether(frame)
    icmp = pkt[IPv6].payload
    sent = icmp.cksum
    del icmp.cksum
    return bool(Ether(bytes(pkt))[IPv6].payload.cksum == sent)


def test_solicited_node_address_and_its_mac() -> None:
    assert nd.solicited_node("2001:2:0:3::abcd:1234") == "ff02::1:ffcd:1234"
    assert nd.solicited_node(KERNEL_IP) == "ff02::1:ff00:2"
    assert nd.multicast_mac("ff02::1:ffcd:1234") == "33:33:ff:cd:12:34"
    assert nd.multicast_mac(nd.ALL_NODES) == "33:33:00:00:00:01"


def test_local_mac() -> None:
    assert nd.local_mac("2001:2:0:3::c0a8:1") == "02:cf:c0:a8:00:01"
    assert nd.local_mac("2001:2:0:3::1:2") == "02:cf:00:01:00:02"
    assert int(nd.local_mac(OUR_IP).split(":")[0], 16) & 0x03 == 0x02  # locally administered, unicast


def test_solicitation_as_scapy_reads_it() -> None:
    frame = nd.solicit(OUR_MAC, OUR_IP, "2001:2:0:3::abcd:1234")
    pkt = Ether(frame)
    assert (pkt[Ether].src, pkt[Ether].dst, pkt[Ether].type) == (OUR_MAC, "33:33:ff:cd:12:34", 0x86DD)
    ip = pkt[IPv6]
    assert (ip.version, ip.nh, ip.hlim, ip.src, ip.dst) == (6, 58, 255, OUR_IP, "ff02::1:ffcd:1234")
    assert ip.plen == len(frame) - 54 == 32
    ns = pkt[ICMPv6ND_NS]
    assert (ns.type, ns.code, ns.res, ns.tgt) == (135, 0, 0, "2001:2:0:3::abcd:1234")
    assert pkt[ICMPv6NDOptSrcLLAddr].lladdr == OUR_MAC and pkt[ICMPv6NDOptSrcLLAddr].len == 1
    assert checksum_ok(frame)


def test_solicitation_parses_back() -> None:
    parsed = nd.parse(nd.solicit(OUR_MAC, OUR_IP, KERNEL_IP))
    assert parsed == nd.Nd(
        kind=nd.NS,
        src=OUR_IP,
        dst="ff02::1:ff00:2",
        target=KERNEL_IP,
        flags=0,
        lladdr=OUR_MAC,
        eth_src=OUR_MAC,
        eth_dst="33:33:ff:00:00:02",
    )
    assert nd.answer_mac(parsed, KERNEL_IP) is None  # a solicitation is no answer


@pytest.mark.parametrize("source", [LINK_LOCAL, KERNEL_IP])
def test_advertisement_answers_a_kernel_solicitation(source: str) -> None:
    """Linux solicits from its link-local address or from the address the waiting packet came from."""
    kernel_ns = (
        Ether(src=KERNEL_MAC, dst=nd.multicast_mac(nd.solicited_node(OUR_IP)))
        / IPv6(src=source, dst=nd.solicited_node(OUR_IP), hlim=255)
        / ICMPv6ND_NS(tgt=OUR_IP)
        / ICMPv6NDOptSrcLLAddr(lladdr=KERNEL_MAC)
    )
    ns = nd.parse(bytes(kernel_ns))
    assert ns is not None and nd.asks_for(ns, OUR_IP) and not nd.asks_for(ns, "2001:2:0:3::9")
    assert (ns.src, ns.lladdr) == (source, KERNEL_MAC)
    frame = nd.advertise_to(ns, OUR_MAC)
    pkt = Ether(frame)
    assert (pkt[Ether].src, pkt[Ether].dst) == (OUR_MAC, KERNEL_MAC)
    assert (pkt[IPv6].src, pkt[IPv6].dst, pkt[IPv6].hlim) == (OUR_IP, source, 255)
    na = pkt[ICMPv6ND_NA]
    assert (na.type, na.code, na.R, na.S, na.O, na.tgt) == (136, 0, 0, 1, 1, OUR_IP)
    assert pkt[ICMPv6NDOptDstLLAddr].lladdr == OUR_MAC
    assert checksum_ok(frame)
    back = nd.parse(frame)
    assert back is not None and back.solicited and back.override
    assert nd.answer_mac(back, OUR_IP) == OUR_MAC


def test_advertisement_to_duplicate_address_detection_goes_to_all_nodes() -> None:
    dad = (
        Ether(src=KERNEL_MAC, dst=nd.multicast_mac(nd.solicited_node(OUR_IP)))
        / IPv6(src="::", dst=nd.solicited_node(OUR_IP), hlim=255)
        / ICMPv6ND_NS(tgt=OUR_IP)
    )
    ns = nd.parse(bytes(dad))
    assert ns is not None and ns.src == "::" and ns.lladdr is None and nd.asks_for(ns, OUR_IP)
    pkt = Ether(nd.advertise_to(ns, OUR_MAC))
    assert (pkt[Ether].dst, pkt[IPv6].dst, pkt[IPv6].src) == ("33:33:00:00:00:01", "ff02::1", OUR_IP)
    assert (pkt[ICMPv6ND_NA].S, pkt[ICMPv6ND_NA].O) == (0, 1)  # RFC 4861 §7.2.4: not solicited when to all-nodes
    assert checksum_ok(bytes(pkt))


def test_solicitation_without_link_layer_option_is_answered_to_its_ethernet_source() -> None:
    unicast_probe = (
        Ether(src=KERNEL_MAC, dst=OUR_MAC) / IPv6(src=KERNEL_IP, dst=OUR_IP, hlim=255) / ICMPv6ND_NS(tgt=OUR_IP)
    )
    ns = nd.parse(bytes(unicast_probe))
    assert ns is not None and ns.lladdr is None
    assert Ether(nd.advertise_to(ns, OUR_MAC))[Ether].dst == KERNEL_MAC


def test_kernel_advertisement_gives_the_mac() -> None:
    na = (
        Ether(src=KERNEL_MAC, dst=OUR_MAC)
        / IPv6(src=KERNEL_IP, dst=OUR_IP, hlim=255)
        / ICMPv6ND_NA(tgt=KERNEL_IP, R=0, S=1, O=1)
        / ICMPv6NDOptDstLLAddr(lladdr="aa:bb:cc:dd:ee:02")
    )
    parsed = nd.parse(bytes(na))
    assert parsed is not None and parsed.kind == nd.NA and parsed.solicited
    assert nd.answer_mac(parsed, KERNEL_IP) == "aa:bb:cc:dd:ee:02"  # the option, not the frame's source
    assert nd.answer_mac(parsed, "2001:2:0:3:0:0:0:2") == "aa:bb:cc:dd:ee:02"  # any spelling of the address
    assert nd.answer_mac(parsed, "2001:2:0:3::9") is None
    without_option = Ether(src=KERNEL_MAC, dst=OUR_MAC) / IPv6(src=KERNEL_IP, dst=OUR_IP, hlim=255)
    parsed = nd.parse(bytes(without_option / ICMPv6ND_NA(tgt=KERNEL_IP, S=1)))
    assert nd.answer_mac(parsed, KERNEL_IP) == KERNEL_MAC


def _na(**ip: object) -> Ether:
    return (
        Ether(src=KERNEL_MAC, dst=OUR_MAC)
        / IPv6(src=KERNEL_IP, dst=OUR_IP, **ip)
        / ICMPv6ND_NA(tgt=KERNEL_IP, S=1)
        / ICMPv6NDOptDstLLAddr(lladdr=KERNEL_MAC)
    )


def test_parse_discards_what_rfc_4861_discards() -> None:
    assert nd.parse(bytes(_na(hlim=255))) is not None
    assert nd.parse(bytes(_na(hlim=254))) is None  # §7.1.2: could have come through a router
    bad_sum = bytearray(bytes(_na(hlim=255)))
    bad_sum[56] ^= 0xFF
    assert nd.parse(bytes(bad_sum)) is None
    zero_option = bytearray(bytes(_na(hlim=255)))
    zero_option[14 + 40 + 24 + 1] = 0  # option length 0
    assert nd.parse(bytes(zero_option)) is None
    multicast_solicited = (
        Ether(src=KERNEL_MAC, dst="33:33:00:00:00:01")
        / IPv6(src=KERNEL_IP, dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(tgt=KERNEL_IP, S=1)
    )
    assert nd.parse(bytes(multicast_solicited)) is None


def test_parse_ignores_other_frames() -> None:
    tcp6 = Ether(src=KERNEL_MAC, dst=OUR_MAC) / IPv6(src=KERNEL_IP, dst=OUR_IP) / TCP(sport=80, dport=20000)
    assert nd.parse(bytes(tcp6)) is None
    tcp4 = Ether() / IP(src="198.18.3.2", dst="198.18.3.1") / TCP()
    assert nd.parse(bytes(tcp4)) is None
    assert nd.parse(arp.request("02:cf:c6:12:03:01", "198.18.3.1", "198.18.3.2")) is None
    assert nd.parse(nd.solicit(OUR_MAC, OUR_IP, KERNEL_IP)[:70]) is None  # cut short
    assert nd.parse(b"") is None


# ------------------------------------------------------------------ the TAP wire's responder, on a socketpair
@pytest.fixture
def tap_wire() -> Iterator[tuple[TapWire, socket.socket]]:
    """A TapWire whose descriptor is one end of a datagram socketpair (a frame per read, as on a TAP device);
    the test plays the kernel on the other end."""
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    wire = TapWire("cftest0", OUR_MAC, "198.18.3.1", "198.18.3.2", OUR_IP, KERNEL_IP)
    wire._fd = ours.fileno()
    capture = threading.Thread(target=wire._capture, daemon=True)
    capture.start()
    kernel.settimeout(2.0)
    try:
        yield wire, kernel
    finally:
        wire._stop.set()
        capture.join(timeout=2)
        ours.close()
        kernel.close()


def _kernel_ns(source: str, target: str = OUR_IP) -> bytes:
    group = nd.solicited_node(target)
    pkt = Ether(src=KERNEL_MAC, dst=nd.multicast_mac(group)) / IPv6(src=source, dst=group, hlim=255)
    pkt /= ICMPv6ND_NS(tgt=target)
    if source != "::":
        pkt /= ICMPv6NDOptSrcLLAddr(lladdr=KERNEL_MAC)
    return bytes(pkt)


def test_tap_wire_answers_solicitations_for_the_prober(tap_wire: tuple[TapWire, socket.socket]) -> None:
    wire, kernel = tap_wire
    kernel.send(_kernel_ns("2001:2:0:3::2", target="2001:2:0:3::9"))  # someone else's address: no answer
    kernel.send(_kernel_ns(LINK_LOCAL))
    answer = Ether(kernel.recv(65536))
    assert (answer[Ether].dst, answer[IPv6].dst, answer[ICMPv6ND_NA].tgt) == (KERNEL_MAC, LINK_LOCAL, OUR_IP)
    assert answer[ICMPv6ND_NA].S == 1 and answer[ICMPv6NDOptDstLLAddr].lladdr == OUR_MAC
    kernel.send(_kernel_ns("::"))  # duplicate address detection of our address by the kernel
    answer = Ether(kernel.recv(65536))
    assert (answer[Ether].dst, answer[IPv6].dst, answer[ICMPv6ND_NA].S) == ("33:33:00:00:00:01", "ff02::1", 0)
    end = time.monotonic() + 2.0
    while wire.nd_answered < 2 and time.monotonic() < end:  # counted just after the write we have just read
        time.sleep(0.01)
    assert wire.nd_answered == 2


def test_tap_wire_resolves_the_target_by_solicitation(tap_wire: tuple[TapWire, socket.socket]) -> None:
    wire, kernel = tap_wire

    def kernel_answers() -> None:
        asked = nd.parse(kernel.recv(65536))
        assert asked is not None and asked.kind == nd.NS and asked.target == KERNEL_IP and asked.src == OUR_IP
        na = Ether(src=KERNEL_MAC, dst=OUR_MAC) / IPv6(src=KERNEL_IP, dst=OUR_IP, hlim=255)
        kernel.send(bytes(na / ICMPv6ND_NA(tgt=KERNEL_IP, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=KERNEL_MAC)))

    helper = threading.Thread(target=kernel_answers)
    helper.start()
    assert wire.resolve("2001:2:0:3:0::2", timeout=2.0) == KERNEL_MAC
    helper.join()
