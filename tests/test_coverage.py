"""``conformance coverage``: which requirement ids the cases check, the verdicts of a run, the JSON and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.core import coverage as cov
from conformance.core.loader import discover
from conformance.run.cli import EXIT_ERROR, EXIT_OK, main

ONE = """\
id: fake-rst
title: a RST to a closed port gets nothing
refs:
  - id: EP-3
    doc: RFC 9293 §3.10.7.1
    level: MUST
    says: "an incoming RST is discarded"
service: closed
steps:
  - send: {flags: R, seq: isn}
  - silence: 1s
"""

TWO = """\
id: fake-delack
title: the ACK of lone data comes within 500 ms
refs:
  - id: EP-DATA
    doc: RFC 9293 §3.10.7.4
    level: MUST
    says: "advance RCV.NXT, send an ACK"
  - id: ACK-DELAY
    doc: RFC 9293 §3.8.6.3, MUST-40
    level: MUST
    says: "the delay MUST be less than 0.5 seconds"
service: listen
steps:
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    bind: {peer_isn: seq}
  - send: {flags: A, seq: isn+1, ack: peer_isn+1}
  - send: {flags: PA, seq: isn+1, ack: peer_isn+1, data: "x"}
  - expect: {flags: A, ack: isn+2, within: 500ms}
    ref: {fields: EP-DATA, within: ACK-DELAY}
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "one.yaml").write_text(ONE, encoding="utf-8")
    (tmp_path / "two.yaml").write_text(TWO, encoding="utf-8")
    return tmp_path


def _results(tmp_path: Path, statuses: dict[str, str]) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"cases": [{"id": k, "status": v} for k, v in statuses.items()]}), encoding="utf-8")
    return path


def test_the_table_has_every_id_with_its_class() -> None:
    reqs = cov.requirements()
    appendix = [r for r in reqs if r.level != "EP"]
    assert len(appendix) == len({r.id for r in appendix}) == 119
    assert [sum(r.klass == k for r in appendix) for k in "WAN"] == [41, 72, 6]
    assert [r.id for r in reqs if r.level == "EP"] == [f"EP-{i}" for i in range(1, 21)]


def test_a_case_checks_the_ids_its_refs_and_its_checks_name(suite: Path) -> None:
    two, one = sorted(discover([suite]), key=lambda c: c.id)
    assert cov.ids_checked(one) == {"EP-3"}  # its ref (a silence checks no checksum)
    # the SYN-ACK's rule (EP-5), the checksum of each expect (MUST-2), the doc of the timing check (MUST-40)
    assert cov.ids_checked(two) == {"EP-5", "MUST-2", "MUST-40"}


def test_a_reference_names_ids_by_its_id_doc_or_text() -> None:
    from conformance.core.model import Reference
    from conformance.core.outcomes import Level

    ref = Reference("RFC6298-5.5", "RFC 9293 §3.8.1 (MUST-19)", Level.MUST, "backoff; see also SHLD-29")
    assert cov.named_ids(ref) == {"MUST-19", "SHLD-29"}
    assert cov.named_ids(Reference("EP-12", "RFC 5961 §3.2", Level.MUST)) == {"EP-12"}


def test_the_verdict_is_the_worst_of_the_cases_in_either_family(suite: Path) -> None:
    cases = discover([suite])
    run = cov.statuses({"cases": [{"id": "fake-rst", "status": "passed"}, {"id": "fake-rst.ipv6", "status": "failed"}]})
    rows = {r.requirement.id: r for r in cov.coverage(cases, run)}
    assert rows["EP-3"].cases == ("fake-rst",) and rows["EP-3"].verdict == "failed"
    assert rows["MUST-40"].verdict == "not run"  # its case did not play
    assert rows["MUST-3"].cases == () and rows["MUST-3"].verdict == "not run"
    w = next(t for t in cov.tallies(list(rows.values())) if t.kind == "W")
    assert (w.covered, w.total, w.passed) == (2, 41, 0)  # MUST-2 and MUST-40, neither played
    ep = next(t for t in cov.tallies(list(rows.values())) if t.kind == "EP")
    assert (ep.covered, ep.total) == (2, 20)  # EP-3 and EP-5


def test_json_file_and_exit_code(suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _results(tmp_path, {"fake-delack": "passed", "fake-delack.ipv6": "warning"})
    out = tmp_path / "cov.json"
    code = main(["coverage", str(suite), "--results", str(results), "--json", str(out), "--format", "plain"])
    assert code == EXIT_OK
    data = json.loads(out.read_text(encoding="utf-8"))
    rows = {r["id"]: r for r in data["requirements"]}
    assert rows["MUST-40"]["cases"] == ["fake-delack"] and rows["MUST-40"]["verdict"] == "warning"
    assert rows["MUST-40"]["class"] == "W"
    assert data["summary"]["W"]["total"] == 41 and data["results"] == str(results)
    lines = capsys.readouterr().out.splitlines()
    assert "MUST-40\tW\tMUST\twarning\t1\tfake-delack" in lines


def test_a_missing_or_broken_results_file_is_a_usage_error(suite: Path, tmp_path: Path) -> None:
    assert main(["coverage", str(suite), "--results", str(tmp_path / "none.json")]) == EXIT_ERROR
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    assert main(["coverage", str(suite), "--results", str(bad)]) == EXIT_ERROR


def test_the_default_results_may_be_missing(suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["coverage", str(suite), "--format", "json"]) == EXIT_OK
