"""Withheld answers and the target's retransmissions, judged gap by gap (see
:class:`~conformance.core.steps.ActiveRetrans`). Part of the sans-IO engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .matching import compare, matches
from .model import Reference, SegmentPattern, WithholdStep
from .schedules import SCHEDULES
from .steps import DELIVERY_GRACE, ActiveRetrans
from .timing import Window
from .values import format_duration

if TYPE_CHECKING:
    from .engine import Dialogue


def expand_withhold(d: Dialogue, w: WithholdStep) -> None:
    conn = d.conns[w.conn]
    schedule = SCHEDULES[w.schedule](d.params, conn.rtt)
    d.schedules.append(schedule)
    d._last_give_up = schedule.give_up
    count = min(w.count, len(schedule.intervals)) if w.count else len(schedule.intervals)
    d._pending.appendleft(ActiveRetrans(w, schedule, count))


def retrans_expected(d: Dialogue, r: ActiveRetrans) -> float:
    """The gap expected before the next retransmission, from what was observed so far."""
    iv = r.schedule.intervals
    i = r.seen
    if i == 0 or r.prev_gap is None:
        return iv[0]
    if i < len(iv):
        return r.prev_gap * iv[i] / iv[i - 1]
    return r.prev_gap * r.schedule.give_up / iv[-1]  # beyond the count: when it should give up


def retrans_wait(d: Dialogue, r: ActiveRetrans) -> float:
    """How long to wait for the next one before calling it missing (generous: judged after)."""
    expected = retrans_expected(d, r)
    tol = d.case.tolerance.of(expected)
    if r.seen >= r.count:
        return expected + tol  # the give-up silence
    return (3 if r.seen == 0 else 2) * expected + tol


def retrans_ref(d: Dialogue, r: ActiveRetrans, what: str) -> Reference | None | bool:
    param = r.schedule.initial_param if what == "initial" else r.schedule.count_param
    if param is None or param not in d.params:
        return True
    return d.params[param].reference()


def run_retrans(d: Dialogue, r: ActiveRetrans, now: float) -> bool:
    w, sched = r.step, r.schedule
    tol = d.case.tolerance
    ref_time = d.trace[d._last_event].time if d._last_event >= 0 else now
    n = r.count
    label = f"withhold {w.what}: retransmission {r.seen + 1}/{n} of {w.retransmits}"
    note = f"schedule {sched.name}: {sched.derivation}"
    taken = d._take(w.conn)
    if taken is None:
        if now <= ref_time + retrans_wait(d, r) + DELIVERY_GRACE:
            return False
        if r.seen >= r.count:  # the silence after the last one held: done
            if w.then_silence:
                d._record(w.line, f"withhold {w.what}: no retransmission after the last one", "passed", now)
            d._current = None
            return True
        waited = format_duration(now - ref_time)
        if r.seen == 0:
            d._fail(
                w,
                label,
                "missing",
                f"the target never retransmitted {w.retransmits} (waited {waited})",
                now,
                note=note,
            )
        else:
            d._fail(
                w,
                label,
                "missing",
                f"only {r.seen} retransmission(s) came, the schedule has {n} (nothing in {waited} after the last one)",
                now,
                note=note,
                ref=retrans_ref(d, r, "count"),
            )
        d._current = None
        return True
    index, seg = taken
    entry = d.trace[index]
    conn = d._by_port[seg.dport]
    gap = seg.time - ref_time
    diffs = tuple(compare(SegmentPattern(same_as=w.retransmits), seg, d._conn_names(conn), d.labelled))
    if r.seen >= r.count:
        # more than the documented count: a deviation of the count (or, without then_silence, not ours)
        if not w.then_silence:
            d._inbox.appendleft(taken)
            d._current = None
            return True
        entry.ok, entry.note = False, f"line {w.line}: one more than the schedule"
        r.extra += 1
        if d._fail(
            w,
            f"withhold {w.what}: no retransmission after the last one",
            "unexpected",
            f"a retransmission beyond the schedule's {n} came {format_duration(gap)} after the last "
            f"one (expected silence for {format_duration(retrans_expected(d, r))})",
            now,
            diffs,
            seg.time,
            note=note,
            ref=retrans_ref(d, r, "count"),
        ):
            return True
        d._last_event = index
        r.prev_gap = gap
        if r.extra > 2 * max(1, n):
            d._current = None
        return True
    if not matches(diffs):
        entry.ok, entry.note = False, f"line {w.line}: not a retransmission of {w.retransmits}"
        if d._fail(
            w,
            label,
            "mismatch",
            f"the target sent {seg.flags} seq={seg.seq} ack={seg.ack} len={len(seg.payload)} "
            f"{format_duration(gap)} after the previous event, not a retransmission of {w.retransmits}",
            now,
            diffs,
            seg.time,
            note=note,
        ):
            return True
    expected = retrans_expected(d, r)
    window = Window("after", expected)
    problem = window.check(gap, tol)
    if r.seen == 0:
        basis = f"the initial value {format_duration(expected)} ({sched.initial_param})"
        what = "initial"
    else:
        basis = (
            f"{format_duration(r.prev_gap or 0)} (the previous gap) x "
            f"{sched.intervals[r.seen] / sched.intervals[r.seen - 1]:g}"
        )
        what = "backoff"
    if problem is not None:
        entry.ok, entry.note = False, f"line {w.line}: {problem.split(':')[0]}"
        if d._fail(
            w,
            label + f" after {basis}",
            "timing",
            problem,
            now,
            diffs,
            seg.time,
            note=note,
            ref=retrans_ref(d, r, "initial") if what == "initial" else True,
        ):
            return True
    else:
        entry.ok, entry.note = True, f"line {w.line}"
        d._record(
            w.line,
            f"{label} after {basis}",
            "passed",
            seg.time,
            diffs,
            f"{format_duration(gap)} after the previous event",
        )
    d._last_event = index
    r.seen += 1
    r.prev_gap = gap
    if r.seen >= r.count and not w.then_silence:
        d._current = None
    return True
