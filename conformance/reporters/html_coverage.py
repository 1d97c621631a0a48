"""The HTML report's "Requirement coverage" section, computed: a view model of the run's own results.

Which RFC 9293 Appendix B ids and EP rules the played cases check, and each one's verdict in this run, come from
:mod:`conformance.core.coverage` (the same computation as ``conformance coverage``): a requirement's verdict is
the worst status of its cases (failed, error, warning, passed), ``not run`` when none of them ended with one of
those (every one skipped). Here it is only arranged for ``coverage.html.j2``: a line per class, a row per checked
id with its cases grouped by status (each linking to its entry in the report), and the ids no case of the run
checks. An IPv6 copy (``ID.ipv6``) is an entry of its own but counts for its case, as in ``results.json``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.coverage import NOT_RUN, VERDICTS, Covered, Requirement, base_id, coverage, run_of, tallies
from ..core.model import Case
from ..core.results import CaseResult

#: A requirement's cases are shown inline up to this many; more go into a collapsed list behind their count.
INLINE = 3

#: What each kind of requirement is called in a summary line.
KINDS = {"W": "W-class ids", "A": "A-class ids", "N": "N-class ids", "EP": "EP rules"}

#: The order of a requirement's cases: by status, worst first, then any other status (skipped, ...).
STATUS_ORDER = VERDICTS


@dataclass(frozen=True)
class CaseLink:
    """An entry of the report that checks a requirement: its id (``.ipv6`` for the IPv6 copy) and anchor."""

    id: str
    slug: str


@dataclass(frozen=True)
class StatusGroup:
    """A requirement's entries that ended with one status."""

    status: str
    links: tuple[CaseLink, ...]


@dataclass(frozen=True)
class RequirementLine:
    id: str
    klass: str  # W, A or N
    level: str  # MUST, SHOULD, ..., or EP
    topic: str
    text: str
    section: str  # as RFC 9293 numbers it: "§3.8.1"
    verdict: str  # failed | error | warning | passed | not run
    count: int  # the report's entries that check it
    counts: str  # "2 failed, 118 passed"
    groups: tuple[StatusGroup, ...]  # worst status first

    @property
    def inline(self) -> bool:
        """Few enough entries to list in the row; more go in a collapsed list."""
        return self.count <= INLINE


@dataclass(frozen=True)
class ClassLine:
    """One kind's line: ``W-class ids: 12 of 41 checked by this run: 11 passed, 1 failed``."""

    kind: str  # W, A, N or EP
    checked: int
    total: int
    text: str


@dataclass(frozen=True)
class CoverageView:
    classes: tuple[ClassLine, ...]
    checked: tuple[RequirementLine, ...]  # in the reference table's order
    unchecked: tuple[RequirementLine, ...]


def section_of(req: Requirement) -> str:
    """The RFC 9293 section of a requirement as "§3.8.1" (the table writes "3.8.1", "§3.5", "9293 §3.10.7.1")."""
    text = req.section.removeprefix("9293 ").strip()
    return text if text.startswith("§") else f"§{text}"


def _run_cases(results: Sequence[CaseResult]) -> list[Case]:
    """The run's cases, once each under their own id (an IPv6 copy stands for its case when that did not play)."""
    cases: dict[str, Case] = {}
    for r in results:
        case_id = base_id(r.case.id)
        if case_id not in cases:
            cases[case_id] = r.case if r.case.id == case_id else dataclasses.replace(r.case, id=case_id)
    return list(cases.values())


def _groups(links: list[tuple[str, CaseLink]]) -> tuple[StatusGroup, ...]:
    by_status: dict[str, list[CaseLink]] = {}
    for status, link in links:
        by_status.setdefault(status, []).append(link)
    order = [s for s in STATUS_ORDER if s in by_status] + sorted(set(by_status) - set(STATUS_ORDER))
    return tuple(StatusGroup(s, tuple(by_status[s])) for s in order)


def _line(row: Covered, entries: dict[str, list[tuple[str, CaseLink]]]) -> RequirementLine:
    q = row.requirement
    links = [e for case_id in row.cases for e in entries.get(case_id, [])]
    groups = _groups(links)
    counts = ", ".join(f"{len(g.links)} {g.status}" for g in groups)
    return RequirementLine(
        q.id, q.klass, q.level, q.topic, q.text, section_of(q), row.verdict, len(links), counts, groups
    )


def _class_line(kind: str, checked: int, total: int, lines: list[RequirementLine]) -> ClassLine:
    verdicts = Counter(line.verdict for line in lines)
    parts = [f"{verdicts[v]} {v}" for v in ("passed", *VERDICTS[:-1], NOT_RUN) if verdicts[v]]
    text = f"{KINDS[kind]}: {checked} of {total} checked by this run"
    return ClassLine(kind, checked, total, text + (": " + ", ".join(parts) if parts else ""))


def coverage_view(results: Sequence[CaseResult], slugs: Sequence[str]) -> CoverageView:
    """The requirements the run's cases check and their verdicts; `slugs` are the entries' anchors."""
    rows = coverage(_run_cases(results), run_of((r.case.id, r.status) for r in results))
    entries: dict[str, list[tuple[str, CaseLink]]] = {}
    for r, s in zip(results, slugs, strict=True):
        entries.setdefault(base_id(r.case.id), []).append((r.status, CaseLink(r.case.id, s)))
    lines = [_line(row, entries) for row in rows]
    checked = [line for row, line in zip(rows, lines, strict=True) if row.covered]

    def kind(line: RequirementLine) -> str:
        return "EP" if line.level == "EP" else line.klass

    classes = tuple(
        _class_line(t.kind, t.covered, t.total, [c for c in checked if kind(c) == t.kind]) for t in tallies(rows)
    )
    unchecked = tuple(line for row, line in zip(rows, lines, strict=True) if not row.covered)
    return CoverageView(classes, tuple(checked), unchecked)
