"""Every check cites the rule that defines it, not the step's one ref (issue: a wrong ack cited MUST-40).

One dialogue, scripted on a fake clock: a handshake, 5 octets of data, and the target's ACK of them, whose
every check answers to its own document. Each test breaks one check and asserts the document the failure cites.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case

from .helpers import ISN, PEER_ISN, ROOT, FakeWire

T0 = 100.0

REFS = """\
id: data-ack
title: data is acknowledged at once with ack = seq + len
refs:
  - id: EP-DATA
    doc: RFC 9293 §3.10.7.4
    level: MUST
    says: "ESTABLISHED, segment text: advance RCV.NXT over the data, send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>"
  - id: MUST-40
    doc: RFC 9293 §3.8.6.3
    level: MUST
    says: "the delay in an ACK MUST be less than 0.5 seconds"
  - id: SEG.LEN
    doc: RFC 9293 §3.4
    level: MUST
  - id: WND
    doc: RFC 9293 §3.8.6
    level: SHOULD
  - id: TS
    doc: RFC 7323 §3.2
    level: MUST
  - id: QUIET
    doc: RFC 9293 §3.8.6.3
    level: SHOULD
"""

CASE = (
    REFS
    + """\
steps:
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    bind: {peer_isn: seq}
  - send: {flags: A, seq: isn+1, ack: peer_isn+1}
  - send: {flags: PA, seq: isn+1, ack: peer_isn+1, data: hello}
  - expect: {flags: A, seq: peer_isn+1, ack: isn+6, len: 0, win: 65535, options: {timestamp: null}, within: 500ms}
    ref: {fields: EP-DATA, within: MUST-40, len: SEG.LEN, win: WND, options: TS}
  - silence: 300ms
    ref: {unexpected: QUIET}
"""
)


def dialogue(tmp_path: Path, text: str = CASE) -> FakeWire:
    path = tmp_path / "data-ack.yaml"
    path.write_text(text, encoding="utf-8")
    w = FakeWire(load_case(path))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    return w


def ack(w: FakeWire, time: float, **fields: object) -> None:
    """The target's ACK of our data, with `fields` changed; options default to a timestamp."""
    seg = w.segment(time, "A", seq=PEER_ISN + 1, ack=ISN + 6)
    seg = replace(seg, **({"options": (("timestamp", (1, 2)),)} | fields))  # type: ignore[arg-type]
    w.dialogue.receive(seg)
    w.advance(time)


def cited(w: FakeWire) -> str:
    v = w.verdict()
    assert v.status == "failed" and v.failure is not None, "the case did not fail"
    assert v.failure.reference is not None, v.failure.render()
    return v.failure.reference.id


def test_the_conforming_ack_passes(tmp_path: Path) -> None:
    w = dialogue(tmp_path)
    ack(w, T0 + 0.010)
    w.run_until(T0 + 1.0)
    assert w.verdict().status == "passed", w.verdict().failure
    diffs = {d.field: d.reference.id for d in w.verdict().steps[-2].diffs if d.reference}
    assert diffs == {"flags": "EP-DATA", "seq": "EP-DATA", "ack": "EP-DATA", "len": "SEG.LEN", "win": "WND"} | {
        "option timestamp": "TS"
    }, "the report lists each check with its own document"


@pytest.mark.parametrize(
    ("fields", "document"),
    [
        ({"flags": "AP"}, "EP-DATA"),
        ({"seq": PEER_ISN + 2}, "EP-DATA"),
        ({"ack": ISN + 7}, "EP-DATA"),  # ack = seq + len + 1: the acknowledgment rule, not MUST-40
        ({"window": 1024}, "WND"),
        ({"options": ()}, "TS"),
        ({"payload": b"x"}, "SEG.LEN"),
    ],
    ids=["flags", "seq", "ack", "window", "options", "length"],
)
def test_a_wrong_field_cites_the_document_of_that_field(
    tmp_path: Path, fields: dict[str, object], document: str
) -> None:
    w = dialogue(tmp_path)
    ack(w, T0 + 0.010, **fields)
    assert cited(w) == document


def test_a_late_ack_cites_the_timing_rule(tmp_path: Path) -> None:
    """Acked correctly but 0.7 s late: MUST-40."""
    w = dialogue(tmp_path)
    ack(w, T0 + 0.7)
    assert cited(w) == "MUST-40"


def test_an_early_segment_cites_the_timing_rule(tmp_path: Path) -> None:
    text = CASE.replace("within: 500ms}", "after: 400ms}").replace("within: MUST-40", "after: MUST-40")
    w = dialogue(tmp_path, text)
    ack(w, T0 + 0.010)
    assert cited(w) == "MUST-40"


def test_a_missing_ack_cites_the_rule_that_requires_it(tmp_path: Path) -> None:
    w = dialogue(tmp_path)
    w.run_until(T0 + 2.0)
    assert cited(w) == "EP-DATA"


def test_an_extra_segment_in_a_silence_cites_the_silence_document(tmp_path: Path) -> None:
    w = dialogue(tmp_path)
    ack(w, T0 + 0.010)
    w.dialogue.receive(w.segment(T0 + 0.100, "A", seq=PEER_ISN + 1, ack=ISN + 6, window=512))
    w.advance(T0 + 0.100)
    assert cited(w) == "QUIET"


def test_a_step_ref_alone_still_covers_every_check(tmp_path: Path) -> None:
    text = CASE.replace("ref: {fields: EP-DATA, within: MUST-40, len: SEG.LEN, win: WND, options: TS}", "ref: WND")
    w = dialogue(tmp_path, text)
    ack(w, T0 + 0.010, ack=ISN + 7)
    assert cited(w) == "WND"


def test_a_check_with_no_document_is_flagged_by_the_loader(tmp_path: Path) -> None:
    """Several refs, none named for the 500 ms bound: the loader asks which document it answers to."""
    text = CASE.replace("    ref: {fields: EP-DATA, within: MUST-40, len: SEG.LEN, win: WND, options: TS}\n", "")
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseFormatError) as info:
        load_case(path)
    message = str(info.value)
    assert "steps[4].ref" in message and "timing" in message and "ref: {timing: ID}" in message
    assert f"{path}:{text.splitlines().index('steps:') + 7}:" in message  # the line of the fifth step


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("{bogus: EP-DATA}", "makes no 'bogus' check"),
        ("{ack: NOPE}", "no ref with id 'NOPE'"),
        ("{unexpected: EP-DATA}", "makes no 'unexpected' check"),
    ],
)
def test_bad_check_refs_are_rejected(tmp_path: Path, ref: str, error: str) -> None:
    text = CASE.replace("ref: {fields: EP-DATA, within: MUST-40, len: SEG.LEN, win: WND, options: TS}", f"ref: {ref}")
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseFormatError, match=error):
        load_case(path)


@pytest.mark.parametrize(("ack_value", "delay", "document"), [(ISN + 13, 0.002, "EP-DATA"), (ISN + 12, 0.7, "MUST-40")])
def test_the_shipped_data_ack_case_cites_the_rule_broken(ack_value: int, delay: float, document: str) -> None:
    """cases/data/ack-seq-plus-len.yaml: ack = seq + len + 1 breaks §3.10.7.4; a correct ack 0.7 s late, MUST-40."""
    w = FakeWire(load_case(ROOT / "cases" / "data" / "ack-seq-plus-len.yaml"))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    sent = w.sent_with("PA")
    assert sent, "the data went out"
    w.reply(sent[0].time + delay, "A", seq=PEER_ISN + 1, ack=ack_value)
    v = w.verdict()
    assert v.failure is not None and v.failure.reference is not None
    assert v.failure.reference.id == document
    assert ("§3.10.7.4" if document == "EP-DATA" else "§3.8.6.3") in v.failure.render()
