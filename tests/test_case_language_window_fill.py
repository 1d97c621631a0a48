"""``assert: {outside: [value, low, high]}`` (a window that is 0 or not silly, MUST-39) and a send's bound
``len: w4`` with ``max_len`` (a window filled from RCV.NXT, or the case ends not checked), on a scripted target."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import LINUX
from conformance.core.rfc9293.profile import RFC
from conformance.core.rfc9293.reference import play
from tests.helpers import ISN, PEER_ISN, FakeWire, line_of

T0 = 100.0
ROOT = Path(__file__).resolve().parent.parent
SWS = ROOT / "cases" / "window" / "receiver-sws.yaml"

HEADER = """\
id: test-case
title: A test case
refs:
  - id: MUST-39
    doc: RFC 9293 §3.8.6.2.2
    level: MUST
    says: "A TCP implementation MUST include a SWS avoidance algorithm in the receiver (MUST-39)."
  - id: EP-5
    doc: RFC 9293 §3.10.7.2
    level: MUST
    says: "LISTEN, SYN arrives: send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>"
steps:
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    bind: {peer_isn: seq, w0: win}
    ref: EP-5
  - send: {flags: A, seq: isn+1, ack: peer_isn+1}
"""

OUTSIDE = HEADER + "  - assert: {outside: [w0, 1, 199]}\n    ref: MUST-39\n"
FILL = (
    HEADER
    + "  - send: {flags: PA, seq: isn+1, len: w0, max_len: 1400}\n"
    + "  - expect: {flags: A, ack: isn+w0+1}\n    ref: MUST-39\n"
)


def play_synack(tmp_path: Path, text: str, window: int) -> FakeWire:
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    w = FakeWire(load_case(path))
    w.advance(T0)
    w.dialogue.receive(w.segment(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1, window=window))
    w.advance(T0 + 0.001)
    return w


def test_a_silly_window_fails_the_outside_assert_citing_its_reference(tmp_path: Path) -> None:
    w = play_synack(tmp_path, OUTSIDE, 30)
    w.run_until(T0 + 2)
    v = w.verdict()
    assert v.status == "failed" and v.failure is not None
    assert v.failure.kind == "assertion"
    assert "w0 = 30, within 1..199" in v.failure.message
    assert v.failure.reference is not None and v.failure.reference.id == "MUST-39"


@pytest.mark.parametrize("window", [0, 200, 250])
def test_a_closed_or_large_enough_window_passes_the_outside_assert(tmp_path: Path, window: int) -> None:
    w = play_synack(tmp_path, OUTSIDE, window)
    w.run_until(T0 + 2)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()


def test_a_bound_len_fills_the_window_from_rcv_nxt(tmp_path: Path) -> None:
    w = play_synack(tmp_path, FILL, 1248)
    [data] = w.sent_with("PA")
    assert (data.seq, len(data.payload)) == (ISN + 1, 1248)
    w.reply(T0 + 0.01, "A", seq=PEER_ISN + 1, ack=ISN + 1 + 1248)
    w.run_until(T0 + 2)
    assert w.verdict().status == "passed"


def test_a_window_larger_than_max_len_ends_the_case_not_checked(tmp_path: Path) -> None:
    w = play_synack(tmp_path, FILL, 3000)
    w.run_until(T0 + 2)
    v = w.verdict()
    assert not w.sent_with("PA")
    assert v.status == "skipped", v.failure and v.failure.render()
    assert "len w0 = 3000 is more than this segment may carry (max_len 1400)" in v.skip_reason


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("len: w0, max_len: 1400", "len: w0", "len: w0", "needs max_len: N"),
        ("len: w0, max_len: 1400", "len: w9, max_len: 1400", "len: w9", "name 'w9' is not bound"),
        ("{flags: A, ack: isn+w0+1}", "{flags: A, len: w0}", "{flags: A, len: w0}", "a bound len (a name) is for send"),
    ],
)
def test_a_bad_bound_len_is_refused_with_its_line(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(FILL.replace(old, new), encoding="utf-8")
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    assert message in str(err.value)
    assert f":{line_of(path, needle)}:" in str(err.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[w0, 199, 1]", "low <= high"),
        ("[w9, 1, 199]", "name 'w9' is not bound"),
        ("[w0, 1]", ""),
        ("[w0, 1, 199], nondecreasing: [w0, w0]", "an assert makes one check"),
    ],
)
def test_a_bad_outside_assert_is_refused_with_its_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(OUTSIDE.replace("[w0, 1, 199]", body), encoding="utf-8")
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    assert message in str(err.value)
    assert f":{line_of(path, '- assert')}:" in str(err.value)


@pytest.mark.parametrize("profile", [LINUX, RFC])
def test_the_sws_case_is_not_failed_when_the_buffer_is_larger_than_asked(tmp_path: Path, profile: object) -> None:
    """SO_RCVBUF is a request: a window the case cannot fill with one segment ends it not checked, never failed."""
    path = tmp_path / "sws.yaml"
    path.write_text(SWS.read_text(encoding="utf-8").replace("SO_RCVBUF: 2048", "SO_RCVBUF: 4096"), encoding="utf-8")
    verdict = play(load_case(path), profile).verdict  # type: ignore[arg-type]
    assert verdict.status is Status.SKIPPED, verdict.failure and verdict.failure.render()
    assert "could not send its segment" in verdict.skip_reason


@pytest.mark.parametrize("profile", [LINUX, RFC])
def test_the_sws_case_passes_on_the_model(profile: object) -> None:
    verdict = play(load_case(SWS), profile).verdict  # type: ignore[arg-type]
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()
