"""Findings of a red-team pass over this session's change, each kept as a regression test."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError, HarnessError
from conformance.core.loader import load_case
from conformance.core.profiles import load_profile
from conformance.core.segment import IcmpError

from .helpers import ISN, OUR_IP, PEER_ISN, ROOT, TARGET_IP, FakeWire, write_case

T0 = 100.0
CASES = ROOT / "cases"
HANDSHAKE = "  - send: {flags: S, seq: isn}\n  - expect: {flags: SA, ack: isn+1}\n    bind: {peer_isn: seq}\n"


@pytest.mark.parametrize(
    ("src", "kind"), [("198.18.0.254", 3), (TARGET_IP, 4)], ids=["a router's unreachable", "source quench"]
)
def test_an_icmp_error_that_is_not_the_target_refusing_the_port_is_only_noted(
    tmp_path: Path, src: str, kind: int
) -> None:
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE)))
    (syn,) = w.advance(T0)
    w.dialogue.receive_icmp(IcmpError(src, OUR_IP, 4, kind, 3 if kind == 3 else 0, syn, T0 + 0.0005))
    w.advance(T0 + 0.0005)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    assert w.verdict().status == "passed", w.verdict().failure


def test_an_assert_over_a_name_never_bound_is_not_checked_not_a_crash(tmp_path: Path) -> None:
    """A warned expect left its name unbound; the assert raised KeyError ('internal error')."""
    steps = (
        "  - send: {flags: S}\n    conn: a\n  - expect: {flags: SA, ack: isn+1}\n    conn: a\n    bind: {x: seq}\n"
        "    ref: S1\n  - assert: {unpredictable: [x, x, x]}\n    ref: M\n"
    )
    extra = "refs:\n  - {id: S1, doc: RFC 9293 §3.4.1, level: SHOULD}\n  - {id: M, doc: RFC 9293 §3.4.1, level: MUST}\n"
    text = write_case(tmp_path, steps).read_text().replace("refs:\n", extra + "  #\n", 1)
    path = tmp_path / "a.yaml"
    path.write_text(text.replace(extra + "  #\n", extra, 1).split("refs:\n", 2)[0] + extra + "steps:\n" + steps)
    w = FakeWire(load_case(path), profile=load_profile("rfc"))
    w.advance(T0)
    w.run_until(T0 + 2)
    v = w.verdict()
    assert v.failure is None and any("never bound" in s.description for s in v.steps), v.steps


def test_bad_checksum_copies_during_a_withhold_are_must_2_not_never_retransmitted() -> None:
    w = FakeWire(load_case(CASES / "handshake" / "synack-retransmit-ci.yaml", CASES), {"tcp_synack_retries": 2})
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    for t in (T0 + 1.001, T0 + 3.001):
        w.dialogue.receive(replace(w.segment(t, "SA", seq=PEER_ISN, ack=ISN + 1), checksum_ok=False))
    w.run_until(T0 + 10)
    f = w.verdict().failure
    assert f is not None and f.reference is not None and f.reference.id == "MUST-2", f and f.render()


def test_a_give_up_rst_long_before_the_schedule_gives_up_fails_the_count() -> None:
    w = FakeWire(load_case(CASES / "handshake" / "synack-retransmit-ci.yaml", CASES), {"tcp_synack_retries": 2})
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.reply(T0 + 1.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.reply(T0 + 3.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.reply(T0 + 3.011, "R", seq=PEER_ISN + 1, ack=0)  # 10 ms after the last: the schedule says 4 s
    f = w.verdict().failure
    assert f is not None and "gave up" in f.message and f.kind == "timing", f and f.render()


def test_a_control_character_in_a_case_file_is_a_case_format_error(tmp_path: Path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"id: x\ntitle: t\x00\nrefs: []\nsteps: []\n")
    with pytest.raises(CaseFormatError, match="a character YAML does not allow"):
        load_case(path)


def test_a_baseline_that_is_not_a_regular_file_is_refused() -> None:
    from conformance.run.baseline import Baseline

    with pytest.raises(HarnessError, match="not a regular file"):
        Baseline.load("/dev/zero")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("  rto_initial: {value: .nan, source: s}\n", "must be finite"),  # read as a case file: NaN is refused
        ("  rto_initial: {value: -1, source: s}\n", "out of range"),
        ("  rto_initial: {value: abc, source: s}\n", "not a number"),
        ("  tcp_synack_retries: {value: 2.5, source: s}\n", "whole number"),
    ],
)
def test_a_profile_value_out_of_range_is_refused(tmp_path: Path, values: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nvalues:\n" + values)
    with pytest.raises(CaseFormatError, match=message):
        load_profile(str(path))
