"""``expect`` with ``repeats: judged``: an expect that waits for the target's own retransmission of a segment we
never acknowledged compares that repeat with its pattern, and without the key a repeat that does not match is still
passed over (as our late ACK's doing).

Scripted on a fake clock, like tests/test_silence_repeats.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.model import ExpectStep
from conformance.core.rfc9293 import DEVIATIONS, LINUX
from conformance.core.rfc9293.reference import play as play_case
from conformance.run.explain import step_row

from .helpers import ISN, PEER_ISN, ROOT, FakeWire, line_of, write_case

T0 = 100.0

#: The handshake's final ACK is never sent: the second expect waits for the SYN-ACK's retransmission and compares
#: its IPv4 identification with the first's (as cases/ip/synack-retransmit-ip-id.yaml).
SYNACK_REPEAT = """\
  - send: {{flags: S, seq: isn}}
  - expect: {{flags: SA, ack: isn+1, len: 0}}
    bind: {{synack_seq: seq, synack_id: ip_id}}
  - expect: {{flags: SA, seq: synack_seq, ack: isn+1, len: 0, ip: {{id: synack_id}}, within: 3.5s}}
{extra}"""


def play(tmp_path: Path, extra: str, repeat_id: int) -> FakeWire:
    """The target answers our SYN with IP ID 0, then retransmits its SYN-ACK 1 s later with `repeat_id`."""
    w = FakeWire(load_case(write_case(tmp_path, SYNACK_REPEAT.format(extra=extra))))
    w.advance(T0)
    for time, ip_id in ((T0 + 0.001, 0), (T0 + 1.001, repeat_id)):
        seg = w.segment(time, "SA", seq=PEER_ISN, ack=ISN + 1)
        w.dialogue.receive(replace(seg, extra={"ip_id": ip_id}))
        w.advance(time)
    w.run_until(T0 + 5.0)
    return w


def test_a_judged_expect_compares_the_repeat(tmp_path: Path) -> None:
    v = play(tmp_path, "    repeats: judged\n", repeat_id=7).verdict()
    assert v.status == "failed"
    assert v.failure is not None and v.failure.kind == "mismatch", v.failure and v.failure.render()
    assert v.failure.message == (
        "the target sent SA seq=5555 ack=1001 len=0 1.000 s after the previous event, "
        "which differs from the expected segment"
    )
    assert [(d.field, d.observed) for d in v.failure.diffs if not d.ok] == [("ip id", "7")]
    assert v.failure.step.endswith(", repeats judged")


def test_a_judged_expect_passes_a_matching_repeat(tmp_path: Path) -> None:
    v = play(tmp_path, "    repeats: judged\n", repeat_id=0).verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert [e.ok for e in v.trace if not e.outgoing] == [True, True]


@pytest.mark.parametrize("extra", ["", "    repeats: forgiven\n"], ids=["default", "forgiven"])
def test_without_judged_repeats_a_differing_repeat_is_passed_over(tmp_path: Path, extra: str) -> None:
    v = play(tmp_path, extra, repeat_id=7).verdict()
    assert v.failure is not None and v.failure.kind == "missing", v.failure and v.failure.render()
    assert any("before our ACK" in e.note for e in v.trace)


def test_the_parser_reads_the_key(tmp_path: Path) -> None:
    judged = load_case(write_case(tmp_path, SYNACK_REPEAT.format(extra="    repeats: judged\n"), id="a"))
    default = load_case(write_case(tmp_path, SYNACK_REPEAT.format(extra=""), id="b"))
    assert [s.judge_repeats for s in judged.steps if isinstance(s, ExpectStep)] == [False, True]
    assert [s.judge_repeats for s in default.steps if isinstance(s, ExpectStep)] == [False, False]
    last = [s for s in judged.steps if isinstance(s, ExpectStep)][-1]
    assert "repeats judged: a repeat no ACK of ours covered is compared, not passed over" in step_row(last)[2]


@pytest.mark.parametrize("value", ["always", "yes"])
def test_a_bad_repeats_value_names_file_line_and_field(tmp_path: Path, value: str) -> None:
    path = write_case(tmp_path, SYNACK_REPEAT.format(extra=f"    repeats: {value}\n"))
    with pytest.raises(CaseFormatError) as info:
        load_case(path)
    where = (info.value.path, info.value.line, info.value.field)
    assert where == (str(path), line_of(path, "repeats:"), "steps[2].repeats")
    assert "forgiven" in str(info.value) and "judged" in str(info.value)


def test_the_shipped_case_compares_the_retransmission_against_the_model() -> None:
    """cases/ip/synack-retransmit-ip-id.yaml against the model: with Linux's IP ID (0 on every SYN-ACK) the repeat
    matches; with a new ID per datagram the note cites MAY-4 and names the repeat it compared (1 s after the first
    SYN-ACK, the initial RTO), not 'nothing came'."""
    case = load_case(ROOT / "cases" / "ip" / "synack-retransmit-ip-id.yaml")
    linux = play_case(case, LINUX).verdict
    assert linux.status == "passed" and not linux.findings, linux.failure and linux.failure.render()
    deviation = next(d for d in DEVIATIONS if d.name == "ip-id-per-datagram")
    v = play_case(case, deviation.apply(LINUX)).verdict
    assert v.status == "passed" and v.failure is None
    [finding] = v.findings
    assert finding.outcome == "info" and finding.failure.kind == "mismatch"
    assert finding.failure.reference is not None and finding.failure.reference.id == "MAY-4"
    assert (
        "the target sent SA" in finding.failure.message
        and "1.000 s after the previous event" in finding.failure.message
    )
    assert [d.field for d in finding.failure.diffs if not d.ok] == ["ip id"]
