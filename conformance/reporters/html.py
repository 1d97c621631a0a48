"""One self-contained HTML report of a run: a summary, then every case.

The file needs nothing but a browser to read (no script, no network, no other
file): CSS is inline, the ladders and retransmission plots are inline SVG. It
prints: figures and tables are kept on one page where they fit.

For each case it shows what the JUnit report carries (references, target,
parameters and where they came from, the failure with its expected-versus-
observed fields) and two drawings:

* the **ladder**: two lifelines, ``us`` and ``target``, one arrow per segment
  of the trace, labelled like the text ladder (flags, seq/ack relative to the
  ISNs, len; the rows come from :func:`~conformance.reporters.ladder.ladder_rows`).
  Time runs down on a compressed scale (milliseconds and tens of seconds both
  fit); each arrow ends at the height of its capture time and starts a little
  below the previous arrow, so its slope grows with the time since the previous
  segment. The failing segment is red;
* for each ``withhold`` step reached, the **retransmission plot**: the gap of
  each retransmission since the previous event (what the engine judges),
  against the expected gap of the schedule and its tolerance band, on a
  logarithmic scale (the gaps double), with the numbers in a table below.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from urllib.parse import quote

from ..core.engine import TraceEntry
from ..core.model import LEVELS, WithholdStep
from ..core.params import Param
from ..core.results import CaseResult
from ..core.schedules import Schedule
from ..core.values import format_duration
from .ladder import (
    FAIL_MARK,
    OK_MARK,
    failure_reference,
    ladder_rows,
    numbering_lines,
    summarize_failure,
)
from .pcap import pcap_name

STATUSES = ("passed", "warning", "failed", "error")
_OURS, _THEIRS, _BAD, _GOOD, _MUTED = "#1f5fa8", "#333333", "#d00000", "#1a7f37", "#6e7781"

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2328;
       margin: 0 auto; padding: 16px 24px; max-width: 1100px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 6px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
code, pre, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 8px 10px; white-space: pre-wrap;
      overflow-wrap: anywhere; margin: 6px 0; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num, th.num { text-align: right; }
caption { caption-side: bottom; text-align: left; color: #6e7781; font-size: 12px; padding-top: 3px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-weight: 600;
         font-size: 12px; vertical-align: middle; }
.passed { background: #1a7f37; } .failed { background: #d00000; } .error { background: #8250df; }
.other { background: #6e7781; }
td.count-failed { color: #fff; background: #d00000; font-weight: 600; }
td.count-error { color: #fff; background: #8250df; font-weight: 600; }
td.count-passed { color: #1a7f37; font-weight: 600; }
tr.bad td { color: #d00000; font-weight: 600; }
tr.cited td { background: #fff8c5; }
section.case { border-top: 2px solid #d0d7de; margin-top: 22px; padding-top: 12px; }
.meta { color: #57606a; margin: 2px 0; }
.failure { border-left: 4px solid #d00000; padding-left: 10px; }
.failure.expected { border-left-color: #6e7781; }
figure { margin: 8px 0; }
.side { display: flex; flex-wrap: wrap; gap: 0 28px; align-items: flex-start; }
table.params { font-size: 12px; }
table.params td:nth-child(4) { color: #57606a; }
figcaption { color: #57606a; font-size: 12px; }
figcaption.numbering { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: pre-line; }
svg { max-width: 100%; height: auto; display: block; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  figure, table, pre, .failure { break-inside: avoid; }
  section.case { break-before: auto; }
  a { color: inherit; text-decoration: none; }
}
"""


# ------------------------------------------------------------------ helpers
def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _slug(index: int, case_id: str) -> str:
    return f"case-{index}-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", case_id).strip("-") or "case")


def _badge(status: str) -> str:
    cls = status if status in STATUSES else "other"
    return f'<span class="badge {cls}">{_e(status.upper())}</span>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], caption: str = "", cls: str = "") -> str:
    """A table; cells are HTML already (escape before), head cells are text."""
    out = [f'<table class="{_e(cls)}">' if cls else "<table>"]
    if caption:
        out.append(f"<caption>{_e(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>")
    out.extend("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    out.append("</tbody></table>")
    return "".join(out)


def _param_value(p: Param) -> str:
    v = f"{p.value:g}"  # 6 significant digits: a sysctl in µs scaled to s reads 0.2, not 0.19999999999999998
    return v if p.unit in ("count", "mode", "bool") else f"{v} {p.unit}"


def _svg_text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = _THEIRS, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>{_e(text)}</text>'


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ summary
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


def _count_cell(status: str, n: int) -> str:
    cls = f' class="num count-{status}"' if n and status in STATUSES else ' class="num"'
    return f"<td{cls}>{n}</td>"


def _summary(results: Sequence[CaseResult], slugs: Sequence[str]) -> str:
    statuses = [*STATUSES, *sorted({r.status for r in results} - set(STATUSES))]
    by_status = Counter(r.status for r in results)
    out = ['<section id="summary"><h2>Summary</h2>']
    out.append(
        '<p class="meta">'
        + _e(f"{len(results)} cases: ")
        + ", ".join(f"{by_status.get(s, 0)} {_e(s)}" for s in statuses)
        + "</p>"
    )
    targets = list(dict.fromkeys(r.target.description for r in results if r.target is not None))
    if targets:
        out.append('<p class="meta">target: ' + "; ".join(_e(t) for t in targets) + "</p>")

    groups: dict[str, Counter[str]] = {}
    for r in results:
        groups.setdefault(r.case.group, Counter())[r.status] += 1
    rows = []
    for group in sorted(groups):
        c = groups[group]
        rows.append(
            f"<tr><th>{_e(group)}</th>"
            + "".join(_count_cell(s, c.get(s, 0)) for s in statuses)
            + f'<td class="num">{sum(c.values())}</td></tr>'
        )
    rows.append(
        "<tr><th>all</th>"
        + "".join(_count_cell(s, by_status.get(s, 0)) for s in statuses)
        + f'<td class="num">{len(results)}</td></tr>'
    )
    out.append('<div class="side">')
    out.append(
        '<table class="summary by-group"><caption>cases by group and status</caption><thead><tr><th>group</th>'
        + "".join(f'<th class="num">{_e(s)}</th>' for s in statuses)
        + '<th class="num">total</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )

    levels = _level_counts(results)
    order = [lv for lv in LEVELS if lv in levels] + sorted(set(levels) - set(LEVELS))
    level_rows = [
        f"<tr><th>{_e(lv)}</th>{_count_cell('passed', levels[lv]['passed'])}"
        f"{_count_cell('failed', levels[lv]['failed'])}</tr>"
        for lv in order
    ]
    out.append(
        '<table class="summary by-level"><caption>cases by requirement level</caption><thead><tr><th>level</th>'
        '<th class="num">passed</th><th class="num">failed</th></tr></thead><tbody>'
        + "".join(level_rows)
        + "</tbody></table></div>"
    )
    out.append(
        '<p class="meta">By requirement level, a passed case counts under every level it checks and a failed case '
        "under the level of the reference its failure cites; harness errors are not counted.</p>"
    )

    case_rows = []
    for r, slug in zip(results, slugs, strict=True):
        why = summarize_failure(r)
        case_rows.append(
            [
                _badge(r.status),
                f'<a href="#{_e(slug)}"><code>{_e(r.case.id)}</code></a>',
                _e(r.case.group),
                _e(r.case.title),
                f'<span class="mono">{_e(format_duration(r.duration))}</span>',
                _e(why),
            ]
        )
    out.append(_table(("status", "case", "group", "title", "duration", "failure"), case_rows, cls="summary cases"))
    out.append("</section>")
    return "".join(out)


# ------------------------------------------------------------------- ladder
_LADDER_W = 980
_ROW_MIN = 24  # vertical room of a row with no time before it (px)


def _row_step(gap: float) -> float:
    """Vertical room of a row, growing with the log of the time since the previous row."""
    return _ROW_MIN + 14 * math.log10(1 + max(gap, 0.0) * 1000)


def _arrowhead(x1: float, y1: float, x2: float, y2: float, color: str) -> str:
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    bx, by = x2 - 9 * ux, y2 - 9 * uy
    px, py = -uy * 4, ux * 4
    return (
        f'<polygon points="{x2:.1f},{y2:.1f} {bx + px:.1f},{by + py:.1f} {bx - px:.1f},{by - py:.1f}" fill="{color}"/>'
    )


def ladder_svg(result: CaseResult) -> str:
    """The case's packet exchange as an inline SVG ladder ("" when no packet was exchanged)."""
    rows = ladder_rows(result)
    if not rows:
        return ""
    multi = len({r.conn for r in rows} | set(result.case.connections())) > 1
    time_x = 84.0  # right edge of the time column
    conn_x = 94.0
    left = 180.0 if multi else 120.0
    right = left + 470.0
    note_x = right + 14
    note_chars = int((_LADDER_W - note_x) / 7.2)
    top = 46.0
    ys: list[float] = []
    y = top
    for i, r in enumerate(rows):
        y += _row_step(r.offset - rows[i - 1].offset) if i else _ROW_MIN
        ys.append(y)
    height = ys[-1] + 26
    title = f"ladder of {result.case.id}: {len(rows)} segments"
    out = [
        f'<svg class="ladder" xmlns="http://www.w3.org/2000/svg" width="{_LADDER_W}" height="{height:.0f}" '
        f'viewBox="0 0 {_LADDER_W} {height:.0f}" role="img" aria-label="{_e(title)}" '
        'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">',
        f"<title>{_e(title)}</title>",
        _svg_text(time_x, 18, "time", anchor="end", fill=_MUTED),
        _svg_text(left, 18, "us", anchor="middle", fill=_OURS, extra=' font-weight="bold"'),
        _svg_text(right, 18, "target", anchor="middle", fill=_THEIRS, extra=' font-weight="bold"'),
        f'<line x1="{left}" y1="26" x2="{left}" y2="{height - 8:.0f}" stroke="{_OURS}" stroke-width="2"/>',
        f'<line x1="{right}" y1="26" x2="{right}" y2="{height - 8:.0f}" stroke="{_THEIRS}" stroke-width="2"/>',
    ]
    if multi:
        out.append(_svg_text(conn_x, 18, "conn", fill=_MUTED))
    halo = ' paint-order="stroke" stroke="#ffffff" stroke-width="4" stroke-linejoin="round"'
    for i, (r, y_end) in enumerate(zip(rows, ys, strict=True)):
        failed = r.ok is False
        slope = y_end - (ys[i - 1] if i else top) - _ROW_MIN + 4  # the time since the previous row, compressed
        y_start = y_end - max(slope, 3.0)
        out.append('<g class="row{}">'.format(" failed" if failed else ""))
        out.append(_svg_text(time_x, y_end + 4, r.time, anchor="end", fill=_BAD if failed else _MUTED))
        if multi:
            out.append(_svg_text(conn_x, y_end + 4, _clip(r.conn, 10), fill=_MUTED))
        if r.outgoing is None:  # a missing reply: a dashed line across, no direction
            out.append(
                f'<line x1="{left}" y1="{y_end:.1f}" x2="{right}" y2="{y_end:.1f}" stroke="{_BAD}" '
                'stroke-width="2" stroke-dasharray="6 4"/>'
            )
            out.append(_svg_text((left + right) / 2, y_end - 5, r.label, anchor="middle", fill=_BAD, extra=halo))
        else:
            color = _BAD if failed else (_OURS if r.outgoing else _THEIRS)
            x1, x2 = (left, right) if r.outgoing else (right, left)
            dash = ' stroke-dasharray="5 3"' if r.provisional else ""
            width = 2.5 if failed else 1.6
            out.append(
                f'<line x1="{x1}" y1="{y_start:.1f}" x2="{x2}" y2="{y_end:.1f}" stroke="{color}" '
                f'stroke-width="{width}"{dash}/>'
            )
            out.append(_arrowhead(x1, y_start, x2, y_end, color))
            # Above the line where the text starts (the line rises towards its start, both ways).
            half_text = len(r.label) * 3.6 + 4
            base = (y_start + y_end) / 2 - (y_end - y_start) * half_text / (right - left) - 5
            weight = ' font-weight="bold"' if failed else ""
            out.append(_svg_text((left + right) / 2, base, r.label, anchor="middle", fill=color, extra=halo + weight))
        if r.note:
            fill = _BAD if failed else (_GOOD if r.ok else _MUTED)
            note = _svg_text(note_x, y_end + 4, _clip(r.note, note_chars), fill=fill)
            if len(r.note) > note_chars:
                note = note.replace("</text>", f"<title>{_e(r.note)}</title></text>")
            out.append(note)
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------- retransmissions
@dataclass(frozen=True)
class Retransmission:
    """One retransmission of a withhold step: expected and measured gaps since the previous event."""

    number: int  # 1-based
    expected: float | None  # None: beyond the schedule (during the give-up silence)
    tolerance: float
    measured: float | None  # None: it did not come (or the case ended before)
    ok: bool | None  # None: not reached


@dataclass(frozen=True)
class ScheduleCheck:
    step: WithholdStep
    schedule: Schedule
    points: tuple[Retransmission, ...]
    silence: float | None  # the give-up silence with its tolerance, when the step expects it


def _is_event(entry: TraceEntry) -> bool:
    """What the engine counts time from: a segment we sent (not the cleanup), or one a step accepted."""
    if entry.outgoing:
        return not entry.note.startswith("cleanup")
    return entry.ok is True


def _measured(trace: Sequence[TraceEntry], w: WithholdStep) -> list[tuple[float | None, bool]]:
    """(gap since the previous event, matched) of each segment the target sent under step `w`."""
    tag = f"line {w.line}"
    out: list[tuple[float | None, bool]] = []
    last: float | None = None
    for e in trace:
        if not e.outgoing and e.conn == w.conn and (e.note == tag or e.note.startswith(tag + ":")):
            out.append((e.time - last if last is not None else None, e.ok is True))
        if _is_event(e):
            last = e.time
    return out


def schedule_checks(result: CaseResult) -> list[ScheduleCheck]:
    """The retransmissions of every withhold step the case reached, measured against its schedule."""
    verdict = result.verdict
    if verdict is None:
        return []
    case = result.case
    failure = verdict.failure
    withholds = [s for s in case.steps if isinstance(s, WithholdStep)]
    checks = []
    for w, schedule in zip(withholds, verdict.schedules, strict=False):  # schedules of the withholds reached
        intervals = schedule.intervals[: w.count] if w.count else schedule.intervals
        measured = _measured(verdict.trace, w)
        missing_here = failure is not None and failure.kind == "missing" and failure.line == w.line
        points = []
        for i, gap in enumerate(intervals):
            if i < len(measured):
                points.append(Retransmission(i + 1, gap, case.tolerance.of(gap), *measured[i]))
            else:
                first_missing = i == len(measured) and missing_here
                points.append(
                    Retransmission(i + 1, gap, case.tolerance.of(gap), None, False if first_missing else None)
                )
        for j, (gap_seen, _) in enumerate(measured[len(intervals) :], len(intervals) + 1):
            points.append(Retransmission(j, None, 0.0, gap_seen, False))  # one the schedule did not have
        silence = schedule.give_up + case.tolerance.of(schedule.give_up) if w.then_silence else None
        checks.append(ScheduleCheck(w, schedule, tuple(points), silence))
    return checks


def _short_duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:g} s" if abs(seconds - round(seconds, 2)) < 1e-9 else f"{seconds:.2f} s"
    return f"{seconds * 1000:.0f} ms"


def schedule_svg(check: ScheduleCheck) -> str:
    """Measured gaps against the expected ones and their tolerance band, log scale."""
    pts = check.points
    values = [v for p in pts for v in (p.expected, p.measured) if v is not None and v > 0]
    values += [p.expected + p.tolerance for p in pts if p.expected is not None]
    values += [p.expected - p.tolerance for p in pts if p.expected is not None and p.expected > p.tolerance]
    if not pts or not values:
        return ""
    lo, hi = min(values) / 1.4, max(values) * 1.4
    w, h = 680.0, 300.0
    pl, pr, pt, pb = 70.0, 20.0, 34.0, 46.0
    n = len(pts)

    def x(number: float) -> float:
        return pl + (number - 0.5) * (w - pl - pr) / n

    def y(seconds: float) -> float:
        s = min(max(seconds, lo), hi)
        return pt + (math.log(hi) - math.log(s)) / (math.log(hi) - math.log(lo)) * (h - pt - pb)

    name = check.schedule.name
    title = f"retransmissions of {check.step.retransmits} against schedule {name}"
    out = [
        f'<svg class="schedule-plot" xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" role="img" aria-label="{_e(title)}" '
        'font-family="DejaVu Sans, sans-serif" font-size="11">',
        f"<title>{_e(title)}</title>",
        f'<rect x="{pl}" y="{pt}" width="{w - pl - pr}" height="{h - pt - pb}" fill="none" stroke="#d0d7de"/>',
    ]
    band_w = (w - pl - pr) / n * 0.6
    ticks = sorted({p.expected for p in pts if p.expected is not None})
    for t in ticks:
        out.append(f'<line x1="{pl}" y1="{y(t):.1f}" x2="{w - pr}" y2="{y(t):.1f}" stroke="#eaeef2"/>')
        out.append(_svg_text(pl - 6, y(t) + 4, _short_duration(t), anchor="end", fill=_MUTED))
    for p in pts:
        if p.expected is None:
            continue
        top, bottom = y(p.expected + p.tolerance), y(max(p.expected - p.tolerance, lo))
        out.append(
            f'<rect x="{x(p.number) - band_w / 2:.1f}" y="{top:.1f}" width="{band_w:.1f}" '
            f'height="{bottom - top:.1f}" fill="#dafbe1" stroke="#8fd19e"/>'
        )
    expected = [p for p in pts if p.expected is not None]
    if expected:
        line = " ".join(f"{x(p.number):.1f},{y(p.expected or 0):.1f}" for p in expected)
        out.append(
            f'<polyline points="{line}" fill="none" stroke="{_GOOD}" stroke-width="1.5" stroke-dasharray="5 3"/>'
        )
        out.extend(
            f'<line x1="{x(p.number) - band_w / 2:.1f}" y1="{y(p.expected or 0):.1f}" '
            f'x2="{x(p.number) + band_w / 2:.1f}" y2="{y(p.expected or 0):.1f}" stroke="{_GOOD}" stroke-width="2"/>'
            for p in expected
        )
    for p in pts:
        cx = x(p.number)
        out.append(_svg_text(cx, h - pb + 16, str(p.number), anchor="middle", fill=_MUTED))
        if p.measured is not None:
            color = _OURS if p.ok else _BAD
            out.append(
                f'<circle cx="{cx:.1f}" cy="{y(p.measured):.1f}" r="5" fill="{color}" stroke="#fff" stroke-width="1">'
                f"<title>{_e(f'retransmission {p.number}: {format_duration(p.measured)}')}</title></circle>"
            )
        elif p.ok is False:  # expected, never came
            cy = y(p.expected or lo)
            out.append(_svg_text(cx, cy + 5, FAIL_MARK, anchor="middle", fill=_BAD, extra=' font-size="16"'))
            out.append(_svg_text(cx, cy - 10, "none", anchor="middle", fill=_BAD))
    out.append(_svg_text(pl, 14, f"gap since the previous segment (log scale), schedule {name}", fill=_THEIRS))
    legend_y = 27
    out.append(f'<rect x="{pl}" y="{legend_y - 8}" width="14" height="9" fill="#dafbe1" stroke="#8fd19e"/>')
    out.append(_svg_text(pl + 18, legend_y, "expected ± tolerance", fill=_MUTED))
    out.append(f'<circle cx="{pl + 160}" cy="{legend_y - 4}" r="4" fill="{_OURS}"/>')
    out.append(_svg_text(pl + 168, legend_y, "measured", fill=_MUTED))
    out.append(f'<circle cx="{pl + 240}" cy="{legend_y - 4}" r="4" fill="{_BAD}"/>')
    out.append(_svg_text(pl + 248, legend_y, "measured, failed", fill=_MUTED))
    out.append(_svg_text((pl + w - pr) / 2, h - 8, "retransmission", anchor="middle", fill=_MUTED))
    out.append("</svg>")
    return "".join(out)


def _schedule_block(check: ScheduleCheck) -> str:
    s = check.schedule
    w = check.step
    rows = []
    for p in check.points:
        if p.expected is not None:
            exp = format_duration(p.expected)
            tol = f"± {format_duration(p.tolerance)}"
        else:
            exp, tol = "none (the schedule had given up)", ""
        measured = format_duration(p.measured) if p.measured is not None else "—"
        off = format_duration(p.measured - p.expected) if p.measured is not None and p.expected is not None else ""
        verdict = {True: f"{OK_MARK} in band", False: f"{FAIL_MARK} failed", None: "not reached"}[p.ok]
        if p.ok is False and p.measured is None:
            verdict = f"{FAIL_MARK} did not come"
        cls = ' class="bad"' if p.ok is False else ""
        rows.append(
            f'<tr{cls}><td class="num">{p.number}</td><td class="num">{_e(exp)}</td>'
            f'<td class="num">{_e(tol)}</td><td class="num">{_e(measured)}</td>'
            f'<td class="num">{_e(off)}</td><td>{_e(verdict)}</td></tr>'
        )
    head = "".join(
        f'<th class="num">{_e(h)}</th>' for h in ("#", "expected gap", "tolerance", "measured gap", "off by")
    )
    table = (
        f'<table class="retransmissions"><thead><tr>{head}<th>verdict</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )
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
    return f'<figure class="schedule">{schedule_svg(check)}<figcaption>{_e(caption)}</figcaption></figure>{table}'


# ------------------------------------------------------------------ a case
def _references(result: CaseResult) -> str:
    cited = failure_reference(result) if result.status == "failed" else None
    rows = []
    for ref in result.case.refs:
        cls = ' class="cited"' if cited is not None and ref == cited else ""
        rows.append(
            f"<tr{cls}><td><code>{_e(ref.id)}</code></td><td>{_e(ref.doc)}</td><td>{_e(ref.level)}</td>"
            f"<td>{_e(ref.says)}</td></tr>"
        )
    caption = "the highlighted reference is the one the failure cites" if cited is not None else ""
    return (
        '<h3>References</h3><table class="refs">'
        + (f"<caption>{_e(caption)}</caption>" if caption else "")
        + "<thead><tr><th>id</th><th>document</th><th>level</th><th>says</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _target(result: CaseResult) -> str:
    target = result.target
    if target is None:
        return '<h3>Target</h3><p class="meta">none (the case did not reach a target)</p>'
    used: dict[str, list[str]] = {}
    for s in result.verdict.schedules if result.verdict is not None else []:
        for name in s.params_used:
            used.setdefault(name, []).append(s.name)
    rows = [
        [
            f"<code>{_e(name)}</code>",
            f'<span class="mono">{_e(_param_value(p))}</span>',
            _e(p.origin),
            _e(p.source),
            *([_e(", ".join(f"schedule {s}" for s in dict.fromkeys(used.get(name, []))))] if used else []),
        ]
        for name, p in target.params.items()
    ]
    head = ("parameter", "value", "origin", "source", *(("used by",) if used else ()))
    sysctls = ", ".join(f"{k}={v}" for k, v in sorted(result.case.sysctls.items()))
    own = f'<p class="meta">this case\'s own target sets {_e(sysctls)}</p>' if sysctls else ""
    return f"<h3>Target</h3><p>{_e(target.description)}</p>{own}" + _table(head, rows, cls="params")


def _steps(result: CaseResult) -> str:
    verdict = result.verdict
    if verdict is None or not verdict.steps:
        return ""
    rows = []
    for s in verdict.steps:
        cls = ' class="bad"' if s.status == "failed" else ""
        rows.append(
            f'<tr{cls}><td class="num">{s.line}</td><td>{_e(s.description)}</td><td>{_e(s.status)}</td>'
            f"<td>{_e(s.timing)}</td></tr>"
        )
    return (
        '<h3>Steps</h3><table class="steps"><thead><tr><th class="num">line</th><th>step</th><th>status</th>'
        "<th>timing</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _failure(result: CaseResult) -> str:
    case = result.case
    failure = result.verdict.failure if result.verdict is not None else None
    if result.status == "error":
        return (
            '<div class="failure"><h3>Harness error (not a verdict about the target)</h3>'
            f"<pre>{_e(result.message or 'unknown error')}</pre></div>"
        )
    if result.passed and failure is None:
        return ""
    out = ['<div class="failure expected">' if result.passed else '<div class="failure">']
    if case.expect_failure:
        out.append(
            f"<p>self-test: this case must fail with a message containing <code>{_e(case.expect_failure)}</code>; "
            f"raw verdict: {_e(result.raw_status or 'unknown')}</p>"
        )
    if failure is None:
        out.append(f"<h3>Failure</h3><pre>{_e(result.message or 'no details')}</pre></div>")
        return "".join(out)
    out.append("<h3>Expected failure (self-test)</h3>" if result.passed else "<h3>Failure</h3>")
    out.append(f"<pre>{_e(failure.render())}</pre>")
    if failure.diffs:
        bad = ' class="bad"'
        rows = "".join(
            f"<tr{'' if d.ok else bad}><td>{'' if d.ok else FAIL_MARK}</td><td>{_e(d.field)}</td>"
            f'<td class="mono">{_e(d.expected)}</td><td class="mono">{_e(d.observed)}</td></tr>'
            for d in failure.diffs
        )
        out.append(
            '<table class="diff"><caption>every checked field of the segment</caption><thead><tr><th></th>'
            f"<th>field</th><th>expected</th><th>observed</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    out.append("</div>")
    return "".join(out)


def _pcap_link(result: CaseResult, html_dir: Path, pcap_folder: Path | None) -> str:
    if pcap_folder is None:
        return ""
    pcap = Path(pcap_folder) / pcap_name(result)
    if not pcap.is_file():
        return ""
    rel = Path(os.path.relpath(pcap.resolve(), html_dir.resolve())).as_posix()
    return f'<p>packets: <a class="pcap" href="{_e(quote(rel))}">{_e(rel)}</a> (pcap, for Wireshark)</p>'


def _case(result: CaseResult, slug: str, html_dir: Path, pcap_folder: Path | None) -> str:
    case = result.case
    out = [f'<section class="case" id="{_e(slug)}">']
    out.append(f"<h2>{_badge(result.status)} <code>{_e(case.id)}</code></h2>")
    out.append(f"<p><strong>{_e(case.title)}</strong></p>")
    meta = [
        f"group {case.group}",
        f"duration {format_duration(result.duration)}",
        f"file {case.path}",
        f"service {case.service}",
        f"tolerance {case.tolerance}",
    ]
    if case.tags:
        meta.append("tags " + ", ".join(case.tags))
    out.append('<p class="meta">' + " · ".join(_e(m) for m in meta) + "</p>")
    if case.description:
        out.append(f"<p>{_e(' '.join(case.description.split()))}</p>")
    out.append(_references(result))
    out.append(_target(result))
    svg = ladder_svg(result)
    out.append("<h3>Packet exchange</h3>")
    if svg:
        numbering = "\n".join(line.strip() for line in numbering_lines(result))
        out.append(f'<figure class="ladder"><figcaption class="numbering">{_e(numbering)}</figcaption>{svg}</figure>')
    else:
        out.append('<p class="meta">(no packets exchanged)</p>')
    out.append(_pcap_link(result, html_dir, pcap_folder))
    checks = schedule_checks(result)
    if checks:
        out.append("<h3>Retransmission schedule</h3>")
        out.extend(_schedule_block(c) for c in checks)
    out.append(_failure(result))
    out.append(_steps(result))
    out.append('<p class="meta"><a href="#summary">back to the summary</a></p></section>')
    return "".join(out)


# ----------------------------------------------------------------- document
def html_report(results: Sequence[CaseResult], html_dir: Path, pcap_folder: Path | None, title: str = "") -> str:
    """The report as one HTML document; pcap links are relative to `html_dir`."""
    slugs = [_slug(i, r.case.id) for i, r in enumerate(results, 1)]
    heading = title or "TCP conformance report"
    stamp = datetime.now().isoformat(sep=" ", timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(heading)}</title><style>{CSS}</style></head><body>",
        f'<header><h1>{_e(heading)}</h1><p class="meta">generated {_e(stamp)}; seq/ack are relative to the '
        "ISNs; times count from the first packet of each case</p></header>",
        _summary(results, slugs),
    ]
    parts.extend(_case(r, slug, html_dir, pcap_folder) for r, slug in zip(results, slugs, strict=True))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(results: list[CaseResult], path: Path, pcap_folder: Path | None) -> None:
    """Write the HTML report of `results` to `path`, creating its parent folders.

    Each case links to ``pcap_folder/<id>.pcap`` (relative to the file) when that pcap exists.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(results, path.parent, pcap_folder), encoding="utf-8")
