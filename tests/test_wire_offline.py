"""The wire's conversions, offline: Scapy frames to segments and back, checksums on raw bytes."""

from __future__ import annotations

import pytest
from scapy.layers.l2 import Ether

from conformance.core.segment import Segment
from conformance.wire.capture import checksum_ok, to_frame, to_segment


@pytest.mark.parametrize(("src", "dst"), [("198.18.0.1", "198.18.0.2"), ("2001:2::1", "2001:2::2")])
def test_round_trip_and_checksum(src: str, dst: str) -> None:
    sent = Segment(
        src, dst, 40000, 7000, seq=5, ack=9, flags="PA", window=1234, payload=b"hello", options=(("mss", 1460),)
    )
    raw = bytes(to_frame(sent, "02:00:00:00:00:01", "02:00:00:00:00:02"))
    pkt = Ether(raw)
    pkt.time = 12.5
    got = to_segment(pkt)
    assert got is not None
    assert (got.src, got.dst, got.sport, got.dport, got.seq, got.ack, got.flags, got.window, got.payload) == (
        src,
        dst,
        40000,
        7000,
        5,
        9,
        "PA",
        1234,
        b"hello",
    )
    assert got.option("mss") == 1460 and got.time == 12.5 and got.checksum_ok is True
    for i in (-1, 30, len(raw) - 6):  # a flipped bit in the payload, an address, the TCP header
        bad = bytearray(raw)
        bad[i] ^= 0x01
        assert checksum_ok(bytes(bad)) is False


def test_padding_of_short_frames_is_not_payload() -> None:
    raw = bytes(
        to_frame(Segment("198.18.0.1", "198.18.0.2", 1, 2, flags="S"), "02:00:00:00:00:01", "02:00:00:00:00:02")
    )
    padded = raw + b"\0" * (60 - len(raw))
    pkt = Ether(padded)
    pkt.time = 0.0
    seg = to_segment(pkt)
    assert seg is not None and seg.payload == b"" and seg.checksum_ok is True
    assert checksum_ok(b"\x00" * 10) is None


def test_each_family_goes_to_its_own_next_hop() -> None:
    """A remote host's IPv4 and IPv6 next hops (or a TAP stack's) may be two machines."""
    from types import SimpleNamespace

    from conformance.wire.capture import Wire

    sent: list[bytes] = []
    wire = Wire("prb0", None, "02:00:00:00:00:01", "02:00:00:00:00:04", "198.18.0.1", "198.18.9.2")
    wire._out = SimpleNamespace(outs=SimpleNamespace(send=sent.append))
    v4 = Segment("198.18.0.1", "198.18.9.2", 40000, 80, flags="S")
    v6 = Segment("2001:2::1", "2001:2:0:9::2", 40001, 80, flags="S")
    wire.send(v4)
    wire.send(v6)
    assert [f[:6].hex(":") for f in sent] == ["02:00:00:00:00:04", "02:00:00:00:00:04"], "one next hop by default"
    wire.target_mac6 = "02:00:00:00:00:06"
    sent.clear()
    wire.send(v4)
    wire.send(v6)
    assert [f[:6].hex(":") for f in sent] == ["02:00:00:00:00:04", "02:00:00:00:00:06"]


def test_a_tap_wire_counts_the_drops_of_its_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12 item 5: a flood made the TAP device drop 7.7 M frames unseen; the wire now reads the device's
    tx_dropped (frames dropped on their way to the tool), counted from when it attached."""
    from conformance.wire import tap

    counts = iter([1000, 7_701_000])
    monkeypatch.setattr(tap, "tx_dropped", lambda ifname: next(counts))
    wire = tap.TapWire("faketap0", "02:00:00:00:00:01", "198.18.0.1", "198.18.0.2")
    wire._drops_base = tap.tx_dropped("faketap0")
    wire._count_drops()
    assert wire.drops == 7_700_000 and "TAP device" in wire.loss_cause
