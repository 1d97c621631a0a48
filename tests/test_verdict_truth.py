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


def play_isns(values: list[int]) -> FakeWire:
    from .helpers import ROOT

    w = FakeWire(load_case(ROOT / "cases" / "isn" / "unpredictable.yaml", ROOT / "cases"))
    w.advance(T0)
    for i, value in enumerate(values):
        w.reply(T0 + 0.001 * (i + 1), "SA", seq=value, conn=f"c{i + 1}")
        w.advance(T0 + 0.001 * (i + 1))
    return w


def test_equal_isns_fail_must_8() -> None:
    """Five equal ISNs (every SYN-ACK seq = 1000) only gave a SHOULD warning (SHLD-1)."""
    v = play_isns([1000] * 5).verdict()
    assert v.status == "failed" and v.failure is not None and v.failure.reference is not None
    assert v.failure.reference.id == "MUST-8", v.failure.render()


def test_a_constant_isn_increment_is_the_shld_1_finding() -> None:
    v = play_isns([1000, 2000, 3000, 4000, 5000]).verdict()
    assert v.failure is not None and v.failure.reference is not None
    assert v.failure.reference.id == "SHLD-1" and v.failure.reference.level == "SHOULD"


def test_a_self_test_passes_only_on_its_text_in_the_failure_itself() -> None:
    """Self-tests passed when the expected text was in a warning or note, not in the failure."""
    from conformance.core.matching import FieldDiff
    from conformance.core.model import Reference
    from conformance.core.outcomes import FailureKind, Outcome, Status
    from conformance.core.results import self_test
    from conformance.core.verdict import Failure, Finding, Verdict

    should = Reference("SHLD-1", "RFC 9293 §3.4.1", "SHOULD")  # type: ignore[arg-type]
    note = Finding(Failure(3, "assert", FailureKind.ASSERTION, "constant increment", (), should), Outcome.WARN)
    warned = Verdict(Status.WARNING, None, [], [], findings=[note])
    assert self_test("constant increment", warned, "warning: constant increment")[0] == "failed"
    wrong = Failure(5, "expect", FailureKind.MISMATCH, "ack differs", (FieldDiff("ack", "1", "2", False),))
    failed = Verdict(Status.FAILED, wrong, [], [])
    assert self_test("ack differs", failed, wrong.render())[0] == "passed"
    assert self_test("checksum", failed, wrong.render() + "\nnote: checksum")[0] == "failed"


NOT_INFERABLE = """\
id: close-wait-black-box
title: t
refs:
  - {id: MAIN, doc: RFC 9293 §3.10.7.4, level: MUST}
  - {id: OTHER, doc: RFC 9293 §3.10.7.2, level: MUST}
steps:
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    bind: {peer_isn: seq}
    ref: OTHER
  - state: CLOSE-WAIT
    ref: MAIN
"""


def black_box(path: Path) -> FakeWire:
    w = FakeWire(load_case(path))
    w.dialogue.white_box = False
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.run_until(T0 + 1)
    return w


def test_a_case_whose_main_checks_could_not_be_made_is_skipped_not_passed(tmp_path: Path) -> None:
    """Black-box states the tool cannot infer were skipped and the case passed."""
    path = tmp_path / "cw.yaml"
    path.write_text(NOT_INFERABLE, encoding="utf-8")
    v = black_box(path).verdict()
    assert v.status == "skipped", [(s.description, s.status) for s in v.steps]
    assert "no check of MAIN" in v.skip_reason and "not checked" in v.skip_reason
    # the same case whose main reference is the handshake's: that was checked, the case passes (with the note)
    path.write_text(
        NOT_INFERABLE.replace("ref: OTHER", "ref: X").replace("ref: MAIN", "ref: OTHER").replace("ref: X", "ref: MAIN"),
        encoding="utf-8",
    )
    v = black_box(path).verdict()
    assert v.status == "passed" and any(s.status == "skipped" for s in v.steps)


TIME_WAIT_2S = """\
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    bind: {peer_isn: seq}
  - send: {flags: A, seq: isn+1, ack: peer_isn+1}
  - send: {flags: FA, seq: isn+1, ack: peer_isn+1}
  - state: TIME-WAIT
    lasts: 2s
"""


def scripted_time_wait(tmp_path: Path, closes_after: float) -> FakeWire:
    """A black-box target in TIME-WAIT from T0 that frees the 4-tuple `closes_after` seconds later: a FIN probe
    gets an ACK before, a RST after (an ACK probe gets a RST after)."""
    w = FakeWire(load_case(write_case(tmp_path, TIME_WAIT_2S)))
    w.dialogue.white_box = False
    out = w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    closed_at = T0 + 0.01 + closes_after
    answered = 3  # our SYN, ACK and FIN: the probes come after them
    while not w.dialogue.done and w.now < T0 + 20:
        if len(w.sent) > answered:
            probe = w.sent[answered]
            answered += 1
            if "R" in probe.flags:
                continue
            t = max(probe.time, w.now) + 0.001
            if t < closed_at:
                if "F" in probe.flags:
                    w.reply(t, "A", seq=PEER_ISN + 1, ack=ISN + 2)
                continue
            w.reply(t, "R", seq=probe.ack, ack=0)
            continue
        w.advance(w.deadline() + 0.001)
    _ = out
    return w


def test_a_black_box_time_wait_that_ends_early_fails_its_lower_bound(tmp_path: Path) -> None:
    """Black box, `lasts:` checked only the upper bound: a TIME-WAIT of 1 s against an expected 60 s passed."""
    v = scripted_time_wait(tmp_path, closes_after=0.5).verdict()
    assert v.status == "failed", [(s.description, s.status) for s in v.steps]
    assert v.failure is not None and "still" in v.failure.step, v.failure.render()


def test_a_black_box_time_wait_of_the_right_length_passes(tmp_path: Path) -> None:
    v = scripted_time_wait(tmp_path, closes_after=2.0).verdict()
    assert v.status == "passed", v.failure and v.failure.render()


def test_a_synack_with_options_the_syn_did_not_offer_fails() -> None:
    """An option-less SYN answered with SACK-permitted, window scale and timestamps passed synack-ack."""
    from dataclasses import replace

    from .helpers import ROOT

    w = FakeWire(load_case(ROOT / "cases" / "options" / "synack-unasked.yaml", ROOT / "cases"))
    w.advance(T0)
    opts = (("mss", 1460), ("sackok", b""), ("timestamp", (1, 0)), ("wscale", 7))
    w.dialogue.receive(replace(w.segment(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1), options=opts))
    w.advance(T0 + 0.001)
    f = w.verdict().failure
    assert f is not None and f.reference is not None and f.reference.doc == "RFC 7323 §2.2, §3.2", f
    assert "option wscale" in f.render() and "wscale absent" in f.step


def test_a_window_scale_option_on_a_non_syn_segment_fails() -> None:
    from dataclasses import replace

    from .helpers import ROOT

    w = FakeWire(load_case(ROOT / "cases" / "options" / "mss-only-on-syn.yaml", ROOT / "cases"))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.reply(T0 + 0.002, "A", seq=PEER_ISN + 1, ack=ISN + 6)
    bad = replace(w.segment(T0 + 0.003, "A", seq=PEER_ISN + 1, ack=ISN + 11), options=(("wscale", 7),))
    w.dialogue.receive(bad)
    w.advance(T0 + 0.003)
    f = w.verdict().failure
    assert f is not None and f.reference is not None and f.reference.id == "RFC7323-2.2", f


def test_checks_not_made_are_a_junit_property_and_in_the_summary(tmp_path: Path) -> None:
    import io

    from conformance.core.results import CaseResult
    from conformance.reporters.junit import case_properties
    from conformance.reporters.terminal import TerminalReporter

    path = tmp_path / "cw.yaml"
    path.write_text(NOT_INFERABLE.replace("ref: MAIN", "ref: OTHER").replace("refs:\n", "refs:\n", 1), encoding="utf-8")
    w = black_box(path)
    v = w.verdict()
    result = CaseResult(w.dialogue.case, str(v.status), "", 1.0, None, v)
    props = dict(case_properties(result))
    assert props["not_checked"] == "1" and "not checked" in props["not_checked:1"]
    out = io.StringIO()
    TerminalReporter(file=out).summary([result], 1.0)
    assert "1 check not made (not checked)" in out.getvalue()


def test_an_icmp_answer_to_a_rst_fails_the_discard_rule() -> None:
    """A stack that answers a RST with ICMP passed closed-rst: RFC 9293 §3.10.7.1 says the RST is discarded."""
    from conformance.core.segment import IcmpError

    from .helpers import OUR_IP, ROOT, TARGET_IP

    w = FakeWire(load_case(ROOT / "cases" / "closed" / "rst.yaml", ROOT / "cases"))
    (rst,) = w.advance(T0)
    w.dialogue.receive_icmp(IcmpError(TARGET_IP, OUR_IP, 4, 3, 3, rst, T0 + 0.001))
    w.advance(T0 + 0.001)
    f = w.verdict().failure
    assert f is not None and f.kind == "unexpected", f
    assert "ICMP port unreachable where nothing may come" in f.message
    assert f.reference is not None and f.reference.id == "EP-3"
