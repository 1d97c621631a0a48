"""The dialogue engine on a fake clock: scripted target segments, no sockets, no sleeping.

Every test drives :class:`Dialogue` through :class:`tests.helpers.FakeWire`,
which feeds our own segments back through ``receive()`` as the capture would.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conformance.core.engine import DELIVERY_GRACE, Addressing, Dialogue, Failure
from conformance.core.loader import load_case
from conformance.core.matching import FieldDiff
from conformance.core.model import (
    Reference,
)
from conformance.core.params import resolve
from conformance.core.segment import SEQ_MOD, Segment

from .helpers import ISN, OUR_IP, PEER_ISN, ROOT, SPORT, TARGET_IP, TARGET_PORT, FakeWire, line_of, write_case

T0 = 100.0

HANDSHAKE = """\
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1, len: 0, within: 1s}
    bind: {peer_isn: seq}
"""

WITHHOLD = """\
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    label: synack
    bind: {peer_isn: seq}
  - withhold: final ACK
    retransmits: synack
    schedule: synack
  - send: {flags: A, ack: peer_isn+1}
  - expect: {flags: R, seq: peer_isn+1}
"""

DATA = """\
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    bind: {peer_isn: seq}
  - send: {flags: A}
  - expect: {flags: PA, seq: peer_isn+1, ack: isn+1, data: hello}
    label: banner
  - withhold: ACK of the banner
    retransmits: banner
    schedule: data
    count: 2
"""


def failure_of(w: FakeWire) -> Failure:
    v = w.verdict()
    assert v.status == "failed", "the case passed"
    assert v.failure is not None
    return v.failure


def bad_diffs(f: Failure) -> dict[str, FieldDiff]:
    return {d.field: d for d in f.diffs if not d.ok}


def rsts(segments: list[Segment]) -> list[Segment]:
    return [s for s in segments if "R" in s.flags]


# ---------------------------------------------------------------- the handshake


def test_conforming_synack_passes(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE)))
    out = w.advance(T0)
    assert len(out) == 1
    syn = out[0]
    assert (syn.src, syn.dst, syn.sport, syn.dport) == (OUR_IP, TARGET_IP, SPORT, TARGET_PORT)
    assert (syn.flags, syn.seq, syn.ack, syn.time) == ("S", ISN, 0, T0)
    assert w.dialogue.next_deadline() == pytest.approx(T0 + w.capture_delay + 1.15 + DELIVERY_GRACE)

    out = w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)

    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert [s.status for s in v.steps] == ["passed", "passed"]
    assert w.dialogue.names == {"peer_isn": PEER_ISN}
    assert w.dialogue.conns["main"].rcv_nxt == PEER_ISN + 1
    assert w.dialogue.done and w.dialogue.next_deadline() is None
    # The case is over: the half-open connection is reset at snd_nxt.
    assert [(s.flags, s.seq, s.ack) for s in out] == [("R", ISN + 1, 0)]
    assert v.trace[1].ok is True
    assert v.start == T0
    # Whatever comes after the end is recorded, not judged.
    w.target(T0 + 1.0, "SA", seq=PEER_ISN, ack=ISN + 1)
    assert w.advance(T0 + 1.0) == []
    assert w.verdict().trace[-1].note == "after the end of the case"
    assert w.verdict().status == "passed"


def test_wrong_ack_is_a_mismatch_with_the_field_diff(tmp_path: Path) -> None:
    path = write_case(tmp_path, HANDSHAKE)
    w = FakeWire(load_case(path))
    w.advance(T0)
    w.reply(T0 + 0.002, "SA", seq=PEER_ISN, ack=ISN + 2)

    f = failure_of(w)
    assert f.kind == "mismatch"
    assert f.line == line_of(path, "- expect")
    assert f.time == T0 + 0.002
    ack = bad_diffs(f)["ack"]
    assert ack.expected == f"isn+1 ({ISN + 1})"
    assert ack.observed == f"isn+2 ({ISN + 2})"
    assert set(bad_diffs(f)) == {"ack"}  # flags and len were right and are shown as such
    assert {d.field for d in f.diffs} >= {"flags", "ack", "len"}
    assert f.reference == Reference(
        "EP-5", "RFC 9293 §3.10.7.2", "MUST", "LISTEN, SYN arrives: send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>"
    )
    text = f.render()
    assert text.startswith(f"line {f.line}: expect SA ack=isn+1 len=0 within 1.000 s: ")
    assert f"\n  ack: expected isn+1 ({ISN + 1}), observed isn+2 ({ISN + 2})" in text
    assert "\n  required by RFC 9293 §3.10.7.2 (MUST, EP-5): LISTEN, SYN arrives" in text
    assert w.verdict().trace[1].ok is False


def test_missing_synack_once_the_deadline_passes(tmp_path: Path) -> None:
    path = write_case(tmp_path, HANDSHAKE)
    w = FakeWire(load_case(path))
    w.advance(T0)
    deadline = w.deadline()
    # Counted from the captured SYN: window 1 s + tolerance 150 ms + delivery grace.
    assert deadline == pytest.approx(T0 + w.capture_delay + 1.0 + 0.15 + DELIVERY_GRACE)

    assert w.advance(deadline - 0.01) == []
    assert not w.dialogue.done and w.dialogue.failure is None
    assert w.dialogue.next_deadline() == deadline

    out = w.advance(deadline + 0.001)
    f = failure_of(w)
    assert f.kind == "missing"
    assert f.line == line_of(path, "- expect")
    assert "no segment from the target" in f.message
    assert "required by RFC 9293 §3.10.7.2 (MUST, EP-5)" in f.render()
    assert out == []  # no SYN-ACK came: nothing to reset
    assert w.dialogue.next_deadline() is None


def test_unexpected_extra_segment_while_waiting_is_a_mismatch(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        HANDSHAKE + "  - send: {flags: A}\n  - send: {flags: PA, data: hello}\n"
        "  - expect: {flags: A, seq: peer_isn+1, ack: isn+6}\n",
    )
    w = FakeWire(load_case(path))
    w.advance(T0)
    sent = w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    assert [(s.flags, s.seq, s.ack, s.payload) for s in sent] == [
        ("A", ISN + 1, PEER_ISN + 1, b""),
        ("PA", ISN + 1, PEER_ISN + 1, b"hello"),
    ]
    # A duplicate SYN-ACK arrives where the ACK of our data is expected.
    w.reply(T0 + 0.003, "SA", seq=PEER_ISN, ack=ISN + 1)
    f = failure_of(w)
    assert f.kind == "mismatch"
    assert f.line == line_of(path, "- expect", 2)
    diffs = bad_diffs(f)
    assert diffs["seq"].expected == f"peer_isn+1 ({PEER_ISN + 1})"
    assert diffs["seq"].observed == f"peer_isn ({PEER_ISN})"
    assert diffs["ack"].expected == f"isn+6 ({ISN + 6})"
    assert diffs["ack"].observed == f"isn+1 ({ISN + 1})"
    assert diffs["flags"].observed == "SA"


def test_flags_optional_and_options(tmp_path: Path) -> None:
    steps = '  - send: {flags: S}\n  - expect: {flags: "SAE?", options: {mss: 1460, sackok: null}}\n'
    case = load_case(write_case(tmp_path, steps))
    w = FakeWire(case)
    w.advance(T0)
    synack = replace(w.segment(T0 + 0.001, "SAE"), options=(("mss", 1460), ("sackok", True)))
    w.dialogue.receive(synack)
    w.advance(T0 + 0.001)
    assert w.verdict().status == "passed"

    w = FakeWire(case)
    w.advance(T0)
    w.dialogue.receive(replace(synack, flags="SA", options=(("mss", 536),)))
    w.advance(T0 + 0.001)
    diffs = bad_diffs(failure_of(w))
    assert set(diffs) == {"option mss", "option sackok"}
    assert diffs["option mss"].observed == "536"
    assert diffs["option sackok"].observed == "absent"


def test_a_corrupt_copy_is_not_the_answer_when_the_valid_segment_also_came(tmp_path: Path) -> None:
    """A copy with a bad checksum failed the case as a MUST-2 violation although the valid segment came too."""
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE)))
    w.advance(T0)
    w.dialogue.receive(replace(w.segment(T0 + 0.001, "SA"), checksum_ok=False))
    w.advance(T0 + 0.001)
    assert not w.dialogue.done
    w.reply(T0 + 0.002, "SA")
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert "bad TCP checksum" in v.trace[1].note


def test_a_target_that_only_sends_bad_checksums_fails_must_2(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE)))
    w.advance(T0)
    w.dialogue.receive(replace(w.segment(T0 + 0.001, "SA"), checksum_ok=False))
    w.run_until(T0 + 2)
    f = failure_of(w)
    assert f.reference is not None and f.reference.id == "MUST-2", f.render()
    assert "only segments with a bad TCP checksum came" in f.message


def test_segments_of_other_flows_are_ignored(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE)))
    w.advance(T0)
    w.dialogue.receive(Segment(TARGET_IP, OUR_IP, TARGET_PORT, SPORT + 99, PEER_ISN, ISN + 1, "SA", time=T0))
    w.dialogue.receive(Segment(TARGET_IP, OUR_IP, TARGET_PORT + 1, SPORT, PEER_ISN, ISN + 1, "SA", time=T0))
    assert len(w.verdict().trace) == 1
    w.reply(T0 + 0.001, "SA")
    assert w.verdict().status == "passed"


# ---------------------------------------------------------------- time is the capture's time


def test_timing_counts_from_the_capture_of_our_segment(tmp_path: Path) -> None:
    case = load_case(write_case(tmp_path, "  - send: {flags: S}\n  - expect: {flags: SA, after: 500ms}\n"))
    d = Dialogue(case, resolve({}), Addressing(OUR_IP, TARGET_IP, TARGET_PORT), {"main": SPORT}, {"main": ISN})
    (syn,) = d.advance(T0)
    assert d.trace[0].provisional and d.trace[0].time == T0
    provisional_deadline = d.next_deadline()
    assert provisional_deadline == pytest.approx(T0 + 0.5 + 0.075 + DELIVERY_GRACE)

    d.receive(syn.at(T0 + 0.2))  # the kernel put the SYN on the wire 200 ms later
    assert not d.trace[0].provisional and d.trace[0].time == T0 + 0.2
    assert d.next_deadline() == pytest.approx(provisional_deadline + 0.2)

    # 500 ms after the captured SYN (700 ms after the provisional time): on time.
    d.receive(Segment(TARGET_IP, OUR_IP, TARGET_PORT, SPORT, PEER_ISN, ISN + 1, "SA", time=T0 + 0.7))
    d.advance(T0 + 0.7)
    v = d.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert v.steps[1].timing == "500.0 ms after the previous event"


def test_timing_without_the_capture_would_differ(tmp_path: Path) -> None:
    """Control for the test above: the same SYN-ACK, counted from a SYN captured at once, is late."""
    case = load_case(write_case(tmp_path, "  - send: {flags: S}\n  - expect: {flags: SA, after: 500ms}\n"))
    w = FakeWire(case, capture_delay=0.0)
    w.advance(T0)
    w.reply(T0 + 0.7, "SA")
    f = failure_of(w)
    assert f.kind == "timing" and f.message.startswith("late")


def test_capture_of_a_segment_we_did_not_send_changes_nothing(tmp_path: Path) -> None:
    case = load_case(write_case(tmp_path, HANDSHAKE))
    d = Dialogue(case, resolve({}), Addressing(OUR_IP, TARGET_IP, TARGET_PORT), {"main": SPORT}, {"main": ISN})
    (syn,) = d.advance(T0)
    d.receive(Segment(OUR_IP, TARGET_IP, SPORT, TARGET_PORT, seq=ISN + 7, flags="S", time=T0 + 0.3))
    assert d.trace[0].provisional and d.trace[0].time == T0
    d.receive(syn.at(T0 + 0.001))
    d.receive(syn.at(T0 + 0.5))  # a second copy does not move the first
    assert d.trace[0].time == T0 + 0.001 and len(d.trace) == 1


# ---------------------------------------------------------------- withhold: SYN-ACK retransmissions


def withhold_started(tmp_path: Path) -> tuple[FakeWire, Path, float]:
    """The withhold case up to an accepted SYN-ACK; returns the wire, the file and the SYN-ACK's time."""
    path = write_case(tmp_path, WITHHOLD)
    w = FakeWire(load_case(path), {"tcp_synack_retries": 2})
    w.advance(T0)
    t_sa = T0 + 0.001
    assert w.reply(t_sa, "SA", seq=PEER_ISN, ack=ISN + 1) == []
    assert w.verdict().schedules[0].intervals == (1.0, 2.0)
    assert w.verdict().schedules[0].give_up == 4.0
    return w, path, t_sa


def test_withhold_synack_retransmissions_on_schedule_pass(tmp_path: Path) -> None:
    w, path, t_sa = withhold_started(tmp_path)
    # The engine waits generously (for the first: any plausible initial RTO, 3 s plus tolerance; then 2x each
    # expected gap) and judges each gap when it comes: the first against the initial value, later ones against
    # the schedule's law anchored on it. Every tolerance is widened by the timer granularity (Linux: 4 ms).
    g = 0.004
    assert w.dialogue.next_deadline() == pytest.approx(t_sa + 3.0 + 0.45 + g + DELIVERY_GRACE)
    assert w.reply(t_sa + 1.0, "SA", seq=PEER_ISN, ack=ISN + 1) == []
    assert w.dialogue.next_deadline() == pytest.approx(t_sa + 1.0 + 4.0 + 0.3 + g + DELIVERY_GRACE)
    assert w.reply(t_sa + 3.0, "SA", seq=PEER_ISN, ack=ISN + 1) == []
    # The give-up silence: 4 s after the last retransmission, plus 15 %.
    silence_end = w.deadline()
    assert silence_end == pytest.approx(t_sa + 3.0 + 4.6 + g + DELIVERY_GRACE)
    w.advance(silence_end - 0.1)
    assert w.sent_with("A") == []

    w.run_until(silence_end + 0.01)
    (ack,) = w.sent_with("A")
    assert (ack.seq, ack.ack) == (ISN + 1, PEER_ISN + 1)
    w.reply(ack.time + 0.0007, "R", seq=PEER_ISN + 1, ack=0)

    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert [s.status for s in v.steps] == ["passed"] * 7
    withhold_line = line_of(path, "- withhold")
    assert [s.line for s in v.steps].count(withhold_line) == 3
    assert v.steps[2].timing == "1.000 s after the previous event"
    assert v.steps[3].timing == "2.000 s after the previous event"
    # The target's RST closed the connection: no cleanup RST.
    assert rsts(w.sent) == []


@pytest.mark.parametrize(
    ("gaps", "kind", "word"),
    [
        ((1.0, 3.0), "timing", "late"),  # second one 3 s after the first instead of 2 s
        ((1.0, 1.5), "timing", "early"),
        ((0.5,), "timing", "early"),
        ((1.3,), "timing", "late"),
    ],
)
def test_withhold_retransmission_off_schedule(tmp_path: Path, gaps: tuple[float, ...], kind: str, word: str) -> None:
    w, path, t_sa = withhold_started(tmp_path)
    t = t_sa
    for gap in gaps:
        t += gap
        w.reply(t, "SA", seq=PEER_ISN, ack=ISN + 1)
    f = failure_of(w)
    assert f.kind == kind
    assert f.message.startswith(word)
    assert f.line == line_of(path, "- withhold")
    assert f"retransmission {len(gaps)}/2 of synack" in f.step
    assert f.time == t
    judged = [e for e in w.verdict().trace if not e.outgoing][-1]
    assert judged.ok is False and judged.segment.time == t


def test_withhold_missing_retransmission(tmp_path: Path) -> None:
    w, path, t_sa = withhold_started(tmp_path)
    w.reply(t_sa + 1.0, "SA", seq=PEER_ISN, ack=ISN + 1)
    deadline = w.deadline()
    assert deadline == pytest.approx(t_sa + 1.0 + 2 * 2.0 + 0.3 + 0.004 + DELIVERY_GRACE)
    w.advance(deadline - 0.02)
    assert not w.dialogue.done
    w.run_until(deadline + 0.5)
    f = failure_of(w)
    assert f.kind == "missing"
    assert f.line == line_of(path, "- withhold")
    assert "retransmission 2/2" in f.step


def test_withhold_extra_retransmission_during_the_give_up_silence(tmp_path: Path) -> None:
    w, path, t_sa = withhold_started(tmp_path)
    w.reply(t_sa + 1.0, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.reply(t_sa + 3.0, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.run_until(t_sa + 6.9)
    w.reply(t_sa + 7.0, "SA", seq=PEER_ISN, ack=ISN + 1)  # a third one: tcp_synack_retries is 2
    f = failure_of(w)
    assert f.kind == "unexpected"
    assert f.line == line_of(path, "- withhold")
    assert "beyond the schedule's 2 came 4.000 s after the last one" in f.message
    assert w.sent_with("A") == []


def test_withhold_retransmission_with_another_seq_is_a_mismatch(tmp_path: Path) -> None:
    w, _, t_sa = withhold_started(tmp_path)
    w.reply(t_sa + 1.0, "SA", seq=PEER_ISN + 1, ack=ISN + 1)
    f = failure_of(w)
    assert f.kind == "mismatch"
    seq = bad_diffs(f)["seq"]
    assert seq.expected == f"{PEER_ISN} (as synack)"
    assert seq.observed == str(PEER_ISN + 1)


def test_failure_resets_the_connection(tmp_path: Path) -> None:
    """A failing expect ends the case; the cleanup RST goes out with that very advance()."""
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE)))
    w.advance(T0)
    out = w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 2)
    assert failure_of(w).kind == "mismatch"
    assert [(s.flags, s.time) for s in out] == [("R", T0 + 0.001)]
    assert w.verdict().trace[-1].note.startswith("cleanup")


def test_a_withhold_keeps_watching_after_a_deviation(tmp_path: Path) -> None:
    """A late retransmission fails the case, but the series is watched to its end (every gap is reported) and
    the cleanup RST goes out when the withhold is over."""
    w, _, t_sa = withhold_started(tmp_path)
    w.target(t_sa + 1.0, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.target(t_sa + 4.0, "SA", seq=PEER_ISN, ack=ISN + 1)  # 3 s after the first instead of 2 s
    out = w.advance(t_sa + 4.0)
    assert failure_of(w).kind == "timing" and out == [] and not w.dialogue.done
    w.run_until(t_sa + 4.0 + 4.7)  # the give-up silence
    assert w.dialogue.done
    assert rsts(w.sent) and w.verdict().trace[-1].note.startswith("cleanup")
    (series,) = w.verdict().series
    assert [(p.measured, p.ok) for p in series.points] == [(pytest.approx(1.0), True), (pytest.approx(3.0), False)]
    assert series.gave_up == pytest.approx(4.0 + 4.0)


def test_retransmissions_delivered_together_are_timed_from_each_other(tmp_path: Path) -> None:
    """The runner may hand over several captured segments before it advances."""
    w, _, t_sa = withhold_started(tmp_path)
    w.target(t_sa + 1.0, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.target(t_sa + 3.0, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.advance(t_sa + 3.01)
    assert w.dialogue.failure is None, w.dialogue.failure.render()
    assert [s.timing for s in w.verdict().steps[2:4]] == [
        "1.000 s after the previous event",
        "2.000 s after the previous event",
    ]


# ---------------------------------------------------------------- withhold: data retransmissions


def data_case_until_banner(tmp_path: Path, rtt: float) -> tuple[FakeWire, float]:
    """Handshake whose final ACK is captured `rtt` after the SYN-ACK, then the banner."""
    w = FakeWire(load_case(write_case(tmp_path, DATA, extra="service: banner\n")))
    w.advance(T0)
    t_sa = T0 + 0.010
    w.target(t_sa, "SA", seq=PEER_ISN, ack=ISN + 1)
    (ack,) = w.advance(t_sa, capture_delay=rtt)  # the ACK leaves at once, is captured rtt later
    assert ack.flags == "A" and ack.ack == PEER_ISN + 1
    assert w.dialogue.conns["main"].rtt == pytest.approx(rtt)
    t_banner = t_sa + rtt + 0.001
    w.reply(t_banner, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"hello")
    assert w.dialogue.failure is None
    return w, t_banner


@pytest.mark.parametrize(("rtt", "first"), [(0.002, 0.202), (0.150, 0.450)])
def test_data_retransmissions_follow_the_handshake_rtt(tmp_path: Path, rtt: float, first: float) -> None:
    w, t_banner = data_case_until_banner(tmp_path, rtt)
    schedule = w.verdict().schedules[0]
    assert schedule.name == "data"
    assert schedule.intervals[0] == pytest.approx(first)
    assert f"R = {rtt * 1000:.2f} ms" in schedule.derivation
    w.reply(t_banner + first, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"hello")
    out = w.reply(t_banner + 3 * first, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"hello")
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    # count: 2 and no silence: the case ends with the second retransmission, and resets at snd_nxt.
    assert [(s.flags, s.seq) for s in out] == [("R", ISN + 1)]


def test_data_retransmission_at_rto_min_when_rtt_says_otherwise_is_early(tmp_path: Path) -> None:
    w, t_banner = data_case_until_banner(tmp_path, 0.150)
    w.reply(t_banner + 0.2, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"hello")
    f = failure_of(w)
    assert f.kind == "timing" and f.message.startswith("early")
    assert "schedule data" in f.render()


def test_data_retransmission_with_other_payload_is_a_mismatch(tmp_path: Path) -> None:
    w, t_banner = data_case_until_banner(tmp_path, 0.002)
    w.reply(t_banner + 0.202, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"hellO")
    f = failure_of(w)
    assert f.kind == "mismatch"
    assert "len" in bad_diffs(f)


# ---------------------------------------------------------------- assert unpredictable


def unpredictable_case(tmp_path: Path) -> Path:
    steps = ""
    for c in "abc":
        steps += f"  - send: {{flags: S}}\n    conn: {c}\n"
        steps += f"  - expect: {{flags: SA, ack: isn+1}}\n    conn: {c}\n    bind: {{isn_{c}: seq}}\n"
    return write_case(tmp_path, steps + "  - assert: {unpredictable: [isn_a, isn_b, isn_c]}\n")


def play_three_synacks(path: Path, values: tuple[int, int, int]) -> tuple[FakeWire, list[Segment]]:
    w = FakeWire(load_case(path))
    w.advance(T0)
    out: list[Segment] = []
    for i, (conn, value) in enumerate(zip("abc", values, strict=True)):
        out = w.reply(T0 + 0.001 * (i + 1), "SA", seq=value, conn=conn)
    return w, out


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ((777, 777, 777), "all 3 values are equal (777)"),
        ((1000, 65000, 129000), "the values grow by the same constant 64000 each time"),
        ((SEQ_MOD - 100, 900, 1900), "the values grow by the same constant 1000 each time"),  # wraps
        ((3000, 2000, 1000), "the values grow by the same constant -1000 each time"),
    ],
)
def test_assert_unpredictable_fails(tmp_path: Path, values: tuple[int, int, int], message: str) -> None:
    path = unpredictable_case(tmp_path)
    w, out = play_three_synacks(path, values)
    f = failure_of(w)
    assert f.kind == "assertion"
    assert f.line == line_of(path, "- assert")
    assert message in f.message
    # Each connection got a SYN-ACK: each is reset at its snd_nxt.
    assert sorted((s.sport, s.seq) for s in rsts(out)) == [(w.ports[c], w.isns[c] + 1) for c in "abc"]


@pytest.mark.parametrize("values", [(12345, 987654321, 55555), (1, 2, 4), (SEQ_MOD - 1, 0, 5)])
def test_assert_unpredictable_passes(tmp_path: Path, values: tuple[int, int, int]) -> None:
    w, out = play_three_synacks(unpredictable_case(tmp_path), values)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert v.steps[-1].timing == ", ".join(map(str, values))
    assert len(rsts(out)) == 3


# ---------------------------------------------------------------- cleanup


def test_cleanup_resets_connections_that_got_a_synack_at_snd_nxt(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        HANDSHAKE
        + "  - send: {flags: A}\n  - send: {flags: PA, data: hello}\n  - expect: {flags: A, ack: isn+6}\n"
        + "  - send: {flags: A, seq: isn, ack: 1}\n    conn: probe\n  - silence: 100ms\n    conn: probe\n",
    )
    w = FakeWire(load_case(path))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.reply(T0 + 0.002, "A", seq=PEER_ISN + 1, ack=ISN + 6)
    assert w.dialogue.conns["main"].snd_nxt == ISN + 6
    w.run_until(T0 + 0.2)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    # Only "main" got a SYN-ACK; "probe" holds no state on the target.
    (rst,) = rsts(w.sent)
    assert (rst.sport, rst.flags, rst.seq, rst.ack, rst.window) == (w.ports["main"], "R", ISN + 6, 0, 0)
    assert v.trace[-1].segment == rst and v.trace[-1].note.startswith("cleanup")
    assert not v.trace[-1].provisional  # its capture came back too
    assert w.advance(T0 + 1.0) == []  # only once


def test_no_cleanup_after_we_reset(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE + "  - send: {flags: R}\n")))
    w.advance(T0)
    out = w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    assert [(s.flags, s.seq) for s in out] == [("R", ISN + 1)]
    assert w.verdict().trace[-1].note == f"line {w.dialogue.case.steps[-1].line}"


def test_send_before_anything_was_received(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: A}\n")
    w = FakeWire(load_case(path))
    assert w.advance(T0) == []
    f = failure_of(w)
    assert f.line == line_of(path, "- send")
    assert "rcv_nxt is not known yet" in f.message


# ---------------------------------------------------------------- the self-test cases


SELFTEST = ROOT / "tests" / "cases" / "selftest"


@pytest.mark.skipif(not SELFTEST.is_dir(), reason="no self-test cases")
def test_selftest_cases_fail_against_a_conforming_target() -> None:
    for path in sorted(SELFTEST.glob("*.yaml")):
        case = load_case(path, SELFTEST.parent)
        if case.needs_agent:  # played against a real agent in the integration tests
            continue
        w = FakeWire(case, {"tcp_synack_retries": 2})
        w.advance(T0)
        w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
        w.reply(T0 + 1.001, "SA", seq=PEER_ISN, ack=ISN + 1)
        w.run_until(T0 + 10.0)
        f = failure_of(w)
        if case.expect_failure is not None:
            assert case.expect_failure in f.render(), path


# ---------------------------------------------------------------- regressions of bugs found and fixed


def test_segment_after_the_silence_is_not_in_it(tmp_path: Path) -> None:
    steps = "  - send: {flags: S}\n  - silence: 1s\n  - expect: {flags: SA, within: 2s}\n"
    w = FakeWire(load_case(write_case(tmp_path, steps)))
    w.advance(T0)
    w.target(T0 + 1.2, "SA")  # 200 ms after the silence; the runner is late to advance
    w.advance(T0 + 1.3)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()


def test_segment_inside_the_silence_delivered_late_breaks_it(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, "  - send: {flags: S}\n  - silence: 1s\n  - send: {flags: R}\n")))
    w.advance(T0)
    w.advance(T0 + 1.0 + w.capture_delay + 0.001)  # the runner wakes at the silence's deadline
    w.target(T0 + 0.99, "SA")  # sent inside the silence, its capture reaches us a little later
    w.advance(T0 + 1.02)
    f = failure_of(w)
    assert f.kind == "unexpected"


def test_expect_does_not_take_another_connections_segment(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        "  - send: {flags: S}\n    conn: a\n  - expect: {flags: SA, ack: isn+1}\n    conn: a\n"
        "  - send: {flags: S}\n    conn: b\n  - expect: {flags: SA, ack: isn+1}\n    conn: b\n"
        "    bind: {peer_b: seq}\n",
    )
    w = FakeWire(load_case(path))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, conn="a")
    w.reply(T0 + 0.002, "SA", seq=PEER_ISN, conn="a")  # a's SYN-ACK again, while b's is expected
    w.reply(T0 + 0.003, "SA", seq=777, conn="b")
    v = w.verdict()
    assert v.status == "failed" or w.dialogue.names["peer_b"] == 777


@pytest.mark.parametrize(("time", "ack"), [(T0 + 0.001, ISN + 2), (T0 + 1.5, ISN + 1)], ids=["mismatch", "late"])
def test_failed_synack_still_gets_a_cleanup_rst(tmp_path: Path, time: float, ack: int) -> None:
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE)))
    w.advance(T0)
    out = w.reply(time, "SA", seq=PEER_ISN, ack=ack)
    assert w.verdict().status == "failed"
    # the RST the target accepts: its RCV.NXT, the ack of its segment (RFC 5961 §3.2)
    assert [(s.flags, s.seq) for s in rsts(out)] == [("R", ack)]


def test_cleanup_rst_uses_the_targets_ack_when_it_dropped_our_data(tmp_path: Path) -> None:
    """Our data never reached the target (its ACK stays at isn+1): a RST at our snd_nxt (isn+6) would be in its
    window but not at RCV.NXT, which gets a challenge ACK and leaves the connection on the target (RFC 5961 §3.2).
    The cleanup RST uses the target's last ack, and a challenge ACK after it is said in the trace."""
    path = write_case(
        tmp_path,
        HANDSHAKE + "  - send: {flags: A}\n  - send: {flags: PA, data: hello}\n  - expect: {flags: A, ack: isn+6}\n",
    )
    w = FakeWire(load_case(path))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    out = w.reply(T0 + 0.002, "A", seq=PEER_ISN + 1, ack=ISN + 1)  # a duplicate ACK: the data was lost
    assert w.verdict().status == "failed"
    assert w.dialogue.conns["main"].snd_nxt == ISN + 6
    assert [(s.flags, s.seq) for s in rsts(out)] == [("R", ISN + 1)]
    w.reply(T0 + 0.003, "A", seq=PEER_ISN + 1, ack=ISN + 1)
    assert "did not take our cleanup RST" in w.verdict().trace[-1].note


def test_expect_on_unknown_rcv_nxt_fails_the_case(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, "  - send: {flags: S}\n  - expect: {flags: R, seq: rcv_nxt}\n")))
    w.advance(T0)
    w.reply(T0 + 0.001, "RA", seq=0, ack=ISN + 1)
    assert w.verdict().status == "failed"


# ---------------------------------------------------------------- our own slowness


SLOW_ACK = (
    "  - send: {flags: S, seq: isn}\n"
    "  - expect: {flags: SA, ack: isn+1}\n    bind: {peer_isn: seq}\n"
    "  - send: {flags: A, seq: isn+1, ack: peer_isn+1}\n"
    "  - expect: {flags: PA, seq: peer_isn+1, len: 4}\n"
    "  - send: {flags: A, seq: isn+1, ack: peer_isn+5}\n"
    "  - expect: {flags: FA, seq: peer_isn+5}\n"
)


def test_a_retransmission_our_late_ack_caused_is_not_judged(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, SLOW_ACK)))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.target(T0 + 0.01, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half")
    w.target(T0 + 0.30, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half")  # its RTO fired before our ACK
    w.advance(T0 + 0.31)  # the prober was slow: our ACK goes out only now
    w.reply(T0 + 0.32, "FA", seq=PEER_ISN + 5, ack=ISN + 1)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert any("before our ACK" in e.note for e in v.trace)


def test_a_retransmission_after_our_ack_is_judged(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, SLOW_ACK)))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.reply(T0 + 0.01, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half")  # we ACK at once
    w.reply(T0 + 0.30, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half")  # a spurious retransmission
    f = failure_of(w)
    assert f.kind == "mismatch" and "flags" in {d.field for d in f.diffs if not d.ok}
