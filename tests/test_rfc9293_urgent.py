"""The model's urgent mechanism (conformance.core.rfc9293.urgent): RFC 9293 §3.8.5 both ways, Linux's reading."""

from __future__ import annotations

from conformance.core.rfc9293 import LINUX, RFC, Host, ModelProfile, State, urgent
from conformance.core.rfc9293.tcb import Tcb
from conformance.core.segment import Segment

PEER, TARGET, PEER_PORT, TARGET_PORT = "198.18.0.1", "198.18.0.2", 40000, 7000
IRS = 5000


def to_target(flags: str, seq: int, ack: int = 0, data: bytes = b"", urgptr: int = 0) -> Segment:
    return Segment(PEER, TARGET, PEER_PORT, TARGET_PORT, seq, ack, flags, 65535, data, urgptr=urgptr)


def connection(profile: ModelProfile) -> tuple[Host, Tcb]:
    """A target in ESTABLISHED with a connection whose received text nobody reads but the test."""
    host = Host(TARGET, profile)
    host.listen(TARGET_PORT)
    (synack,) = host.receive(to_target("S", IRS), 0.0)
    host.receive(to_target("A", IRS + 1, synack.segment.seq + 1), 0.01)
    tcb = host.tcbs[(TARGET_PORT, PEER, PEER_PORT)]
    assert tcb.state is State.ESTABLISHED
    return host, tcb


def deliver(host: Host, tcb: Tcb, data: bytes, urgptr: int | None) -> None:
    """`data` at RCV.NXT, with URG and `urgptr` unless None."""
    flags = "PA" if urgptr is None else "PAU"
    host.receive(to_target(flags, tcb.rcv_nxt, tcb.snd_nxt, data, urgptr or 0), 0.1)


def test_an_urgent_send_marks_every_segment_up_to_the_octet_after_it() -> None:
    host, tcb = connection(LINUX)  # no MSS option: segments of 536 (MUST-15)
    sent = [e.segment for e in host.send(tcb, b"x" * 1200, 0.2, urgent=True)]
    assert [len(s.payload) for s in sent] == [536, 536, 128]
    assert all("U" in s.flags for s in sent)
    assert [s.seq + s.urgptr for s in sent] == [tcb.snd_up] * 3  # MUST-62, MUST-31
    assert [s.urgptr for s in sent] == [1200, 664, 128]
    host.receive(to_target("A", IRS + 1, tcb.snd_nxt), 0.3)
    (after,) = [e.segment for e in host.send(tcb, b"plain", 0.4)]
    assert "U" not in after.flags and after.urgptr == 0


def test_a_pointer_beyond_16_bits_is_sent_as_0xffff() -> None:
    host, tcb = connection(LINUX)
    first = host.send(tcb, b"y" * 70000, 0.2, urgent=True)[0].segment
    assert "U" in first.flags and first.urgptr == urgent.MAX_FIELD


def test_linux_reads_up_to_the_last_urgent_octet_and_gives_it_apart() -> None:
    host, tcb = connection(LINUX)
    deliver(host, tcb, b"abcdef", 6)
    assert urgent.pending(tcb) and urgent.readable(tcb) and not urgent.at_mark(tcb)
    assert urgent.read(tcb, 100) == b"abcde"
    assert urgent.at_mark(tcb) and not urgent.readable(tcb)  # only the octet read apart is left
    assert urgent.read_oob(tcb) == b"f"
    assert urgent.read_oob(tcb) == "EINVAL" and not urgent.pending(tcb)


def test_a_pointer_beyond_the_segment_waits_for_its_octet() -> None:
    host, tcb = connection(LINUX)
    deliver(host, tcb, b"0123", 10)
    assert not urgent.pending(tcb) and urgent.read_oob(tcb) == "EAGAIN"
    assert urgent.read(tcb, 100) == b"0123" and not urgent.at_mark(tcb)
    deliver(host, tcb, b"456789", 6)  # the same end of the urgent data: no new notice, its octet arrives
    assert urgent.pending(tcb) and urgent.read(tcb, 100) == b"45678" and urgent.read_oob(tcb) == b"9"


def test_so_oobinline_keeps_the_urgent_octet_in_the_stream() -> None:
    host, tcb = connection(LINUX)
    tcb.oob_inline = True
    deliver(host, tcb, b"abcdefgh", 6)
    assert urgent.read(tcb, 100) == b"abcde" and urgent.at_mark(tcb)
    assert urgent.read_oob(tcb) == "EINVAL"
    assert urgent.read(tcb, 100) == b"fgh" and not urgent.at_mark(tcb) and not urgent.pending(tcb)


def test_the_rfc_reading_keeps_urgent_data_in_line_up_to_rcv_up() -> None:
    host, tcb = connection(RFC)
    deliver(host, tcb, b"abcdefgh", 6)
    assert urgent.pending(tcb) and urgent.read_oob(tcb) == "EINVAL"
    assert urgent.read(tcb, 100) == b"abcdef" and urgent.at_mark(tcb)  # "the boundary is clearly marked"
    assert urgent.read(tcb, 100) == b"gh" and not urgent.pending(tcb)


def test_a_new_pointer_skips_the_old_urgent_octet_left_unread() -> None:
    host, tcb = connection(LINUX)
    deliver(host, tcb, b"abc", 3)
    assert urgent.read_oob(tcb) == b"c" and urgent.read(tcb, 100) == b"ab"
    deliver(host, tcb, b"de", 2)  # Linux tcp_check_urg: copied_seq++ past "c"
    assert urgent.pending(tcb) and urgent.read_oob(tcb) == b"e"
    assert urgent.read(tcb, 100) == b"d"


def test_a_pointer_not_in_advance_is_no_new_notice() -> None:
    host, tcb = connection(LINUX)
    deliver(host, tcb, b"abc", 3)
    assert urgent.read_oob(tcb) == b"c"
    deliver(host, tcb, b"de", None)
    old = (tcb.rcv_nxt - 2) % 2**32  # "de" again and new text, the pointer on "d": behind RCV.NXT, not replayed
    host.receive(to_target("AU", old, tcb.snd_nxt, b"dexy", 1), 0.2)
    assert not urgent.pending(tcb) and urgent.read(tcb, 100) == b"ab"
    assert urgent.read(tcb, 100) == b"dexy"  # past the old mark, its octet skipped


def test_urg_after_the_peer_fin_is_ignored() -> None:
    host, tcb = connection(LINUX)
    host.receive(to_target("FA", tcb.rcv_nxt, tcb.snd_nxt), 0.1)
    assert tcb.state is State.CLOSE_WAIT
    host.receive(to_target("AU", tcb.rcv_nxt, tcb.snd_nxt, b"", 5), 0.2)
    assert tcb.rcv_up is None and not urgent.pending(tcb)


def test_nagle_does_not_hold_urgent_data() -> None:
    host, tcb = connection(LINUX)
    assert [len(e.segment.payload) for e in host.send(tcb, b"a", 0.2)] == [1]  # a small segment, unacknowledged
    assert host.send(tcb, b"b", 0.3) == []  # Nagle (Minshall's, Linux) holds the next small one
    (urgent_segment,) = [e.segment for e in host.send(tcb, b"!", 0.4, urgent=True)]
    assert urgent_segment.payload == b"b!" and "U" in urgent_segment.flags and urgent_segment.urgptr == 2
