"""A results.json read back (:mod:`conformance.run.results_file`) is untrusted: what the tool writes reads back, and
every malformed field is a clear error naming the file, the case and the field, with exit code 2, never a
traceback ("internal error")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.core.loader import discover
from conformance.core.rfc9293.matrix import coordinates
from conformance.reporters import RunInfo, write_results_json
from conformance.run.cli import EXIT_ERROR, EXIT_OK, main
from conformance.run.results_file import CASE_ID, MAX_ID_CHARS, MAX_LINE, read_cases

from .test_reporters import ISN, _case, _run

ROOT = Path(__file__).resolve().parent.parent
SYNACK_ACK = ROOT / "cases" / "handshake" / "synack-ack.yaml"
GONE = object()  # a field to leave out
FAILURE = {"kind": "mismatch", "line": 11, "step": "expect R seq=1 len=0 within 1.000 s"}


def _doc(case: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """A results.json of one failed case, its fields replaced by `case` (GONE: left out)."""
    record = {"id": "closed-ack", "status": "failed", "message": "line 11: ...", "failure": FAILURE}
    record |= {"steps": [{"line": 10}, {"line": 11}], "file": "cases/closed-ack.yaml"}
    record = {k: v for k, v in (record | (case or {})).items() if v is not GONE}
    return {"cases": [record]} | top


def _fail(**failure: Any) -> dict[str, Any]:
    return {"failure": {k: v for k, v in (FAILURE | failure).items() if v is not GONE}}


def test_what_a_run_writes_reads_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    passed, failed = _run(_case(), ISN + 1), _run(_case(), ISN + 2)
    path = tmp_path / "results.json"
    write_results_json([passed, failed], path, RunInfo("9.9.9", 1, ("conformance", "run"), "x", 1.7e9, 1.0))
    cases = read_cases(str(path), "--from x")
    assert [(c.id, c.status) for c in cases] == [("synack-ack", "passed"), ("synack-ack", "failed")]
    assert cases[0].failure is None and cases[1].failure is not None and cases[1].failure.kind == "mismatch"
    assert cases[1].failure.line in cases[1].step_lines
    assert main(["baseline", "--from", str(path)]) == EXIT_OK
    assert "- case: synack-ack\n  check: " in capsys.readouterr().out


def test_every_shipped_and_matrix_case_id_is_one_the_reader_takes() -> None:
    ids = [c.id for c in discover([ROOT / "cases"])] + [c.id for c in coordinates()]
    assert len(ids) > 900 and not [i for i in ids + [f"{i}.ipv6" for i in ids] if not CASE_ID.fullmatch(i)]
    assert max(map(len, ids)) + len(".ipv6") <= MAX_ID_CHARS


MALFORMED = [
    # the reviewer's four: each was a traceback
    (
        _doc(_fail(line="abc")),
        "cases[0] (id closed-ack): failure.line: expected a line number, a whole number from 1 to "
        f'{MAX_LINE}, got text "abc"',
    ),
    (_doc({"id": GONE}), "cases[0]: id: expected a non-empty text of at most 200 characters, got nothing"),
    (_doc({"failure": "boom"}), 'failure: expected null or an object with kind, line and step, got text "boom"'),
    ({"cases": [7]}, "cases[0]: expected an object (a case's record), got a number 7"),
    # the line's bounds and type
    (_doc(_fail(line=0)), "failure.line: expected a line number, a whole number from 1 to"),
    (_doc(_fail(line=MAX_LINE + 1)), "failure.line: expected a line number"),
    (_doc(_fail(line=True)), "failure.line: expected a line number, a whole number from 1 to 1000000, got a boolean"),
    (_doc(_fail(line=11.0)), "failure.line: expected a line number, a whole number from 1 to 1000000, got a number"),
    (_doc(_fail(line=GONE)), "failure.line: expected a line number, a whole number from 1 to 1000000, got nothing"),
    # the other fields of a failure
    (
        _doc(_fail(kind="weird")),
        "failure.kind: expected one of mismatch, timing, missing, unexpected, assertion, state",
    ),
    (_doc(_fail(kind=["mismatch"])), "failure.kind: expected a non-empty text of at most 20 characters, got a list"),
    (_doc(_fail(step=3)), "failure.step: expected a non-empty text of at most 10000 characters, got a number 3"),
    (_doc(_fail(step="x" * 10_001)), "failure.step: expected a non-empty text of at most 10000 characters, got text"),
    # a case's own fields
    (_doc({"id": 7}), "cases[0]: id: expected a non-empty text of at most 200 characters, got a number 7"),
    (_doc({"id": "x" * 201}), "cases[0]: id: expected a non-empty text of at most 200 characters, got text"),
    (_doc({"id": "Closed ack"}), "cases[0]: id: expected a case id (lower case, digits, '.', '_', '-' or '/'), got"),
    (
        _doc({"status": GONE}),
        "(id closed-ack): status: expected a non-empty text of at most 20 characters, got nothing",
    ),
    (_doc({"status": "bogus"}), 'status: expected one of passed, warning, failed, skipped, error, got text "bogus"'),
    (_doc({"message": {"a": 1}}), "message: expected a text of at most 1000000 characters, got an object"),
    (_doc({"file": 7}), "file: expected null or a path of at most 4096 characters, got a number 7"),
    (_doc({"file": "a\0b"}), "file: expected null or a path of at most 4096 characters, got text"),
    (_doc({"steps": "x"}), 'steps: expected a list of steps, got text "x"'),
    (_doc({"steps": [3]}), "steps[0]: expected an object with the step's line, got a number 3"),
    (_doc({"steps": [{"line": 10}, {"line": "a"}]}), "steps[1].line: expected a line number, a whole number from 1"),
    # the document
    (_doc(format_version=2), "format_version: expected 1 (the format this tool reads), got a number 2"),
    (_doc(format_version="1"), 'format_version: expected 1 (the format this tool reads), got text "1"'),
    ([_doc()], "not a results.json (no list of 'cases' at the top)"),
    ({"cases": {"id": "x"}}, "not a results.json (no list of 'cases' at the top)"),
]


@pytest.mark.parametrize(("doc", "message"), MALFORMED)
def test_a_malformed_results_json_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: Any, message: str
) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["baseline", "--from", str(path)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"conformance: error: --from {path}: " in err and message in err, err
    assert "what to do: " in err and "internal error" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [("[" * 100_000 + "]" * 100_000, "nested too deeply to read"), ("{", "not JSON"), ("", "not JSON")],
)
def test_a_file_that_is_no_json_document_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "results.json"
    path.write_text(text, encoding="utf-8")
    assert main(["baseline", "--from", str(path)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert message in err and "internal error" not in err, err


def test_a_multi_check_failure_without_a_case_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_doc({"file": GONE, "steps": [{"line": 11}, {"line": 11}]})), encoding="utf-8")
    assert main(["baseline", "--from", str(path)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "case closed-ack, failing at line 11: the results.json names no case file" in err, err


def test_coverage_reads_its_results_json_the_same_way(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"cases": [{"id": "synack-ack", "status": 7}]}), encoding="utf-8")
    assert main(["coverage", str(SYNACK_ACK), "--results", str(path), "--format", "plain"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"--results {path}: cases[0] (id synack-ack): status: expected a non-empty text" in err, err
    path.write_text(json.dumps({"cases": [{"id": "synack-ack", "status": "passed"}]}), encoding="utf-8")
    assert main(["coverage", str(SYNACK_ACK), "--results", str(path), "--format", "plain"]) == EXIT_OK
