"""``conformance coverage``: every RFC 9293 requirement id and EP rule, its class, the cases that check it, and
its verdict in the last run (``reports/results.json``), as a table, plain lines or JSON, and as a JSON file.

The cases are those a run would take (:func:`conformance.run.suite.case_source`: the paths given, else
``cases/`` here, else the shipped suite) plus the generated RFC 9293 matrix; what counts as checking a
requirement is :mod:`conformance.core.coverage`'s.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

from ..core.coverage import Covered, Tally, coverage, document_of, statuses, tallies
from ..core.errors import ConformanceError
from ..reporters.files import write_file
from .results_file import read_document, short_path

FORMATS = ("auto", "table", "plain", "json")
#: Where ``conformance run`` writes its results by default.
DEFAULT_RESULTS = "reports/results.json"


def read_results(path: str, explicit: bool) -> dict[str, Any] | None:
    """The run's ``results.json``; None when the default one does not exist (no run yet: nothing has a verdict)."""
    file = Path(path)
    if not file.is_file():
        if explicit:
            raise ConformanceError(
                f"{path}: no such results file (write one with `conformance run`, or drop --results)"
            )
        return None
    label = f"--results {short_path(path)}" if explicit else short_path(path)
    return read_document(path, label)  # untrusted: every field used is checked


def summary_lines(counts: list[Tally]) -> list[str]:
    """One line per kind: ``W-class ids: 41 of 41 covered, 39 passed in the run``."""
    names = {"W": "W-class ids", "A": "A-class ids", "N": "N-class ids", "EP": "EP rules"}
    return [f"{names[t.kind]}: {t.covered} of {t.total} covered, {t.passed} passed in the run" for t in counts]


def plain(rows: list[Covered]) -> str:
    """One tab-separated line per requirement: id, class, level, verdict, number of cases, the cases."""
    return "".join(
        f"{r.requirement.id}\t{r.requirement.klass}\t{r.requirement.level}\t{r.verdict}\t{len(r.cases)}\t"
        f"{','.join(r.cases)}\n"
        for r in rows
    )


def _shown(cases: tuple[str, ...], most: int = 3) -> str:
    more = f" (+{len(cases) - most})" if len(cases) > most else ""
    return ", ".join(cases[:most]) + more


def print_table(rows: list[Covered], out: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} requirements")
    for col in ("id", "class", "level", "topic", "verdict", "cases"):
        table.add_column(col)
    for r in rows:
        q = r.requirement
        table.add_row(q.id, q.klass, q.level, q.topic, r.verdict, _shown(r.cases) or "-")
    console = Console(file=out)
    console.print(table)
    for line in summary_lines(tallies(rows)):
        console.print(line)


def cmd_coverage(paths: list[str] | None, results: str | None, fmt: str, json_file: str | None) -> int:
    """Compute, print and (with `json_file`) write the coverage; 0, or a ConformanceError for a bad input."""
    from .suite import case_source

    source = case_source(paths, matrix=True, long=True)
    if source is None:
        raise ConformanceError("no cases/ folder here and no suite shipped with the tool: name case files or folders")
    run = read_results(results or DEFAULT_RESULTS, explicit=results is not None)
    rows = coverage(source.load(), statuses(run) if run is not None else None)
    used = (results or DEFAULT_RESULTS) if run is not None else None
    text = json.dumps(document_of(rows, used), indent=2, ensure_ascii=False) + "\n"
    if json_file:
        write_file(Path(json_file), text)
    out = sys.stdout
    if fmt == "auto":
        fmt = "table" if out.isatty() else "plain"
    if fmt == "json":
        out.write(text)
    elif fmt == "plain":
        out.write(plain(rows))
    else:
        print_table(rows, out)
    notes = [f"cases: {source.description}", f"verdicts: {used}" if used else "verdicts: none (no results.json)"]
    for line in (summary_lines(tallies(rows)) if fmt != "table" else []) + notes:
        print(line, file=sys.stderr)
    return 0
