"""Baselines of known deviations (:mod:`conformance.run.baseline`), offline: loading, judging, settling, writing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from conformance.core.errors import HarnessError
from conformance.core.results import CaseResult
from conformance.run.baseline import KNOWN, Baseline, dump, from_results
from conformance.run.cli import main

ENTRY = "- case: closed-ack\n  check: expect R seq=1 len=0 within 1.000 s\n  why: answers RST,ACK\n"


def result(case: str, status: str, step: str = "", line: int = 11, kind: str = "mismatch") -> CaseResult:
    failure = SimpleNamespace(step=step, line=line, kind=kind) if step else None
    verdict = SimpleNamespace(failure=failure)
    fake = SimpleNamespace(case=SimpleNamespace(id=case), status=status, message="line 11: it differs", verdict=verdict)
    return cast(CaseResult, fake)


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


def test_line_and_kind_name_a_check(tmp_path: Path) -> None:
    b = baseline(tmp_path, "- {case: synack-retransmit, check: line 34 timing, why: late timers}\n")
    r = b.judge(result("synack-retransmit", "failed", "withhold: retransmission 2/3", line=34, kind="timing"))
    assert r.status == "skipped"


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
    timing = {"step": "withhold: retransmission 1/3", "line": 34, "kind": "timing"}
    doc = {
        "cases": [
            _case("closed-ack", "failed", "line 11: ...", mismatch, [10, 11]),
            _case("synack-retransmit", "failed", "line 34: ...", timing, [34, 34, 34]),
            _case("closed-rst", "skipped", f"{KNOWN} (baseline b.yaml: answers RST,ACK): line 11", mismatch, [11]),
            _case("synack-ack", "passed", "", None, [10]),
        ]
    }
    results = tmp_path / "results.json"
    results.write_text(json.dumps(doc))
    entries = from_results(str(results))
    assert [e["check"] for e in entries] == [mismatch["step"], "line 34 timing", mismatch["step"]]
    assert entries[2]["why"] == "answers RST,ACK" and entries[0]["why"].startswith("TODO")
    out = tmp_path / "b.yaml"
    assert main(["baseline", "--from", str(results), "-o", str(out)]) == 0
    assert out.read_text() == dump(entries) and len(Baseline.load(str(out)).entries) == 3
    assert main(["baseline", "--from", str(tmp_path / "none.json")]) == 2
    assert "cannot read it" in capsys.readouterr().err
