"""What the HTML report shows, computed: the summary and each case, as view models.

Plain frozen dataclasses of text and numbers, built from
:class:`~conformance.core.results.CaseResult` objects; the templates
(``summary.html.j2``, ``case.html.j2``) lay them out and escape every text.
The drawings' view models come from :mod:`.html_figures`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..core.engine import Failure
from ..core.model import LEVELS, Reference
from ..core.params import Param
from ..core.results import CaseResult
from ..core.values import format_duration
from .html_figures import Ladder, ScheduleCheck, SchedulePlot, ladder_view, schedule_checks, schedule_plot
from .ladder import FAIL_MARK, OK_MARK, failure_reference, numbering_lines, summarize_failure
from .pcap import pcap_name

#: The statuses the report knows (and colours); any other status gets a column of its own after them.
STATUSES = ("passed", "warning", "failed", "error")


def slug(index: int, case_id: str) -> str:
    """The anchor of the `index`-th case (1-based): unique, and safe in a URL fragment."""
    return f"case-{index}-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", case_id).strip("-") or "case")


# ------------------------------------------------------------------ summary
@dataclass(frozen=True)
class CountRow:
    """A row of counts: its name, then (status, count) per column, then the total."""

    name: str
    counts: tuple[tuple[str, int], ...]
    total: int | None = None


@dataclass(frozen=True)
class CaseLine:
    """One case in the summary's list of cases."""

    status: str
    slug: str
    id: str
    group: str
    title: str
    duration: str
    why: str  # the failure in one line, or ""


@dataclass(frozen=True)
class Summary:
    total: int
    statuses: tuple[str, ...]  # the columns: the known statuses, then any other that occurs
    by_status: tuple[tuple[str, int], ...]
    targets: tuple[str, ...]
    groups: tuple[CountRow, ...]  # the last row is "all"
    levels: tuple[CountRow, ...]
    cases: tuple[CaseLine, ...]


def _level_counts(results: Sequence[CaseResult]) -> dict[str, Counter[str]]:
    """Per level: passed cases under every level they check, failed ones under the level their failure cites."""
    counts: dict[str, Counter[str]] = {}
    for r in results:
        if r.status == "passed":
            levels = {ref.level for ref in r.case.refs}
        elif r.status == "failed":
            ref = failure_reference(r)
            levels = {ref.level} if ref is not None else set()
        else:
            continue
        for level in levels:
            counts.setdefault(level, Counter())[r.status] += 1
    return counts


def _level_rows(results: Sequence[CaseResult]) -> tuple[CountRow, ...]:
    levels = _level_counts(results)
    order = [lv for lv in LEVELS if lv in levels] + sorted(set(levels) - set(LEVELS))
    return tuple(CountRow(lv, (("passed", levels[lv]["passed"]), ("failed", levels[lv]["failed"]))) for lv in order)


def summary_view(results: Sequence[CaseResult], slugs: Sequence[str]) -> Summary:
    statuses = (*STATUSES, *sorted({r.status for r in results} - set(STATUSES)))
    by_status = Counter(r.status for r in results)
    groups: dict[str, Counter[str]] = {}
    for r in results:
        groups.setdefault(r.case.group, Counter())[r.status] += 1
    group_rows = [
        CountRow(g, tuple((s, groups[g].get(s, 0)) for s in statuses), sum(groups[g].values())) for g in sorted(groups)
    ]
    group_rows.append(CountRow("all", tuple((s, by_status.get(s, 0)) for s in statuses), len(results)))
    cases = tuple(
        CaseLine(r.status, s, r.case.id, r.case.group, r.case.title, format_duration(r.duration), summarize_failure(r))
        for r, s in zip(results, slugs, strict=True)
    )
    return Summary(
        total=len(results),
        statuses=statuses,
        by_status=tuple((s, by_status.get(s, 0)) for s in statuses),
        targets=tuple(dict.fromkeys(r.target.description for r in results if r.target is not None)),
        groups=tuple(group_rows),
        levels=_level_rows(results),
        cases=cases,
    )


# ------------------------------------------------------------------ a case
@dataclass(frozen=True)
class ParamLine:
    name: str
    value: str
    origin: str
    source: str
    used_by: str  # the schedules that used it ("" when none did)


@dataclass(frozen=True)
class TargetView:
    description: str
    sysctls: str  # what the case's own target sets, "k=v, ..." ("" when nothing)
    params: tuple[ParamLine, ...]
    show_used_by: bool  # whether any schedule used a parameter: the table has a "used by" column


@dataclass(frozen=True)
class RetransmissionLine:
    number: int
    expected: str
    tolerance: str
    measured: str
    off: str
    verdict: str
    bad: bool


@dataclass(frozen=True)
class ScheduleView:
    plot: SchedulePlot | None
    caption: str
    rows: tuple[RetransmissionLine, ...]


@dataclass(frozen=True)
class StepLine:
    line: int
    description: str
    status: str
    timing: str
    failed: bool


@dataclass(frozen=True)
class FailureView:
    """The failure block: a harness error, a failure (or a self-test's expected one), or nothing."""

    kind: str  # "error" | "message" (a failure with no details) | "failure"
    expected: bool  # a self-test's failure, as it must fail (the case passed)
    expect_failure: str | None  # a self-test: the text its failure must contain
    raw_status: str
    text: str
    failure: Failure | None  # for its field diffs


@dataclass(frozen=True)
class CaseView:
    slug: str
    status: str
    id: str
    title: str
    meta: tuple[str, ...]
    description: str
    refs: tuple[tuple[Reference, bool], ...]  # (reference, whether the failure cites it)
    cited: bool  # the failure cites one of the references
    target: TargetView | None
    ladder: Ladder | None
    numbering: str  # the ladder's numbering, one line each
    pcap: str  # the relative path of the case's pcap ("" when none)
    pcap_href: str  # ... quoted for a URL
    schedules: tuple[ScheduleView, ...]
    failure: FailureView | None
    steps: tuple[StepLine, ...]


def _param_value(p: Param) -> str:
    v = f"{p.value:g}"  # 6 significant digits: a sysctl in µs scaled to s reads 0.2, not 0.19999999999999998
    return v if p.unit in ("count", "mode", "bool") else f"{v} {p.unit}"


def _target(result: CaseResult) -> TargetView | None:
    target = result.target
    if target is None:
        return None
    used: dict[str, list[str]] = {}
    for s in result.verdict.schedules if result.verdict is not None else []:
        for name in s.params_used:
            used.setdefault(name, []).append(s.name)
    params = tuple(
        ParamLine(
            name,
            _param_value(p),
            p.origin,
            p.source,
            ", ".join(f"schedule {s}" for s in dict.fromkeys(used.get(name, []))),
        )
        for name, p in target.params.items()
    )
    sysctls = ", ".join(f"{k}={v}" for k, v in sorted(result.case.sysctls.items()))
    return TargetView(target.description, sysctls, params, bool(used))


def _schedule(check: ScheduleCheck) -> ScheduleView:
    s, w = check.schedule, check.step
    rows = []
    for p in check.points:
        if p.expected is not None:
            exp, tol = format_duration(p.expected), f"± {format_duration(p.tolerance)}"
        else:
            exp, tol = "none (the schedule had given up)", ""
        measured = format_duration(p.measured) if p.measured is not None else "—"
        off = format_duration(p.measured - p.expected) if p.measured is not None and p.expected is not None else ""
        verdict = {True: f"{OK_MARK} in band", False: f"{FAIL_MARK} failed", None: "not reached"}[p.ok]
        if p.ok is False and p.measured is None:
            verdict = f"{FAIL_MARK} did not come"
        rows.append(RetransmissionLine(p.number, exp, tol, measured, off, verdict, p.ok is False))
    caption = (
        f"line {w.line}: withhold {w.what}; the target retransmits {w.retransmits} on schedule {s.name}: "
        f"{s.derivation}."
    )
    if w.count:
        caption += f" Only the first {w.count} are checked."
    if check.silence is not None:
        caption += (
            f" Then nothing for {format_duration(check.silence)} (it gives up {format_duration(s.give_up)} after "
            "the last, plus tolerance)."
        )
    return ScheduleView(schedule_plot(check), caption, tuple(rows))


def _failure(result: CaseResult) -> FailureView | None:
    failure = result.verdict.failure if result.verdict is not None else None
    expect, raw = result.case.expect_failure, result.raw_status or "unknown"
    if result.status == "error":
        return FailureView("error", False, None, raw, result.message or "unknown error", None)
    if result.passed and failure is None:
        return None
    if failure is None:
        return FailureView("message", result.passed, expect, raw, result.message or "no details", None)
    return FailureView("failure", result.passed, expect, raw, failure.render(), failure)


def _pcap_link(result: CaseResult, html_dir: Path, pcap_folder: Path | None) -> str:
    if pcap_folder is None:
        return ""
    pcap = Path(pcap_folder) / pcap_name(result)
    if not pcap.is_file():
        return ""
    return Path(os.path.relpath(pcap.resolve(), html_dir.resolve())).as_posix()


def _meta(result: CaseResult) -> tuple[str, ...]:
    case = result.case
    meta = [
        f"group {case.group}",
        f"duration {format_duration(result.duration)}",
        f"file {case.path}",
        f"service {case.service}",
        f"tolerance {case.tolerance}",
    ]
    if case.tags:
        meta.append("tags " + ", ".join(case.tags))
    return tuple(meta)


def case_view(result: CaseResult, slug: str, html_dir: Path, pcap_folder: Path | None) -> CaseView:
    """What the report shows of one case; its pcap is linked relative to `html_dir`."""
    case = result.case
    cited = failure_reference(result) if result.status == "failed" else None
    verdict = result.verdict
    steps = (
        [StepLine(s.line, s.description, s.status, s.timing, s.status == "failed") for s in verdict.steps]
        if verdict
        else []
    )
    pcap = _pcap_link(result, html_dir, pcap_folder)
    return CaseView(
        slug=slug,
        status=result.status,
        id=case.id,
        title=case.title,
        meta=_meta(result),
        description=" ".join(case.description.split()),
        refs=tuple((ref, cited is not None and ref == cited) for ref in case.refs),
        cited=cited is not None,
        target=_target(result),
        ladder=ladder_view(result),
        numbering="\n".join(line.strip() for line in numbering_lines(result)),
        pcap=pcap,
        pcap_href=quote(pcap),
        schedules=tuple(_schedule(c) for c in schedule_checks(result)),
        failure=_failure(result),
        steps=tuple(steps),
    )
