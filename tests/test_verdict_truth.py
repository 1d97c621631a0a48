"""No pass without evidence, no failure for what is not the target's: stale segments, a blind capture, repeats.

Scripted on a fake clock; each test names the wrong verdict it guards against.
"""

from __future__ import annotations

from pathlib import Path

from conformance.core.loader import load_case

from .helpers import ISN, PEER_ISN, FakeWire, write_case

T0 = 100.0

HANDSHAKE = """\
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1, len: 0, within: 1s}
    bind: {peer_isn: seq}
"""

DATA_THEN_SILENCE = """\
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    bind: {peer_isn: seq}
  - send: {flags: A, seq: isn+1, ack: peer_isn+1}
  - expect: {flags: PA, seq: peer_isn+1, len: 4}
  - silence: 1s
"""


def test_a_segment_from_before_our_syn_is_not_its_answer(tmp_path: Path) -> None:
    """A segment of an earlier connection on the same 4-tuple, captured before our SYN, was taken as the answer
    ("-2.9 ms after the previous event") and its seq as the target's ISN."""
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE)))
    w.dialogue.receive(w.segment(T0 - 0.0029, "SA", seq=777, ack=ISN + 1))  # before our SYN went out
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert w.dialogue.names["peer_isn"] == PEER_ISN
    assert "before our first segment of this connection" in v.trace[0].note


def test_a_silence_the_capture_did_not_see_is_a_harness_error(tmp_path: Path) -> None:
    """A silence passed when the capture saw nothing at all, our own frames included."""
    w = FakeWire(load_case(write_case(tmp_path, DATA_THEN_SILENCE)))
    w.advance(T0)
    # from here on the capture misses our own segments: our ACK never comes back
    w.dialogue.receive(w.segment(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1))
    w.dialogue.advance(T0 + 0.001)
    w.dialogue.receive(w.segment(T0 + 0.002, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half"))
    w.dialogue.advance(T0 + 0.002)
    w.dialogue.advance(T0 + 2.0)
    v = w.verdict()
    assert v.status == "failed" and v.failure is not None
    assert v.failure.kind == "harness", v.failure.render()
    assert "the wire is blind" in v.failure.message


def test_a_missing_answer_the_capture_could_not_see_is_a_harness_error(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE)))
    w.dialogue.advance(T0)  # our SYN is never captured
    w.dialogue.advance(T0 + 2.0)
    f = w.verdict().failure
    assert f is not None and f.kind == "harness", f and f.render()


def test_repeats_every_5_ms_during_a_silence_are_judged(tmp_path: Path) -> None:
    """A target that resent data every 5 ms (199 times) during a silence passed as "our ACK was late"."""
    w = FakeWire(load_case(write_case(tmp_path, DATA_THEN_SILENCE)))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    t = T0 + 0.002
    w.target(t, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half")
    for _ in range(10):
        t += 0.005
        w.target(t, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half")
    w.advance(t + 0.001)  # the prober was slow: its ACK goes out only now
    w.run_until(T0 + 2.0)
    v = w.verdict()
    assert v.status == "failed", "5 ms repeats are no retransmission timer our late ACK explains"
    assert v.failure is not None and v.failure.kind == "unexpected"


def test_repeats_1_ms_apart_during_an_expect_are_judged(tmp_path: Path) -> None:
    steps = DATA_THEN_SILENCE.replace("  - silence: 1s\n", "  - send: {flags: A, seq: isn+1, ack: peer_isn+5}\n")
    steps += "  - expect: {flags: FA, seq: peer_isn+5}\n"
    w = FakeWire(load_case(write_case(tmp_path, steps)))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    t = T0 + 0.002
    w.target(t, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half")
    for _ in range(5):
        t += 0.001
        w.target(t, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half")
    w.advance(t + 0.0005)
    w.reply(t + 0.01, "FA", seq=PEER_ISN + 5, ack=ISN + 1)
    v = w.verdict()
    assert v.status == "failed" and v.failure is not None and v.failure.kind == "mismatch", v.failure


def test_a_retransmission_after_the_target_s_rto_before_our_ack_is_still_passed_over(tmp_path: Path) -> None:
    """The pass-over stays for what it is for: the target's timer fired (>= 200 ms) before our late ACK."""
    w = FakeWire(load_case(write_case(tmp_path, DATA_THEN_SILENCE)))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.target(T0 + 0.01, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half")
    w.target(T0 + 0.25, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"half")
    w.advance(T0 + 0.26)
    w.run_until(T0 + 2.0)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
