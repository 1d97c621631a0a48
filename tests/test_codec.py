"""The struct codec against Scapy, its reference: the same bytes out, the same segments in.

Random segments (both families, every flag set, the options the tool meets and
some it does not) are built by :func:`codec.encode` and by Scapy; random frames,
well-formed and not, are decoded by :func:`codec.decode` and by Scapy's
dissection. Any difference fails, with the segment or the frame that shows it.
"""

from __future__ import annotations

import random
import struct

import pytest

from conformance.core.segment import FLAG_ORDER, Segment
from conformance.wire import codec, tcp_options

MACS = ("02:00:00:00:00:01", "02:cf:c6:12:00:02")
ADDRS = {4: ("198.18.0.1", "198.18.7.2"), 6: ("2001:2::1", "2001:2:0:7::2")}


def random_options(rng: random.Random) -> tuple[tuple[str, object], ...]:
    pool: list[tuple[str, object]] = [
        ("mss", rng.randrange(0, 65536)),
        ("wscale", rng.randrange(0, 256)),
        ("sackok", None),
        ("timestamp", (rng.getrandbits(32), rng.getrandbits(32))),
        ("nop", None),
        ("eol", None),
        ("sack", tuple(rng.getrandbits(32) for _ in range(2 * rng.randrange(1, 4)))),
    ]
    chosen = rng.sample(pool, rng.randrange(0, 5))
    if rng.random() < 0.1:
        chosen.append(("kind30", b"\x01\x02"))  # an unknown kind: to_frame leaves it out, so must encode
    return tuple(chosen)


def random_segment(rng: random.Random, family: int) -> Segment:
    src, dst = ADDRS[family]
    if rng.random() < 0.5:
        src, dst = dst, src
    return Segment(
        src,
        dst,
        rng.randrange(1, 65536),
        rng.randrange(1, 65536),
        seq=rng.getrandbits(32),
        ack=rng.getrandbits(32),
        flags="".join(ch for ch in FLAG_ORDER if rng.random() < 0.3),
        window=rng.randrange(0, 65536),
        payload=rng.randbytes(rng.choice((0, 0, 1, 7, 100, 1400))),
        options=random_options(rng),
    )


def scapy_frame(seg: Segment) -> bytes:
    return bytes(codec.to_frame(seg, *MACS))


@pytest.mark.parametrize("family", [4, 6])
def test_encode_gives_the_bytes_scapy_builds(family: int) -> None:
    rng = random.Random(family)
    for _ in range(1500):
        seg = random_segment(rng, family)
        assert codec.encode(seg, *MACS) == scapy_frame(seg), seg


@pytest.mark.parametrize("family", [4, 6])
def test_decode_gives_the_segment_scapy_dissects(family: int) -> None:
    rng = random.Random(100 + family)
    for _ in range(1500):
        frame = scapy_frame(random_segment(rng, family))
        if rng.random() < 0.3:  # Ethernet padding of a short frame, a wrong checksum, a changed TTL
            frame = frame.ljust(60, b"\0")
        if rng.random() < 0.3:
            bad = bytearray(frame)
            bad[rng.randrange(14, len(bad))] ^= 1 << rng.randrange(8)
            frame = bytes(bad)
        assert_same_decoding(frame)


def assert_same_decoding(frame: bytes) -> None:
    want = codec.scapy_decode(frame, 7.25)
    got = codec.decode(frame, 7.25)
    if want is not None and got is not None:
        assert got.extra == want.extra, frame.hex()
    assert got == want, frame.hex()


def test_unusual_frames_are_decoded_as_scapy_does() -> None:
    """Frames the fast path leaves to Scapy, or must refuse the same way: options it does not know,
    malformed option lengths, IP options, fragments, truncation, other protocols."""
    base = scapy_frame(Segment("198.18.0.1", "198.18.7.2", 1000, 80, seq=1, flags="S", options=(("mss", 1460),)))
    ip6 = scapy_frame(Segment("2001:2::1", "2001:2::2", 1000, 80, seq=1, flags="SA"))

    def with_options(opts: bytes, frame: bytes = base) -> bytes:
        """`frame` (no options but its MSS) with `opts` (padded) instead, lengths and offsets fixed."""
        opts += b"\0" * (-len(opts) % 4)
        ip_start = 14
        tcp_start = ip_start + 20
        tcp = bytearray(frame[tcp_start : tcp_start + 20])
        tcp[12] = (5 + len(opts) // 4) << 4
        body = bytes(tcp) + opts
        ip = bytearray(frame[ip_start:tcp_start])
        ip[2:4] = (20 + len(body)).to_bytes(2, "big")
        return frame[:14] + bytes(ip) + body

    cases = [
        with_options(b"\x1c\x04\x00\x64"),  # UTO (kind 28), known to Scapy
        with_options(b"\x22\x02"),  # TFO cookie request
        with_options(b"\xfe\x06\xf9\x89\x00\x01"),  # experimental
        with_options(b"\x02\x03\x05"),  # MSS of a wrong length
        with_options(b"\x08\x0c" + b"\0" * 10),  # timestamp of a wrong length
        with_options(b"\x05\x05\x00\x00\x00"),  # SACK not a multiple of 4
        with_options(b"\x02\x01"),  # length < 2
        with_options(b"\x02\x09\x05\xb4"),  # runs past the header
        with_options(b"\x01\x00\x02\x04\x05\xb4"),  # EOL, then bytes Scapy ignores
        with_options(b"\x01"),  # a lone NOP, then padding (EOL)
        with_options(b"\x02"),  # a kind without its length byte
        base[:14] + b"\x46" + base[15:34] + b"\x01\x01\x01\x00" + base[34:],  # IPv4 with an option (ihl 6)
        base[:20] + b"\x20\x00" + base[22:],  # more fragments
        base[:20] + b"\x00\x10" + base[22:],  # a later fragment
        base[:23] + b"\x11" + base[24:],  # UDP
        base[:40],  # truncated TCP header
        base[:30],  # truncated IP header
        base[:12],  # not even Ethernet
        base[:12] + b"\x88\xcc" + base[14:],  # LLDP
        base[:46] + bytes([base[46] | 0x01]) + base[47:],  # the reserved NS / AE bit: not a flag, no error
        base[:46] + bytes([0x40]) + base[47:],  # data offset 4 (< 5)
        ip6[:20] + b"\x00" + ip6[21:],  # IPv6 hop-by-hop header first
        ip6[:18] + b"\x00\x08" + ip6[20:],  # IPv6 payload length shorter than a TCP header
        ip6[:14] + b"\x40" + ip6[15:],  # not version 6
    ]
    for frame in cases:
        assert_same_decoding(frame)


def test_decode_fast_path_takes_common_frames() -> None:
    """The fast path really decodes the frames of a dialogue itself (Scapy is not called)."""
    seg = Segment(
        "198.18.0.1",
        "198.18.7.2",
        1000,
        80,
        seq=1,
        flags="S",
        options=(("mss", 1460), ("sackok", None), ("timestamp", (1, 0)), ("nop", None), ("wscale", 7)),
    )
    frame = scapy_frame(seg)
    calls: list[bytes] = []
    original = codec.scapy_decode
    try:
        codec.scapy_decode = lambda f, t: calls.append(f)  # type: ignore[assignment,misc,func-returns-value]
        got = codec.decode(frame, 1.0)
    finally:
        codec.scapy_decode = original
    assert calls == [] and got is not None
    assert got.options == seg.options and got.checksum_ok is True and got.extra == {"ttl": 64, "ip_id": 1, "tos": 0}


def test_encode_leaves_values_it_cannot_build_to_scapy() -> None:
    seg = Segment("198.18.0.1", "198.18.7.2", 1, 2, flags="S", options=(("timestamp", [5, 6]), ("mss", 536)))
    assert codec.encode(seg, *MACS) == scapy_frame(seg)
    with pytest.raises(struct.error):  # out of range: neither builds it silently wrong
        codec.encode(Segment("198.18.0.1", "198.18.7.2", 70000, 2, flags="S"), *MACS)


@pytest.mark.parametrize("family", [4, 6])
def test_icmp_errors_about_our_segments_are_decoded(family: int) -> None:
    """Issue 12 item 16: an ICMP port unreachable that answers our SYN is an event of our flow (the quoted
    segment's source port is ours), built here by Scapy as the kernel would send it."""
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
    from scapy.layers.l2 import Ether

    ours, theirs = ADDRS[family]
    syn = Segment(ours, theirs, 40000, 7, seq=123456789, flags="S", options=(("mss", 1460),))
    ours_frame = codec.encode(syn, *MACS)
    quoted = ours_frame[14:]
    if family == 4:
        pkt = Ether(src=MACS[1], dst=MACS[0]) / IP(src=theirs, dst=ours) / ICMP(type=3, code=3) / quoted
    else:
        pkt = Ether(src=MACS[1], dst=MACS[0]) / IPv6(src=theirs, dst=ours) / ICMPv6DestUnreach(code=4) / quoted
    error = codec.decode_icmp(bytes(pkt), 5.0)
    assert error is not None
    assert (error.src, error.dst, error.version, error.time) == (theirs, ours, family, 5.0)
    assert error.text == "port unreachable" and error.label.startswith("ICMP")
    q = error.quoted
    assert (q.src, q.dst, q.sport, q.dport, q.seq, q.flags) == (ours, theirs, 40000, 7, 123456789, "S")
    assert "port unreachable" in error.describe() and "seq=123456789" in error.describe()
    stand_in = error.as_segment()
    assert (stand_in.src, stand_in.dport, stand_in.flags, stand_in.extra["icmp"]) == (theirs, 40000, "", error)
    # RFC 792's minimum quote: the IP header and 8 octets (ports and seq, no flags)
    if family == 4:
        short = Ether(src=MACS[1], dst=MACS[0]) / IP(src=theirs, dst=ours) / ICMP(type=3, code=1) / quoted[:28]
        cut = codec.decode_icmp(bytes(short), 1.0)
        assert cut is not None and (cut.quoted.seq, cut.quoted.flags, cut.text) == (123456789, "", "host unreachable")
    # not errors about TCP: an echo request, a TCP segment, an error quoting UDP
    assert codec.decode_icmp(ours_frame, 1.0) is None
    if family == 4:
        assert codec.decode_icmp(bytes(Ether() / IP(src=theirs, dst=ours) / ICMP(type=8)), 1.0) is None
        udp = IP(src=ours, dst=theirs) / UDP(sport=1, dport=2)
        assert codec.decode_icmp(bytes(Ether() / IP(src=theirs, dst=ours) / ICMP(type=3, code=3) / udp), 1.0) is None


@pytest.mark.parametrize("family", [4, 6])
def test_raw_options_bad_checksums_and_urgent_pointers_are_built_as_scapy_builds_them(family: int) -> None:
    rng = random.Random(100 + family)
    raws = [b"\xfd\x04\xab\xcd", b"\x63\x00", b"\xfd\x01", b"\xfd\x28\x00\x00", b"\xfe\x06\x01\x02\x03\x04", b"\x63"]
    for _ in range(300):
        seg = random_segment(rng, family)
        options = seg.options[:2] + (("raw", rng.choice(raws)),) + seg.options[2:3]
        if tcp_options.options_bytes(options) is None:
            continue  # more than 40 octets
        seg = Segment(
            seg.src, seg.dst, seg.sport, seg.dport, seq=seg.seq, ack=seg.ack, flags=seg.flags, window=seg.window,
            payload=seg.payload, options=options, checksum_ok=rng.choice((None, False)), urgptr=rng.randrange(65536),
        )  # fmt: skip
        frame = codec.encode(seg, *MACS)
        assert frame == scapy_frame(seg), seg
        assert codec.checksum_ok(frame) is (seg.checksum_ok is None), seg
        assert codec.decode(frame, 0.0) == codec.scapy_decode(frame, 0.0)


def test_raw_option_bytes_go_into_the_header_as_written() -> None:
    seg = Segment("198.18.0.1", "198.18.7.2", 1, 2, flags="S", options=(("mss", 1460), ("raw", b"\x63\x00")))
    frame = codec.encode(seg, *MACS)
    tcp = frame[34:]
    assert tcp[12] >> 4 == 7  # 20 + 8 octets of options
    assert tcp[20:28] == b"\x02\x04\x05\xb4\x63\x00\x00\x00"  # MSS, kind 99 length 0, then zero padding
    decoded = codec.decode(frame, 0.0)
    assert decoded is not None and decoded.options[0] == ("mss", 1460) and decoded.options[1][0] == "kind99"


def test_a_bad_checksum_is_the_right_one_with_its_lowest_bit_flipped() -> None:
    seg = Segment("198.18.0.1", "198.18.7.2", 1, 2, flags="PA", payload=b"data")
    good, bad = codec.encode(seg, *MACS), codec.encode(Segment(**{**seg.__dict__, "checksum_ok": False}), *MACS)
    assert good[:50] == bad[:50] and good[52:] == bad[52:]  # only the TCP checksum field differs
    assert int.from_bytes(good[50:52], "big") ^ int.from_bytes(bad[50:52], "big") == 1
    assert codec.checksum_ok(good) is True and codec.checksum_ok(bad) is False
    for checksum in (0x0000, 0x0001, 0xFFFE, 0xFFFF, 0x1234):  # ones' complement values are equal modulo 0xFFFF:
        assert (codec.spoil(checksum) - checksum) % 0xFFFF != 0  # never the same sum spelt another way


def test_the_urgent_pointer_is_sent_and_decoded() -> None:
    seg = Segment("2001:2::1", "2001:2:0:7::2", 1, 2, flags="UA", payload=b"x" * 9, urgptr=9)
    frame = codec.encode(seg, *MACS)
    assert frame[54 + 18 : 54 + 20] == b"\x00\x09"
    decoded = codec.decode(frame, 0.0)
    assert decoded is not None and decoded.urgptr == 9 and decoded.flags == "AU"
