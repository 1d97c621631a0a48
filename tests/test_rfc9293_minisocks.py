"""Linux's mini sockets in the model (timewait and request socks): LINUX follows tcp_minisocks.c, RFC the RFC."""

from __future__ import annotations

from conformance.core.rfc9293 import LINUX, RFC, Host, ModelProfile, State
from conformance.core.rfc9293.minisocks import REOPEN_ISS_OFFSET, in_window
from conformance.core.segment import seq_add

from .test_rfc9293_model import PORT, SPORT, US, established, only, seg


def fin_wait_2(profile: ModelProfile) -> tuple[Host, int]:
    """A connection the host's application closed, its FIN acknowledged: FIN-WAIT-2. Returns the host, its ISS."""
    host, iss = established(profile)
    host.close(host.tcbs[(PORT, US, SPORT)], 1.0)
    host.receive(seg("A", 1001, iss + 2), 1.1)
    assert host.status(PORT, (US, SPORT)) is State.FIN_WAIT_2
    return host, iss


def time_wait(profile: ModelProfile) -> tuple[Host, int]:
    host, iss = fin_wait_2(profile)
    only(host.receive(seg("FA", 1001, iss + 2), 1.2))
    assert host.status(PORT, (US, SPORT)) is State.TIME_WAIT
    return host, iss


def test_tcp_in_window() -> None:
    assert in_window(100, 100, 100, 10)  # at RCV.NXT
    assert in_window(105, 106, 100, 10)  # overlaps
    assert not in_window(95, 100, 100, 10)  # ends at RCV.NXT: old
    assert in_window(110, 110, 100, 10)  # empty, at the right edge
    assert not in_window(110, 111, 100, 10)


def test_fin_wait_2_in_window_rst_kills_without_a_challenge_ack_on_linux() -> None:
    host, _ = fin_wait_2(LINUX)
    assert host.receive(seg("R", 1100), 2.0) == []
    assert host.rules()[-1] == "linux/tw-kill" and host.status(PORT, (US, SPORT)) is State.CLOSED
    host, _ = fin_wait_2(RFC)
    assert only(host.receive(seg("R", 1100), 2.0)).rule.key == "rst/challenge"


def test_fin_wait_2_data_gets_a_rst_and_an_ack_out_of_range_is_not_answered_on_linux() -> None:
    host, iss = fin_wait_2(LINUX)
    assert host.receive(seg("A", 1001, iss + 100000), 2.0) == []  # no RFC 5961 §5 ACK range check
    rst = only(host.receive(seg("PA", 1001, iss + 2, b"data"), 2.1))
    assert (rst.segment.flags, rst.segment.seq, rst.rule.key) == ("R", iss + 2, "linux/tw-reset")
    assert host.status(PORT, (US, SPORT)) is State.CLOSED


def test_fin_wait_2_fin_at_rcv_nxt_enters_time_wait_whatever_its_ack() -> None:
    host, iss = fin_wait_2(LINUX)
    ack = only(host.receive(seg("FA", 1001, iss + 1000), 2.0))
    assert (ack.segment.ack, ack.rule.key) == (1002, "linux/tw-fin")
    assert host.status(PORT, (US, SPORT)) is State.TIME_WAIT


def test_time_wait_acks_all_but_a_bare_ack_at_rcv_nxt_on_linux() -> None:
    host, iss = time_wait(LINUX)
    assert host.receive(seg("A", 1002, iss + 2), 2.0) == []
    assert only(host.receive(seg("A", 1100, iss + 2), 3.0)).rule.key == "linux/tw-ack"
    assert host.receive(seg("R", 1100), 4.0) == []  # not at RCV.NXT: dropped, no challenge ACK
    assert host.status(PORT, (US, SPORT)) is State.TIME_WAIT


def test_time_wait_syn_beyond_rcv_nxt_reopens_with_a_larger_iss_on_linux() -> None:
    host, iss = time_wait(LINUX)
    synack = only(host.receive(seg("S", 5000), 2.0))
    assert synack.segment.flags == "SA" and synack.segment.ack == 5001
    assert synack.segment.seq == seq_add(iss + 2, REOPEN_ISS_OFFSET)
    assert host.status(PORT, (US, SPORT)) is State.SYN_RECEIVED and "linux/tw-syn" in host.rules()
    host, iss = time_wait(RFC)
    assert only(host.receive(seg("S", 5000), 2.0)).segment.flags == "A"  # RFC 5961 §4: a challenge ACK


def syn_received(profile: ModelProfile) -> tuple[Host, int]:
    host = Host("198.18.0.2", profile)
    host.listen(PORT)
    (synack,) = host.receive(seg("S", 1000), 0.0)
    return host, synack.segment.seq


def test_syn_received_checks_the_ack_before_the_sequence_on_linux() -> None:
    host, iss = syn_received(LINUX)
    rst = only(host.receive(seg("A", 500, iss + 1000), 0.1))
    assert (rst.segment.flags, rst.segment.seq, rst.rule.key) == ("R", iss + 1000, "linux/req-bad-ack")
    assert host.status(PORT, (US, SPORT)) is State.SYN_RECEIVED
    host, iss = syn_received(RFC)
    assert only(host.receive(seg("A", 500, iss + 1000), 0.1)).rule.key == "seq/unacceptable"


def test_syn_received_syn_in_window_resets_on_linux_and_returns_to_listen_silently_by_the_rfc() -> None:
    host, _ = syn_received(LINUX)
    rst = only(host.receive(seg("S", 1100), 0.1))
    assert (rst.segment.flags, rst.segment.ack, rst.rule.key) == ("RA", 1101, "linux/req-syn")
    host, _ = syn_received(RFC)
    assert host.receive(seg("S", 1100), 0.1) == []
    assert host.rules()[-1] == "syn/syn-received-passive"


def test_text_ending_beyond_the_window_is_taken_while_the_receive_queue_is_empty() -> None:
    host, iss = established(LINUX)
    wnd = LINUX.rcv_wnd
    edge = seq_add(1001, wnd - 1)
    held = only(host.receive(seg("PA", edge, iss + 1, b"0123456789"), 1.0))
    assert held.rule.key == "seq/out-of-order"
    host, iss = established(LINUX)
    only(host.receive(seg("PA", 1001, iss + 1, b"abc"), 1.0))  # unread text in the queue
    dropped = only(host.receive(seg("PA", seq_add(1004, wnd - 4), iss + 1, b"0123456789"), 2.0))
    assert dropped.rule.key == "linux/end-beyond-window"
