"""The RFC 9293 model on its own: scripted segments in, segments and the rules that made them out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conformance.core.rfc9293 import LINUX, RFC, Host, ModelProfile, State, acceptable
from conformance.core.rfc9293.tcb import Emitted
from conformance.core.segment import Segment

US, THEM, PORT, SPORT = "198.18.0.1", "198.18.0.2", 7000, 40000


def seg(flags: str, seq: int = 1000, ack: int = 0, data: bytes = b"", sport: int = SPORT) -> Segment:
    return Segment(US, THEM, sport, PORT, seq=seq, ack=ack, flags=flags, payload=data)


def established(profile: ModelProfile = LINUX) -> tuple[Host, int]:
    """A host with a connection from our port SPORT in ESTABLISHED; returns it and the host's ISS."""
    host = Host(THEM, profile)
    host.listen(PORT)
    (synack,) = host.receive(seg("S", 1000), 0.0)
    host.receive(seg("A", 1001, synack.segment.seq + 1), 0.01)
    assert host.status(PORT, (US, SPORT)) is State.ESTABLISHED
    return host, synack.segment.seq


def only(out: list[Emitted]) -> Emitted:
    assert len(out) == 1, out
    return out[0]


@pytest.mark.parametrize(
    ("seq", "length", "wnd", "ok"),
    [
        (100, 0, 0, True),  # len 0, wnd 0: SEG.SEQ = RCV.NXT
        (101, 0, 0, False),
        (150, 0, 100, True),  # len 0, wnd > 0: in the window
        (200, 0, 100, False),  # the right edge is outside
        (99, 0, 100, False),
        (100, 5, 0, False),  # len > 0, wnd 0: never
        (95, 10, 100, True),  # len > 0: the end is in the window
        (90, 10, 100, False),  # ends at RCV.NXT-1
        (199, 10, 100, True),  # starts at the last octet of the window
    ],
)
def test_the_four_cases_of_table_6(seq: int, length: int, wnd: int, ok: bool) -> None:
    assert acceptable(seq, length, 100, wnd) is ok


def test_closed_port_answers_by_the_ack_bit() -> None:
    host = Host(THEM, LINUX)
    syn = only(host.receive(seg("SF", 3000, data=b"x" * 10), 0.0))
    assert (syn.segment.flags, syn.segment.seq, syn.segment.ack) == ("RA", 0, 3012)
    assert syn.rule.ep == "EP-1"
    rst = only(host.receive(seg("A", 2000, 5555), 0.0))
    assert (rst.segment.flags, rst.segment.seq, rst.rule.ep) == ("R", 5555, "EP-2")
    assert host.receive(seg("R", 7000), 0.0) == []
    assert host.rules()[-1] == "closed/rst"


def test_listen_answers_a_syn_and_a_late_ack() -> None:
    host = Host(THEM, LINUX)
    host.listen(PORT)
    synack = only(host.receive(seg("S", 1000), 0.0))
    assert (synack.segment.flags, synack.segment.ack, synack.rule.ep) == ("SA", 1001, "EP-5")
    assert host.status(PORT, (US, SPORT)) is State.SYN_RECEIVED
    rst = only(host.receive(seg("A", 1, 777, sport=SPORT + 1), 0.0))
    assert (rst.segment.flags, rst.segment.seq, rst.rule.key) == ("R", 777, "listen/ack")


def test_synack_backoff_then_the_request_is_dropped() -> None:
    host = Host(THEM, LINUX)
    host.listen(PORT)
    host.receive(seg("S", 1000), 0.0)
    times = []
    while (deadline := host.deadline()) is not None:
        if host.advance(deadline):
            times.append(round(deadline, 6))
    assert times == [1.0, 3.0, 7.0, 15.0, 31.0]
    assert host.rules()[-1] == "timeout/give-up"
    assert host.status(PORT, (US, SPORT)) is State.CLOSED


def test_rst_rules_of_rfc_5961() -> None:
    host, _ = established()
    challenge = only(host.receive(seg("R", 1001 + 100), 1.0))
    assert (challenge.segment.flags, challenge.segment.ack, challenge.rule.key) == ("A", 1001, "rst/challenge")
    assert host.receive(seg("R", 1001 + 100), 1.1) == []  # tcp_invalid_ratelimit
    assert host.rules()[-1] == "seq/ratelimit"
    assert host.receive(seg("R", 1001 + 10**6), 2.0) == []
    assert host.rules()[-1] == "seq/unacceptable-rst"
    assert host.receive(seg("R", 1001), 3.0) == []
    assert host.rules()[-1] == "rst/reset"
    assert host.status(PORT, (US, SPORT)) is State.CLOSED


def test_without_rfc_5961_an_in_window_rst_resets() -> None:
    host, _ = established(replace(RFC, rfc5961=False))
    assert host.receive(seg("R", 1001 + 100), 1.0) == []
    assert host.status(PORT, (US, SPORT)) is State.CLOSED


def test_syn_in_established_gets_a_challenge_ack() -> None:
    host, iss = established()
    ack = only(host.receive(seg("S", 1011), 1.0))
    assert (ack.segment.flags, ack.segment.seq, ack.rule.ep) == ("A", iss + 1, "EP-13")
    # out of the window, the sequence check answers first, with the same ACK (§3.10.7.4 fourth, last bullet)
    ack = only(host.receive(seg("S", 99999), 2.0))
    assert (ack.segment.flags, ack.segment.seq, ack.rule.ep) == ("A", iss + 1, "EP-7")


def test_data_then_fin_then_time_wait_is_not_reached_passively() -> None:
    host, iss = established()
    ack = only(host.receive(seg("PA", 1001, iss + 1, b"hello"), 1.0))
    assert (ack.segment.ack, ack.rule.key) == (1006, "text/accept")
    fin = only(host.receive(seg("FA", 1006, iss + 1), 2.0))
    assert (fin.segment.ack, fin.rule.ep) == (1007, "EP-15")
    assert host.status(PORT, (US, SPORT)) is State.CLOSE_WAIT
    old = only(host.receive(seg("A", 900, iss + 1), 3.0))
    assert (old.segment.ack, old.rule.key) == (1007, "seq/unacceptable")


def test_ack_ahead_of_snd_nxt_is_answered_and_dropped() -> None:
    host, iss = established()
    reply = only(host.receive(seg("PA", 1001, iss + 100000, b"data"), 1.0))
    assert (reply.segment.ack, reply.rule.key) == (1001, "ack/range")


@pytest.mark.parametrize(
    ("profile", "rule"), [(LINUX, "linux/tw-ack"), (replace(RFC, time_wait=60.0), "fin/time-wait")]
)
def test_active_close_time_wait_restarts_and_ends(profile: ModelProfile, rule: str) -> None:
    host, iss = established(profile)
    tcb = host.tcbs[(PORT, US, SPORT)]
    (fin,) = host.close(tcb, 1.0)
    assert fin.segment.flags == "FA" and tcb.state is State.FIN_WAIT_1
    host.receive(seg("A", 1001, iss + 2), 1.1)
    assert tcb.state is State.FIN_WAIT_2
    only(host.receive(seg("FA", 1001, iss + 2), 1.2))
    assert tcb.state is State.TIME_WAIT and tcb.time_wait_deadline == pytest.approx(61.2)
    again = only(host.receive(seg("FA", 1001, iss + 2), 30.0))
    assert again.rule.key == rule and tcb.time_wait_deadline == pytest.approx(90.0)
    host.advance(90.0)
    assert host.status(PORT, (US, SPORT)) is State.CLOSED
    assert host.rules()[-1] == "timeout/time-wait"


def test_rfc_1337_keeps_time_wait() -> None:
    host, iss = established(replace(LINUX, rfc1337=True))
    tcb = host.tcbs[(PORT, US, SPORT)]
    host.close(tcb, 1.0)
    host.receive(seg("FA", 1001, iss + 2), 1.1)
    assert tcb.state is State.TIME_WAIT
    host.receive(seg("R", 1002), 2.0)
    assert host.rules()[-1] == "rst/time-wait-1337" and tcb.state is State.TIME_WAIT


def test_every_decision_cites_a_section() -> None:
    host, _ = established()
    assert all(d.rule.section.startswith(("§", "RFC")) for d in host.decisions)
