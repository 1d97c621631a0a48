"""``results.json``: a run's results for programs, in the versioned format of ``conformance/data/results.schema.json``.

One document per run: what reproduces it (the tool's version, the seed, the
command line), then every case with its status, its steps (status and timing),
its failure (kind, reference, level, the fields that differed), its findings,
and the parameters it used with where each came from. Times are seconds, rounded
to the microsecond; a step's ``time`` counts from the case's first packet.
``FORMAT_VERSION`` goes up by one whenever a field changes meaning or goes away;
new optional fields do not change it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.model import Reference
from ..core.results import CaseResult
from ..core.verdict import Failure
from .files import write_file
from .run_info import RunInfo

FORMAT_VERSION = 1
SCHEMA_ID = "https://conformance.invalid/schemas/results-1.schema.json"


def _t(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _reference(ref: Reference | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"id": ref.id, "doc": ref.doc, "level": str(ref.level), "stack": ref.stack, "says": ref.says}


def _failure(failure: Failure, origin: float) -> dict[str, Any]:
    ref = failure.reference
    return {
        "kind": str(failure.kind),
        "line": failure.line,
        "step": failure.step,
        "message": failure.message,
        "reference": _reference(ref),
        "level": str(ref.level) if ref is not None else None,
        "time": _t(failure.time - origin) if failure.time is not None else None,
        "diffs": [
            {"field": d.field, "expected": d.expected, "observed": d.observed, "ok": d.ok} for d in failure.diffs
        ],
    }


def case_record(result: CaseResult) -> dict[str, Any]:
    """One case of ``results.json``."""
    case, verdict, target = result.case, result.verdict, result.target
    origin = verdict.start if verdict is not None else 0.0
    params = target.params if target is not None else {}
    return {
        "id": case.id,
        "group": case.group,
        "title": case.title,
        "file": case.path,
        "tags": list(case.tags),
        "status": str(result.status),
        "message": result.message,
        "duration": _t(result.duration),
        "references": [_reference(r) for r in case.refs],
        "target": None
        if target is None
        else {
            "kind": target.kind,
            "description": target.description,
            "address": target.address,
            "profile": target.profile,
        },
        "parameters": [
            {"name": p.name, "value": _t(p.value), "unit": p.unit, "origin": p.origin, "source": p.source}
            for p in params.values()
        ],
        "steps": []
        if verdict is None
        else [
            {
                "line": s.line,
                "description": s.description,
                "status": str(s.status),
                "time": _t(s.time - origin) if s.time is not None else None,
                "timing": s.timing,
            }
            for s in verdict.steps
        ],
        "failure": _failure(verdict.failure, origin) if verdict is not None and verdict.failure is not None else None,
        "findings": []
        if verdict is None
        else [{"outcome": str(f.outcome), **_failure(f.failure, origin)} for f in verdict.findings],
        "expect_failure": case.expect_failure,
        "raw_status": result.raw_status,
        "ports": dict(result.ports),
        "isns": dict(result.isns),
    }


def results_document(results: Sequence[CaseResult], run: RunInfo) -> dict[str, Any]:
    """The whole ``results.json`` document, as Python data."""
    started = datetime.fromtimestamp(run.started, tz=UTC) if run.started else None
    return {
        "$schema": SCHEMA_ID,
        "format_version": FORMAT_VERSION,
        "tool": {"name": "conformance", "version": run.version},
        "seed": run.seed,
        "command_line": run.command_line,
        "argv": list(run.argv),
        "cases_from": run.cases_from,
        "started": started.isoformat(timespec="milliseconds") if started is not None else None,
        "duration": _t(run.duration),
        "summary": dict(Counter(str(r.status) for r in results)),
        "cases": [case_record(r) for r in results],
    }


def write_results_json(results: Sequence[CaseResult], path: Path, run: RunInfo) -> None:
    """Write ``results.json`` (whole, never through a link), creating its folder."""
    text = json.dumps(results_document(results, run), indent=2, ensure_ascii=False)
    write_file(Path(path), text + "\n")
