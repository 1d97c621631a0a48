"""Baselines of known deviations (:mod:`conformance.run.baseline`), offline: loading, judging, settling, writing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from conformance.core.errors import HarnessError
from conformance.core.loader import discover, load_case
from conformance.core.model import Case
from conformance.core.results import CaseResult
from conformance.run.baseline import KNOWN, Baseline, dump, from_results
from conformance.run.cli import EXIT_ERROR, main

ROOT = Path(__file__).resolve().parent.parent
SYNACK_RETRANSMIT = ROOT / "cases" / "handshake" / "synack-retransmit.yaml"
#: The line of that case's one withhold step.
WITHHOLD_LINE = 38

ENTRY = "- case: closed-ack\n  check: expect R seq=1 len=0 within 1.000 s\n  why: answers RST,ACK\n"


def result(case: str | Case, status: str, step: str = "", line: int = 11, kind: str = "mismatch") -> CaseResult:
    failure = SimpleNamespace(step=step, line=line, kind=kind) if step else None
    verdict = SimpleNamespace(failure=failure)
    played = SimpleNamespace(id=case, steps=()) if isinstance(case, str) else case
    fake = SimpleNamespace(case=played, status=status, message="line 11: it differs", verdict=verdict)
    return cast(CaseResult, fake)


def late_retransmission(case: Case, line: int = WITHHOLD_LINE, kind: str = "timing") -> CaseResult:
    return result(case, "failed", "withhold: retransmission 2/3", line=line, kind=kind)


def baseline(tmp_path: Path, text: str = ENTRY, today: dt.date | None = None) -> Baseline:
    path = tmp_path / "b.yaml"
    path.write_text(text)
    return Baseline.load(str(path), today)


def test_a_known_deviation_is_a_skip_with_its_reason(tmp_path: Path) -> None:
    b = baseline(tmp_path)
    r = b.judge(result("closed-ack", "failed", "expect R seq=1 len=0 within 1.000 s"))
    assert r.status == "skipped" and r.message.startswith(f"{KNOWN} (baseline {b.path}: answers RST,ACK): line 11")
    assert b.settle([r]).known == b.entries


def test_a_new_deviation_still_fails(tmp_path: Path) -> None:
    b = baseline(tmp_path)
    other_step = b.judge(result("closed-ack", "failed", "expect R seq=2 len=0 within 1.000 s"))
    other_case = b.judge(result("closed-rst", "failed", "expect R seq=1 len=0 within 1.000 s"))
    assert other_step.status == other_case.status == "failed"
    assert b.settle([other_step]).unseen[0][1] == "its case failed at another check first"


def test_a_step_and_its_ordinal_with_the_kind_name_a_check(tmp_path: Path) -> None:
    case = load_case(SYNACK_RETRANSMIT)
    assert case.steps[2].line == WITHHOLD_LINE  # the case's first (and only) withhold step
    b = baseline(tmp_path, "- {case: synack-retransmit, check: withhold 1 timing, why: late timers}\n")
    assert b.judge(late_retransmission(case)).status == "skipped"
    assert b.judge(late_retransmission(case, kind="mismatch")).status == "failed"  # another kind of failure
    assert b.judge(late_retransmission(case, line=WITHHOLD_LINE - 3)).status == "failed"  # another step
    other = baseline(tmp_path, "- {case: synack-retransmit, check: expect 1 timing, why: late timers}\n")
    assert other.judge(late_retransmission(case)).status == "failed"


def test_the_key_survives_an_edit_above_the_step_and_a_line_key_is_refused(tmp_path: Path) -> None:
    edited = tmp_path / "synack-retransmit.yaml"
    edited.write_text("# two lines of comment\n# above every step\n" + SYNACK_RETRANSMIT.read_text())
    case = load_case(edited)
    b = baseline(tmp_path, "- {case: synack-retransmit, check: withhold 1 timing, why: late timers}\n")
    b.check_keys([case])
    assert b.judge(late_retransmission(case, line=WITHHOLD_LINE + 2)).status == "skipped"
    by_line = baseline(tmp_path, f"- {{case: synack-retransmit, check: line {WITHHOLD_LINE} timing, why: late}}\n")
    assert by_line.judge(late_retransmission(case, line=WITHHOLD_LINE)).status == "failed"  # never by line
    with pytest.raises(HarnessError) as err:
        by_line.check_keys([case])
    message = str(err.value)
    assert "entry 1 (synack-retransmit)" in message and "names a step by its line" in message
    assert f"no single step begins on line {WITHHOLD_LINE} now" in message  # line 38 now holds the expect step's label:
    with pytest.raises(HarnessError, match="write 'check: withhold 1 timing'"):
        baseline(tmp_path, f"- {{case: x, check: line {WITHHOLD_LINE + 2} timing, why: y}}\n").check_keys(
            [dataclasses.replace(case, id="x")]
        )


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (
            "withhold 2 timing",
            "'withhold 2 timing' names no step of the case: its withhold steps are withhold 1 (line 38)",
        ),
        ("state 1 state", "its state steps are none"),
        ("withhold 0 timing", "names no step"),
        ("withhold 1 timng", "'timng' is not a kind of failure (one of mismatch, timing,"),
    ],
)
def test_a_stale_key_is_refused_before_anything_is_played(tmp_path: Path, check: str, message: str) -> None:
    case = load_case(SYNACK_RETRANSMIT)
    for case_id in ("synack-retransmit", "synack-retransmit.ipv6"):
        b = baseline(tmp_path, f"- {{case: {case_id}, check: {check}, why: late timers}}\n")
        with pytest.raises(HarnessError, match=re.escape(message)):
            b.check_keys([case])
        b.check_keys([dataclasses.replace(case, id="another-case")])  # not in this run: left to settle()


def test_the_run_refuses_a_stale_key_with_its_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "b.yaml"
    stale.write_text("- {case: synack-retransmit, check: line 38 timing, why: late timers}\n")
    argv = ["run", str(SYNACK_RETRANSMIT), "--baseline", str(stale), "--reports", str(tmp_path / "r")]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"--baseline {stale}: entry 1 (synack-retransmit): check 'line 38 timing' names a step by its line" in err
    assert not (tmp_path / "r").exists()  # refused before anything was played


def test_the_pytcp_baseline_names_steps_the_shipped_cases_have() -> None:
    b = Baseline.load(str(ROOT / "tests" / "baselines" / "pytcp.yaml"))
    b.check_keys(discover([ROOT / "cases"]))
    assert any(e.check == "withhold 1 timing" for e in b.entries)


def test_a_fixed_deviation_is_said_and_fails_under_strict(tmp_path: Path) -> None:
    b = baseline(tmp_path)
    judged = b.settle([b.judge(result("closed-ack", "passed"))])
    assert judged.fixed == b.entries
    assert "  fixed: remove it from the baseline: closed-ack: expect R seq=1 len=0 within 1.000 s" in b.lines()


def test_an_expired_entry_names_nothing(tmp_path: Path) -> None:
    text = ENTRY + "  until: 2020-01-31\n"
    b = baseline(tmp_path, text, today=dt.date(2020, 2, 1))
    r = b.judge(result("closed-ack", "failed", "expect R seq=1 len=0 within 1.000 s"))
    assert r.status == "failed" and b.settle([r]).expired == b.entries
    assert baseline(tmp_path, text, today=dt.date(2020, 1, 31)).judge(r).status == "skipped"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("case: x\n", "expected a list of entries"),
        ("- {case: x, check: y}\n", "'why' must be a non-empty text"),
        ("- {case: x, check: y, why: z, when: 1}\n", "unknown field 'when'"),
        ("- {case: x, check: y, why: z, until: soon}\n", "until 'soon' is not a date"),
        ("- [\n", "not YAML"),
    ],
)
def test_a_broken_baseline_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        baseline(tmp_path, text)


def _case(case_id: str, status: str, message: str, failure: dict[str, Any] | None, lines: list[int]) -> dict[str, Any]:
    return {
        "id": case_id,
        "status": status,
        "message": message,
        "failure": failure,
        "steps": [{"line": n} for n in lines],
    }


def test_baseline_command_writes_the_deviations_of_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mismatch = {"step": "expect R seq=1 len=0 within 1.000 s", "line": 11, "kind": "mismatch"}
    timing = {"step": "withhold: retransmission 1/3", "line": WITHHOLD_LINE, "kind": "timing"}
    retransmits = _case("synack-retransmit", "failed", "line 38: ...", timing, [WITHHOLD_LINE] * 3)
    doc = {
        "cases": [
            _case("closed-ack", "failed", "line 11: ...", mismatch, [10, 11]),
            {**retransmits, "file": str(SYNACK_RETRANSMIT)},
            _case("closed-rst", "skipped", f"{KNOWN} (baseline b.yaml: answers RST,ACK): line 11", mismatch, [11]),
            _case("synack-ack", "passed", "", None, [10]),
        ]
    }
    results = tmp_path / "results.json"
    results.write_text(json.dumps(doc))
    entries = from_results(str(results))
    assert [e["check"] for e in entries] == [mismatch["step"], "withhold 1 timing", mismatch["step"]]
    assert entries[2]["why"] == "answers RST,ACK" and entries[0]["why"].startswith("TODO")
    out = tmp_path / "b.yaml"
    assert main(["baseline", "--from", str(results), "-o", str(out)]) == 0
    assert out.read_text() == dump(entries) and len(Baseline.load(str(out)).entries) == 3
    assert main(["baseline", "--from", str(tmp_path / "none.json")]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_the_baseline_command_says_when_it_cannot_name_a_step(tmp_path: Path) -> None:
    timing = {"step": "withhold: retransmission 1/3", "line": WITHHOLD_LINE, "kind": "timing"}
    retransmits = _case("synack-retransmit", "failed", "line 38: ...", timing, [WITHHOLD_LINE] * 3)
    results = tmp_path / "results.json"
    for file, message in [
        (tmp_path / "gone.yaml", "cannot read its case file"),
        (tmp_path / "edited.yaml", "has no single step on that line now"),
    ]:
        (tmp_path / "edited.yaml").write_text("# a comment\n" + SYNACK_RETRANSMIT.read_text())
        results.write_text(json.dumps({"cases": [{**retransmits, "file": str(file)}]}))
        with pytest.raises(HarnessError, match=message):
            from_results(str(results))
