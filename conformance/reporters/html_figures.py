"""What the HTML report's two drawings show, computed: the ladder and the retransmission plot.

Pure functions from a :class:`~conformance.core.results.CaseResult` to view
models (frozen dataclasses of numbers and text); the templates
``ladder.svg.j2`` and ``schedule.svg.j2`` turn them into SVG. Colours are
named by role (``ours``, ``theirs``, ``bad``, ``good``, ``muted``); the
templates map roles to colours.

* The **ladder**: two lifelines, ``us`` and ``target``, one arrow per segment
  of the trace. Time runs down on a compressed scale (milliseconds and tens of
  seconds both fit); each arrow ends at the height of its capture time and
  starts a little below the previous arrow, so its slope grows with the time
  since the previous segment.
* The **retransmission plot** of a ``withhold`` step: the gap of each
  retransmission since the previous event (what the engine judges), against
  the expected gap of the schedule and its tolerance band, on a logarithmic
  scale (the gaps double).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.engine import TraceEntry
from ..core.model import WithholdStep
from ..core.results import CaseResult
from ..core.schedules import Schedule
from ..core.timing import Tolerance
from ..core.values import format_duration
from ..core.verdict import Series
from .ladder import LadderRow, ladder_rows

# ------------------------------------------------------------------- ladder
LADDER_WIDTH = 980
_ROW_MIN = 24  # vertical room of a row with no time before it (px)
_TOP = 46.0  # y of the first row's start


def _row_step(gap: float) -> float:
    """Vertical room of a row, growing with the log of the time since the previous row."""
    return _ROW_MIN + 14 * math.log10(1 + max(gap, 0.0) * 1000)


def _arrowhead(x1: float, y1: float, x2: float, y2: float) -> str:
    """The points of the arrowhead at (x2, y2) of the line from (x1, y1)."""
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    bx, by = x2 - 9 * ux, y2 - 9 * uy
    px, py = -uy * 4, ux * 4
    return f"{x2:.1f},{y2:.1f} {bx + px:.1f},{by + py:.1f} {bx - px:.1f},{by - py:.1f}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class LadderArrow:
    """One row of the ladder: an arrow (or, for a missing reply, a dashed line across) and its texts."""

    y: float  # where the arrow ends: the row's time
    y_start: float
    x1: float
    x2: float
    missing: bool  # a missing reply: no direction
    failed: bool
    role: str  # colour of the arrow and its label
    provisional: bool  # a segment we sent whose capture never came back: dashed
    head: str  # the arrowhead's points
    time: str
    conn: str  # clipped
    label: str
    label_x: float
    label_y: float
    note: str  # clipped to the room on the right
    note_full: str  # the whole note when it was clipped, else ""
    note_role: str


@dataclass(frozen=True)
class Ladder:
    title: str
    height: float
    time_x: float  # right edge of the time column
    conn_x: float  # the connection column, when there is more than one connection
    left: float  # our lifeline
    right: float  # the target's lifeline
    note_x: float
    multi: bool
    arrows: tuple[LadderArrow, ...]

    width: int = LADDER_WIDTH


def _row_ends(rows: Sequence[LadderRow]) -> list[float]:
    ys: list[float] = []
    y = _TOP
    for i, r in enumerate(rows):
        y += _row_step(r.offset - rows[i - 1].offset) if i else _ROW_MIN
        ys.append(y)
    return ys


def _arrow(r: LadderRow, y_end: float, y_prev: float, left: float, right: float, note_chars: int) -> LadderArrow:
    failed = r.ok is False
    missing = r.outgoing is None  # a missing reply: a dashed line across, no direction
    slope = y_end - y_prev - _ROW_MIN + 4  # the time since the previous row, compressed
    y_start = y_end if missing else y_end - max(slope, 3.0)
    x1, x2 = (right, left) if r.outgoing is False else (left, right)
    if missing:
        label_y = y_end - 5
    else:  # above the line where the text starts (the line rises towards its start, both ways)
        half_text = len(r.label) * 3.6 + 4
        label_y = (y_start + y_end) / 2 - (y_end - y_start) * half_text / (right - left) - 5
    return LadderArrow(
        y=y_end,
        y_start=y_start,
        x1=x1,
        x2=x2,
        missing=missing,
        failed=failed,
        role="bad" if failed or missing else ("ours" if r.outgoing else "theirs"),
        provisional=r.provisional,
        head="" if missing else _arrowhead(x1, y_start, x2, y_end),
        time=r.time,
        conn=_clip(r.conn, 10),
        label=r.label,
        label_x=(left + right) / 2,
        label_y=label_y,
        note=_clip(r.note, note_chars),
        note_full=r.note if len(r.note) > note_chars else "",
        note_role="bad" if failed else ("good" if r.ok else "muted"),
    )


def ladder_view(result: CaseResult) -> Ladder | None:
    """The case's packet exchange as a ladder (None when no packet was exchanged)."""
    rows = ladder_rows(result)
    if not rows:
        return None
    multi = len({r.conn for r in rows} | set(result.case.connections())) > 1
    left = 180.0 if multi else 120.0
    right = left + 470.0
    note_x = right + 14
    note_chars = int((LADDER_WIDTH - note_x) / 7.2)
    ys = _row_ends(rows)
    arrows = tuple(
        _arrow(r, y, ys[i - 1] if i else _TOP, left, right, note_chars)
        for i, (r, y) in enumerate(zip(rows, ys, strict=True))
    )
    return Ladder(
        title=f"ladder of {result.case.id}: {len(rows)} segments",
        height=ys[-1] + 26,
        time_x=84.0,
        conn_x=94.0,
        left=left,
        right=right,
        note_x=note_x,
        multi=multi,
        arrows=arrows,
    )


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
    """The retransmissions of every withhold step the case reached, as the withhold judge judged them (one source
    of truth for the steps, the table and the plot); from the trace for a verdict that has no series."""
    verdict = result.verdict
    if verdict is None:
        return []
    case = result.case
    if verdict.series:
        steps = {s.line: s for s in case.steps if isinstance(s, WithholdStep)}
        return [
            ScheduleCheck(
                steps[series.line],
                series.schedule,
                _judged_points(series, steps[series.line], case.tolerance),
                _give_up_silence(series) if steps[series.line].then_silence else None,
            )
            for series in verdict.series
            if series.line in steps
        ]
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


def _judged_points(series: Series, w: WithholdStep, tolerance: Tolerance) -> tuple[Retransmission, ...]:
    """The judge's points, and the schedule's later ones as not reached when the case ended before them."""
    points = [Retransmission(p.number, p.expected, p.tolerance, p.measured, p.ok) for p in series.points]
    intervals = series.schedule.intervals[: w.count] if w.count else series.schedule.intervals
    for k in range(len(points), len(intervals)):
        points.append(Retransmission(k + 1, intervals[k], tolerance.of(intervals[k]), None, None))
    return tuple(points)


def _give_up_silence(series: Series) -> float | None:
    """The silence after the last retransmission that showed the target had given up (None: not seen)."""
    return series.silence


def _short_duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:g} s" if abs(seconds - round(seconds, 2)) < 1e-9 else f"{seconds:.2f} s"
    return f"{seconds * 1000:.0f} ms"


@dataclass(frozen=True)
class PlotPoint:
    """One retransmission on the plot: its dot (measured), its cross (expected, never came) or nothing."""

    number: int
    x: float
    y: float | None  # the measured gap's height; None: not measured
    ok: bool | None
    tip: str  # the dot's tooltip
    missing_y: float | None  # where the cross goes, when it was expected and never came


@dataclass(frozen=True)
class Band:
    """The tolerance band around an expected gap, with the mark of the gap itself at `mark_y`, from x to x2."""

    x: float
    x2: float
    y: float
    width: float
    height: float
    mark_y: float


@dataclass(frozen=True)
class Frame:
    """The size of the plot and the margins around its plotting area."""

    width: float = 680.0
    height: float = 300.0
    left: float = 70.0
    right: float = 20.0
    top: float = 34.0
    bottom: float = 46.0


@dataclass(frozen=True)
class SchedulePlot:
    title: str
    name: str  # the schedule's
    frame: Frame
    ticks: tuple[tuple[float, str], ...]  # (y, label) of each expected gap
    bands: tuple[Band, ...]
    expected_line: str  # the points of the line through the expected gaps ("" when none)
    points: tuple[PlotPoint, ...]


@dataclass(frozen=True)
class _Scale:
    """Retransmission number to x, seconds to y on a log scale (clamped to [lo, hi])."""

    lo: float
    hi: float
    n: int
    frame: Frame = Frame()

    def x(self, number: float) -> float:
        f = self.frame
        return f.left + (number - 0.5) * (f.width - f.left - f.right) / self.n

    def y(self, seconds: float) -> float:
        f = self.frame
        s = min(max(seconds, self.lo), self.hi)
        span = math.log(self.hi) - math.log(self.lo)
        return f.top + (math.log(self.hi) - math.log(s)) / span * (f.height - f.top - f.bottom)


def _plot_values(pts: Sequence[Retransmission]) -> list[float]:
    """Every gap the plot must fit: expected, measured, and the edges of the tolerance bands."""
    values = [v for p in pts for v in (p.expected, p.measured) if v is not None and v > 0]
    values += [p.expected + p.tolerance for p in pts if p.expected is not None]
    values += [p.expected - p.tolerance for p in pts if p.expected is not None and p.expected > p.tolerance]
    return values


def _plot_point(p: Retransmission, s: _Scale) -> PlotPoint:
    y = s.y(p.measured) if p.measured is not None else None
    missing_y = s.y(p.expected or s.lo) if p.measured is None and p.ok is False else None
    tip = f"retransmission {p.number}: {format_duration(p.measured)}" if p.measured is not None else ""
    return PlotPoint(p.number, s.x(p.number), y, p.ok, tip, missing_y)


def schedule_plot(check: ScheduleCheck) -> SchedulePlot | None:
    """Measured gaps against the expected ones and their tolerance band (None when there is nothing to plot)."""
    pts = check.points
    values = _plot_values(pts)
    if not pts or not values:
        return None
    s = _Scale(lo=min(values) / 1.4, hi=max(values) * 1.4, n=len(pts))
    band_w = (s.frame.width - s.frame.left - s.frame.right) / s.n * 0.6
    bands = []
    for p in pts:
        if p.expected is not None:
            top, bottom = s.y(p.expected + p.tolerance), s.y(max(p.expected - p.tolerance, s.lo))
            x = s.x(p.number)
            bands.append(Band(x - band_w / 2, x + band_w / 2, top, band_w, bottom - top, s.y(p.expected)))
    ticks = sorted({p.expected for p in pts if p.expected is not None})
    line = " ".join(f"{s.x(p.number):.1f},{s.y(p.expected):.1f}" for p in pts if p.expected is not None)
    return SchedulePlot(
        title=f"retransmissions of {check.step.retransmits} against schedule {check.schedule.name}",
        name=check.schedule.name,
        frame=s.frame,
        ticks=tuple((s.y(t), _short_duration(t)) for t in ticks),
        bands=tuple(bands),
        expected_line=line,
        points=tuple(_plot_point(p, s) for p in pts),
    )
