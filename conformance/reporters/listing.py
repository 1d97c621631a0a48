"""``conformance list``: the cases as a table on a terminal, tab-separated lines elsewhere, or JSON.

Plain lines are never cut: ``conformance list | cat`` and ``| grep`` see every id
whole. The JSON is an array with one object per case (id, group, title, file,
tags, the references it checks, and ``long``).

A long case (tagged ``long``: timers of minutes, left out of a folder walk) is
marked: a fifth field on its plain line, a mark in the table's ``plays`` column,
``"long": true`` in the JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import IO

from ..core.model import Case, Reference

FORMATS = ("auto", "table", "plain", "json")
#: A long case's mark (conformance.run.suite.LONG: the tag; the run layer is above this one).
LONG_MARK = "long: plays with --long, or when its file is named"


def _long(case: Case) -> bool:
    return "long" in case.tags


def _checks(refs: Sequence[Reference]) -> str:
    return "; ".join(f"{r.doc} {r.level}" + (f" {r.id}" if r.id not in r.doc else "") for r in refs)


def list_plain(cases: Sequence[Case]) -> str:
    """One line per case: group, id, title and checks, separated by tabs; a long case's line has its mark too."""
    mark = "\t" + LONG_MARK
    return "".join(f"{c.group}\t{c.id}\t{c.title}\t{_checks(c.refs)}{mark if _long(c) else ''}\n" for c in cases)


def list_json(cases: Sequence[Case]) -> str:
    """The cases as a JSON array."""
    records = [
        {
            "id": c.id,
            "group": c.group,
            "title": c.title,
            "file": c.path,
            "tags": list(c.tags),
            "references": [{"id": r.id, "doc": r.doc, "level": str(r.level), "says": r.says} for r in c.refs],
            "long": _long(c),
        }
        for c in cases
    ]
    return json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def print_list(cases: Sequence[Case], fmt: str = "auto", file: IO[str] | None = None) -> None:
    """Print `cases` as `fmt`; ``auto`` is a table on a terminal and plain lines anywhere else."""
    out = file if file is not None else sys.stdout
    if fmt == "auto":
        fmt = "table" if out.isatty() else "plain"
    if fmt == "json":
        out.write(list_json(cases))
    elif fmt == "plain":
        out.write(list_plain(cases))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{len(cases)} cases", show_lines=False)
        for col in ("group", "id", "title", "checks", "plays"):
            table.add_column(col)
        for c in cases:
            table.add_row(c.group, c.id, c.title, _checks(c.refs), "--long" if _long(c) else "")
        Console(file=out, highlight=False).print(table)
