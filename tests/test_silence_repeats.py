"""``silence`` with ``repeats: judged``: a repeat no ACK of ours covered breaks the silence when the dialogue
withholds its ACK on purpose, and is still passed over (as our late ACK's doing) without the key.

Scripted on a fake clock, like tests/test_verdict_truth.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.model import SilenceStep
from conformance.run.explain import step_row

from .helpers import ISN, PEER_ISN, FakeWire, line_of, write_case

T0 = 100.0

#: The handshake's final ACK is withheld: a SYN-ACK repeat is the target's own retransmission.
NO_FINAL_ACK = """\
  - send: {{flags: S, seq: isn}}
  - expect: {{flags: SA, ack: isn+1, len: 0}}
    label: synack
  - silence: 3.5s
{extra}"""


def play_synack_repeat(tmp_path: Path, extra: str) -> FakeWire:
    """The target answers our SYN, then retransmits its SYN-ACK 1 s later (Linux's initial RTO)."""
    w = FakeWire(load_case(write_case(tmp_path, NO_FINAL_ACK.format(extra=extra))))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.target(T0 + 1.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.run_until(T0 + 5.0)
    return w


def test_a_judged_silence_fails_on_a_repeat_we_never_acknowledged(tmp_path: Path) -> None:
    v = play_synack_repeat(tmp_path, "    repeats: judged\n").verdict()
    assert v.status == "failed", "the SYN-ACK repeat is the target's own: repeats: judged must count it"
    assert v.failure is not None and v.failure.kind == "unexpected", v.failure and v.failure.render()
    assert v.failure.message == "the target sent SA seq=5555 ack=1001 len=0 1.000 s into a silence of 3.500 s"
    assert v.failure.step == "silence for 3.500 s, repeats judged"
    assert [e.note for e in v.trace if not e.outgoing] == ["line 10", "line 12: unexpected"]


@pytest.mark.parametrize("extra", ["", "    repeats: forgiven\n"], ids=["default", "forgiven"])
def test_without_judged_repeats_the_repeat_is_still_passed_over(tmp_path: Path, extra: str) -> None:
    v = play_synack_repeat(tmp_path, extra).verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert any("before our ACK" in e.note for e in v.trace)


def test_a_judged_silence_still_passes_when_nothing_comes(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, NO_FINAL_ACK.format(extra="    repeats: judged\n"))))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.run_until(T0 + 5.0)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()


def test_the_parser_reads_the_key(tmp_path: Path) -> None:
    judged = load_case(write_case(tmp_path, NO_FINAL_ACK.format(extra="    repeats: judged\n"), id="a"))
    default = load_case(write_case(tmp_path, NO_FINAL_ACK.format(extra=""), id="b"))
    assert [s.judge_repeats for s in judged.steps if isinstance(s, SilenceStep)] == [True]
    assert [s.judge_repeats for s in default.steps if isinstance(s, SilenceStep)] == [False]
    assert [step_row(s)[1] for s in judged.steps if isinstance(s, SilenceStep)][0].endswith(
        "(repeats judged: not even a repeat no ACK of ours covered)"
    )


@pytest.mark.parametrize("value", ["sometimes", "true"])
def test_a_bad_repeats_value_names_file_line_and_field(tmp_path: Path, value: str) -> None:
    path = write_case(tmp_path, NO_FINAL_ACK.format(extra=f"    repeats: {value}\n"))
    with pytest.raises(CaseFormatError) as info:
        load_case(path)
    err = info.value
    assert err.path == str(path)
    assert err.line == line_of(path, "repeats:")
    assert err.field == "steps[2].repeats"


def test_repeats_is_only_a_silence_key(tmp_path: Path) -> None:
    steps = "  - send: {flags: S, seq: isn}\n    repeats: judged\n"
    with pytest.raises(CaseFormatError) as info:
        load_case(write_case(tmp_path, steps))
    assert "repeats" in str(info.value)
