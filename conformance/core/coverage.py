"""Which documented requirements the cases check, and what the last run said about each.

The requirements are RFC 9293 Appendix B's 119 ids (``MUST-19``) and the 20 event processing rules of §3.10 that
have no id there (``EP-12``), each with its testability class: W (a prober alone can test it), A (the harness must
also drive the application), N (not testable by probing). They ship as package data,
``conformance/data/reference/requirements.json`` (its source is in ``SOURCE.md`` beside it).

A case checks a requirement when one of its references is that id or names it (a ref ``RFC6298-5.5`` whose doc
or text says ``MUST-19``: the author's word that the check answers to it too), or when a check of one of its
steps answers to a document that does (:func:`conformance.core.checks.document`: a step's
``ref: {within: MUST-40}``, a checksum check's MUST-2).
The verdict of a requirement in a run is the worst status of its cases there: failed, error, warning, passed;
``not run`` when none of them played.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .checks import STEP_CHECKS, document
from .model import Case, Reference

#: The ids a reference may name: Appendix B's (MUST-19, SHLD-5, MAY-12, REC-1) and the catalog's EP-*.
ID = re.compile(r"\b(?:MUST|SHLD|MAY|REC|EP)-\d+\b")

#: The classes, in the order a summary shows them.
CLASSES = ("W", "A", "N")

#: A run's statuses, worst first: a requirement's verdict is the worst of its cases'.
VERDICTS = ("failed", "error", "warning", "passed")
NOT_RUN = "not run"


@dataclass(frozen=True)
class Requirement:
    """One requirement id, as the reference table gives it."""

    id: str
    level: str  # MUST, MUST NOT, SHOULD, ..., or EP for an event processing rule
    topic: str
    text: str
    section: str
    klass: str  # W, A or N


@dataclass(frozen=True)
class Covered:
    """A requirement, the cases that check it, and their verdict in a run (``not run`` without one)."""

    requirement: Requirement
    cases: tuple[str, ...]
    verdict: str

    @property
    def covered(self) -> bool:
        return bool(self.cases)


@cache
def requirements() -> tuple[Requirement, ...]:
    """Every requirement of the package data: Appendix B's ids in the table's order, then EP-1 to EP-20."""
    text = resources.files("conformance").joinpath("data", "reference", "requirements.json").read_text("utf-8")
    data = json.loads(text)
    rows = data["requirements"] + data["event_processing"]
    return tuple(Requirement(r["id"], r["level"], r["topic"], r["text"], r["section"], r["class"]) for r in rows)


def named_ids(ref: Reference) -> set[str]:
    """The requirement ids a reference names: its id, and the ids its doc or its text mention."""
    return {i for text in (ref.id, ref.doc, ref.says) for i in ID.findall(text)}


def ids_checked(case: Case) -> set[str]:
    """The requirement ids `case` checks: those its refs name, and those the documents of its steps' checks name."""
    refs: list[Reference | None] = list(case.refs)
    for step in case.steps:
        refs += [document(case, step, check) for check in STEP_CHECKS.get(type(step), frozenset())]
    return {i for r in refs if r is not None for i in named_ids(r)}


def checked_by(cases: Iterable[Case]) -> dict[str, list[str]]:
    """For each requirement id any case checks, the ids of those cases, in the cases' order."""
    out: dict[str, list[str]] = {}
    for case in cases:
        for i in sorted(ids_checked(case)):
            out.setdefault(i, []).append(case.id)
    return out


def base_id(result_id: str) -> str:
    """The case id of a run's result: an IPv6 copy (``closed-rst.ipv6``) is its case's."""
    return result_id.removesuffix(".ipv6")


def run_of(outcomes: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """The statuses each case ended with, from (result id, status) pairs: an IPv6 copy's count for its case."""
    out: dict[str, list[str]] = {}
    for result_id, status in outcomes:
        out.setdefault(base_id(result_id), []).append(status)
    return out


def statuses(results: Mapping[str, Any]) -> dict[str, list[str]]:
    """The statuses each case ended with in a ``results.json`` document (both address families, in order)."""
    return run_of((str(record["id"]), str(record["status"])) for record in results.get("cases") or [])


def verdict(case_ids: Iterable[str], run: Mapping[str, list[str]]) -> str:
    """The worst status the cases `case_ids` ended with in `run`; ``not run`` if none of them played."""
    seen = {s for c in case_ids for s in run.get(c, [])}
    return next((v for v in VERDICTS if v in seen), NOT_RUN)


def coverage(cases: Iterable[Case], run: Mapping[str, list[str]] | None = None) -> list[Covered]:
    """Every requirement, the cases that check it and its verdict in `run` (see :func:`statuses`)."""
    by_id = checked_by(cases)
    out = []
    for req in requirements():
        ids = tuple(by_id.get(req.id, ()))
        out.append(Covered(req, ids, verdict(ids, run or {})))
    return out


@dataclass(frozen=True)
class Tally:
    """How many requirements of one kind (a class of Appendix B's ids, or the EP rules) the cases check."""

    kind: str
    covered: int
    total: int
    passed: int


def tallies(rows: list[Covered]) -> list[Tally]:
    """The counts of Appendix B ids per class (W, A, N), then of the EP rules."""
    groups = [(k, [r for r in rows if r.requirement.klass == k and r.requirement.level != "EP"]) for k in CLASSES]
    groups.append(("EP", [r for r in rows if r.requirement.level == "EP"]))
    return [Tally(k, sum(r.covered for r in g), len(g), sum(r.verdict == "passed" for r in g)) for k, g in groups]


def document_of(rows: list[Covered], results: str | None) -> dict[str, object]:
    """The coverage as JSON data: the counts, then every requirement with its cases and verdict."""
    return {
        "results": results,
        "summary": {t.kind: {"covered": t.covered, "total": t.total, "passed": t.passed} for t in tallies(rows)},
        "requirements": [
            {
                "id": r.requirement.id,
                "level": r.requirement.level,
                "class": r.requirement.klass,
                "topic": r.requirement.topic,
                "section": r.requirement.section,
                "text": r.requirement.text,
                "cases": list(r.cases),
                "verdict": r.verdict,
            }
            for r in rows
        ],
    }
