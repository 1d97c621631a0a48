"""``repeats: judged`` judges only what the target sent after our stimulus left: a repeat captured before the step
began (a slow prober still sending while the target's timer fired) is passed over with a note, never reported as
sent a negative time "into a silence".

Scripted on a fake clock, like tests/test_silence_repeats.py, with cases/icmp/port-unreachable-syn-received.yaml.
"""

from __future__ import annotations

from pathlib import Path

from conformance.core.loader import load_case

from .helpers import ISN, PEER_ISN, ROOT, FakeWire, write_case

T0 = 100.0
ICMP_CASE = ROOT / "cases" / "icmp" / "port-unreachable-syn-received.yaml"


def play_icmp(retransmit_at: float, icmp_at: float) -> FakeWire:
    """The target answers our SYN, retransmits its SYN-ACK at `retransmit_at` (Linux's initial RTO is 1 s); the
    prober sends its ICMP error at `icmp_at`."""
    w = FakeWire(load_case(ICMP_CASE))
    w.advance(T0)
    w.target(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    if retransmit_at < icmp_at:
        w.target(T0 + retransmit_at, "SA", seq=PEER_ISN, ack=ISN + 1)
        w.advance(T0 + icmp_at)
    else:
        w.advance(T0 + icmp_at)
        w.target(T0 + retransmit_at, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.run_until(T0 + 6.0)
    return w


def test_a_repeat_before_our_icmp_left_is_passed_over_with_a_note() -> None:
    w = play_icmp(retransmit_at=1.001, icmp_at=1.05)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    notes = [e.note for e in v.trace if not e.outgoing]
    assert (
        notes[1] == "captured 49.0 ms before the step began: the target could not have seen what we sent (not judged)"
    )


def test_a_repeat_after_our_icmp_still_breaks_the_silence() -> None:
    v = play_icmp(retransmit_at=1.001, icmp_at=0.002).verdict()
    assert v.status == "failed" and v.failure is not None
    assert v.failure.message == "the target sent SA seq=5555 ack=1001 len=0 999.0 ms into a silence of 3.500 s"


#: An expect that judges repeats, after a send of ours: what the target sent before that send is no answer to it.
EXPECT_AFTER_SEND = """\
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1, len: 0}
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1, len: 0, win: 1, within: 3.5s}
    repeats: judged
"""


def play_expect(tmp_path: Path, repeat_window: int) -> FakeWire:
    """The SYN-ACK repeat (window `repeat_window`) is captured 49 ms before our second SYN left; the target then
    answers that SYN with a SYN-ACK of window 1."""
    w = FakeWire(load_case(write_case(tmp_path, EXPECT_AFTER_SEND)))
    w.advance(T0)
    w.target(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.dialogue.receive(w.segment(T0 + 1.001, "SA", seq=PEER_ISN, ack=ISN + 1, window=repeat_window))
    w.advance(T0 + 1.05)
    w.dialogue.receive(w.segment(T0 + 1.06, "SA", seq=PEER_ISN, ack=ISN + 1, window=1))
    w.run_until(T0 + 6.0)
    return w


def test_a_judged_expect_passes_over_a_repeat_captured_before_our_send(tmp_path: Path) -> None:
    v = play_expect(tmp_path, repeat_window=7).verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert "before the step began" in [e.note for e in v.trace if not e.outgoing][1]


def test_without_the_rule_the_differing_repeat_would_fail_the_expect(tmp_path: Path) -> None:
    """The control: the same repeat captured after our send is judged, and its window differs."""
    w = FakeWire(load_case(write_case(tmp_path, EXPECT_AFTER_SEND)))
    w.advance(T0)
    w.target(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.advance(T0 + 1.0)
    w.dialogue.receive(w.segment(T0 + 1.001, "SA", seq=PEER_ISN, ack=ISN + 1, window=7))
    w.run_until(T0 + 6.0)
    v = w.verdict()
    assert v.status == "failed" and v.failure is not None and v.failure.kind == "mismatch", v.failure
