"""The HTML report's "Requirement coverage" section, offline: results of cases whose refs are known.

The section must say, for the run's own results, which requirement ids their cases check, each id's verdict (the
worst status of its cases), its cases linked to their entries, a line per class, and the ids no case checks; the
same verdicts ``conformance coverage`` gives from the run's results.json; and every text escaped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conformance.core.coverage import coverage, requirements, statuses
from conformance.core.loader import load_case
from conformance.core.model import Case
from conformance.core.results import CaseResult
from conformance.reporters.html import html_report
from conformance.reporters.html_coverage import INLINE, coverage_view, section_of
from conformance.reporters.results_json import results_document

from .test_html import Element, parse, sections, table_rows
from .test_report_formats import RUN

HOSTILE = "x\"><script>alert(1)</script><b a='"


def make_case(root: Path, case_id: str, refs: tuple[str, ...], title: str = "a case") -> Case:
    """A case of its own whose refs name exactly `refs` (a send step only: no check adds an id of its own)."""
    group = root / "cov"
    group.mkdir(exist_ok=True)
    path = group / f"{case_id}.yaml"
    lines = [f"id: {case_id}", f"title: '{title.replace(chr(39), chr(39) * 2)}'", "refs:"]
    lines += [f"  - {{id: {r}, doc: RFC 9293, level: MUST, says: checked}}" for r in refs]
    lines += ["service: listen", "steps:", "  - send: {flags: S, seq: isn}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_case(path, root)


def outcome(case: Case, status: str, message: str = "") -> CaseResult:
    return CaseResult(case, status, message, 0.0, None)


@pytest.fixture()
def results(tmp_path: Path) -> list[CaseResult]:
    """MUST-19 (A): passed and failed (over IPv6); EP-5 (W): 5 passed; SHLD-14 (W): warning; MUST-18 (A):
    skipped only (not run); EP-1 (W): a harness error in a case with a hostile id and title."""
    a = make_case(tmp_path, "a", ("MUST-19",))
    b = make_case(tmp_path, "b", ("MUST-19", "EP-5"))
    many = [make_case(tmp_path, f"ep5-{i}", ("EP-5",)) for i in range(4)]
    c = make_case(tmp_path, "c", ("SHLD-14",))
    d = make_case(tmp_path, "d", ("MUST-18",))
    hostile = replace(make_case(tmp_path, "h", ("EP-1",), title=HOSTILE), id=HOSTILE)
    return [
        outcome(a, "passed"),
        outcome(replace(a, id="a.ipv6"), "failed", "ack differs"),
        outcome(b, "passed"),
        *(outcome(m, "passed") for m in many),
        outcome(c, "warning"),
        outcome(d, "skipped", "needs sysctls"),
        outcome(hostile, "error", HOSTILE),
    ]


def slugs_of(root: Element) -> dict[str, str]:
    """Each case entry's anchor by the id its heading shows."""
    return {next(s.iter("code")).all_text(): s.attrs["id"] for s in sections(root)}


def coverage_section(root: Element) -> Element:
    return next(s for s in root.iter("section") if s.attrs.get("id") == "coverage")


def test_the_section_says_ids_verdicts_counts_and_links(results: list[CaseResult], tmp_path: Path) -> None:
    root = parse(html_report(results, tmp_path, None))
    sec = coverage_section(root)
    classes = [li.all_text() for li in sec.iter("li")]
    assert classes == [
        "W-class ids: 1 of 41 checked by this run: 1 warning",
        "A-class ids: 2 of 72 checked by this run: 1 failed, 1 not run",
        "N-class ids: 0 of 6 checked by this run",
        "EP rules: 2 of 20 checked by this run: 1 passed, 1 error",
    ]
    checked = next(t for t in sec.iter("table") if "checked" in t.classes())
    rows = table_rows(checked)
    # the table's order: the reference table's (Appendix B, then EP); columns class, level, topic, section, verdict
    assert list(rows) == [q.id for q in requirements() if q.id in {"MUST-19", "SHLD-14", "MUST-18", "EP-1", "EP-5"}]
    verdicts = {i: cells[4] for i, cells in rows.items()}
    assert verdicts == {
        "MUST-19": "FAILED",
        "SHLD-14": "WARNING",
        "MUST-18": "NOT RUN",
        "EP-1": "ERROR",
        "EP-5": "PASSED",
    }
    ep5 = next(q for q in requirements() if q.id == "EP-5")
    assert rows["EP-5"][:4] == ["W", "EP", ep5.topic, section_of(ep5)] and section_of(ep5).startswith("§3.10")

    anchors = slugs_of(root)
    by_id = {tr.attrs["id"]: tr for tr in checked.iter("tr") if tr.attrs.get("id")}
    must19 = by_id["req-MUST-19"]
    assert not list(must19.iter("details"))  # two entries: inline
    groups = [(next(g.iter("span")).all_text(), [a.all_text() for a in g.iter("a")]) for g in must19.iter("div")]
    assert groups == [("failed (1)", ["a.ipv6"]), ("passed (2)", ["a", "b"])]  # worst first; IPv6 counts for MUST-19
    assert [a.attrs["href"] for a in must19.iter("a")] == [f"#{anchors[i]}" for i in ("a.ipv6", "a", "b")]

    ep5_row = by_id["req-EP-5"]
    (details,) = ep5_row.iter("details")  # 5 entries, more than INLINE: behind their count
    assert 5 > INLINE and next(details.iter("summary")).all_text() == "5 cases: 5 passed"
    assert [a.all_text() for a in details.iter("a")] == ["b", "ep5-0", "ep5-1", "ep5-2", "ep5-3"]
    assert [s.all_text() for s in by_id["req-MUST-18"].iter("span")] == ["NOT RUN", "skipped (1)"]

    unchecked = next(d for d in sec.iter("details") if "cov-unchecked" in d.classes())
    assert next(unchecked.iter("summary")).all_text() == f"{len(requirements()) - 5} ids no case of this run checks"
    ids = table_rows(next(unchecked.iter("table")))
    assert len(ids) == len(requirements()) - 5 and "MUST-2" in ids and "EP-5" not in ids


def test_hostile_case_texts_are_escaped(results: list[CaseResult], tmp_path: Path) -> None:
    raw = html_report(results, tmp_path, None)
    assert "<script>" not in raw and "<b a=" not in raw
    root = parse(raw)
    assert not list(root.iter("script")) and not list(root.iter("b"))
    row = next(tr for tr in coverage_section(root).iter("tr") if tr.attrs.get("id") == "req-EP-1")
    (link,) = row.iter("a")
    assert link.all_text() == HOSTILE and link.attrs["href"] == f"#{slugs_of(root)[HOSTILE]}"
    assert link.attrs["href"] == "#case-10-x-script-alert-1-script-b-a"


def test_verdicts_agree_with_conformance_coverage(results: list[CaseResult]) -> None:
    """The HTML's verdicts are those `conformance coverage` computes from the same run's results.json."""
    view = coverage_view(results, [f"s{i}" for i in range(len(results))])
    run = statuses(results_document(results, RUN))
    cases = {r.case.id.removesuffix(".ipv6"): r.case for r in results if not r.case.id.endswith(".ipv6")}
    terminal = {c.requirement.id: c.verdict for c in coverage(cases.values(), run) if c.covered}
    assert {q.id: q.verdict for q in view.checked} == terminal
    assert {q.id for q in view.unchecked} == {q.id for q in requirements()} - set(terminal)


def test_a_run_that_checks_nothing(tmp_path: Path) -> None:
    case = make_case(tmp_path, "plain", ("RFC6298-2.1",))
    view = coverage_view([outcome(case, "passed")], ["s"])
    assert view.checked == () and len(view.unchecked) == len(requirements())
    assert [c.text for c in view.classes][0] == "W-class ids: 0 of 41 checked by this run"
    sec = coverage_section(parse(html_report([outcome(case, "passed")], tmp_path, None)))
    assert not [t for t in sec.iter("table") if "checked" in t.classes()]
