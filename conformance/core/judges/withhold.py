"""The judge of ``withhold``: we send nothing while the target retransmits a labelled segment on a schedule.

The schedule is derived from the target's parameters when the step starts
(:data:`~conformance.core.schedules.SCHEDULES`). The first gap is checked against the schedule's initial value
(at that value's level: RFC 6298 §2.1 SHOULD, or a stack's documented default); each later gap against the
previous *observed* gap times the schedule's factor (RFC 6298 §5.5: double the current RTO, at the withhold's
own level); the number of retransmissions against the documented count, and after the last one (``then_silence``)
silence until the target gives up.
"""

from __future__ import annotations

from ..matching import FieldDiff, compare, matches
from ..model import Reference, SegmentPattern, WithholdStep
from ..outcomes import FailureKind, Status
from ..schedules import SCHEDULES, Schedule
from ..segment import Segment
from ..steps import DELIVERY_GRACE
from ..timing import Window
from ..values import format_duration
from .base import ActiveStep, Context, Progress


class Withhold(ActiveStep):
    """A withhold in progress: the target's retransmissions, judged one by one."""

    step: WithholdStep

    def __init__(self, step: WithholdStep) -> None:
        self.step = step
        self.schedule: Schedule | None = None
        self.count = 0  # retransmissions to see
        self.seen = 0
        self.prev_gap: float | None = None
        self.extra = 0  # retransmissions beyond the documented count

    def start(self, ctx: Context, now: float) -> None:
        schedule = SCHEDULES[self.step.schedule](ctx.params, ctx.conns[self.step.conn].rtt)
        ctx.add_schedule(schedule)
        ctx.last_give_up = schedule.give_up
        self.schedule = schedule
        n = len(schedule.intervals)
        self.count = min(self.step.count, n) if self.step.count else n

    @property
    def _schedule(self) -> Schedule:
        assert self.schedule is not None, "a withhold is started before it is advanced"
        return self.schedule

    def expected(self) -> float:
        """The gap expected before the next retransmission, from what was observed so far."""
        iv = self._schedule.intervals
        i = self.seen
        if i == 0 or self.prev_gap is None:
            return iv[0]
        if i < len(iv):
            return self.prev_gap * iv[i] / iv[i - 1]
        return self.prev_gap * self._schedule.give_up / iv[-1]  # beyond the count: when it should give up

    def wait(self, ctx: Context) -> float:
        """How long to wait for the next one before calling it missing (generous: judged after)."""
        expected = self.expected()
        tol = ctx.case.tolerance.of(expected)
        if self.seen >= self.count:
            return expected + tol  # the give-up silence
        return (3 if self.seen == 0 else 2) * expected + tol

    def deadline(self, ctx: Context) -> float | None:
        return ctx.event_time(ctx.last_event) + self.wait(ctx) + DELIVERY_GRACE

    def _ref(self, ctx: Context, what: str) -> Reference | None | bool:
        """The document a check of the count or the initial value answers to: the value's, in the profile."""
        sched = self._schedule
        param = sched.initial_param if what == "initial" else sched.count_param
        if param is None or param not in ctx.params:
            return True
        return ctx.params[param].reference()

    def _label(self) -> str:
        w = self.step
        return f"withhold {w.what}: retransmission {self.seen + 1}/{self.count} of {w.retransmits}"

    def _note(self) -> str:
        return f"schedule {self._schedule.name}: {self._schedule.derivation}"

    def advance(self, ctx: Context, now: float) -> Progress:
        ref_time = ctx.last_event_time(default=now)
        taken = ctx.take(self.step.conn)
        if taken is None:
            if now <= ref_time + self.wait(ctx) + DELIVERY_GRACE:
                return Progress.WAIT
            self._nothing_came(ctx, now, ref_time)
            return Progress.DONE
        index, seg = taken
        gap = seg.time - ref_time
        pattern = SegmentPattern(same_as=self.step.retransmits)
        diffs = tuple(compare(pattern, seg, ctx.names_for(ctx.conn_of(seg)), ctx.labelled))
        if self.seen >= self.count:
            return self._beyond_the_count(ctx, now, index, seg, gap, diffs)
        return self._retransmission(ctx, now, index, seg, gap, diffs)

    def _nothing_came(self, ctx: Context, now: float, ref_time: float) -> None:
        w = self.step
        if self.seen >= self.count:  # the silence after the last one held: done
            if w.then_silence:
                ctx.record(w.line, f"withhold {w.what}: no retransmission after the last one", Status.PASSED, now)
            return
        waited = format_duration(now - ref_time)
        if self.seen == 0:
            message = f"the target never retransmitted {w.retransmits} (waited {waited})"
            ctx.fail(w, self._label(), FailureKind.MISSING, message, now, note=self._note())
            return
        message = (
            f"only {self.seen} retransmission(s) came, the schedule has {self.count} "
            f"(nothing in {waited} after the last one)"
        )
        ctx.fail(w, self._label(), FailureKind.MISSING, message, now, note=self._note(), ref=self._ref(ctx, "count"))

    def _beyond_the_count(
        self, ctx: Context, now: float, index: int, seg: Segment, gap: float, diffs: tuple[FieldDiff, ...]
    ) -> Progress:
        """More than the documented count: a deviation of the count (or, without then_silence, not ours)."""
        w = self.step
        if not w.then_silence:
            ctx.put_back((index, seg))
            return Progress.DONE
        entry = ctx.entry(index)
        entry.ok, entry.note = False, f"line {w.line}: one more than the schedule"
        self.extra += 1
        if ctx.fail(
            w,
            f"withhold {w.what}: no retransmission after the last one",
            FailureKind.UNEXPECTED,
            f"a retransmission beyond the schedule's {self.count} came {format_duration(gap)} after the last "
            f"one (expected silence for {format_duration(self.expected())})",
            now,
            diffs,
            seg.time,
            note=self._note(),
            ref=self._ref(ctx, "count"),
        ):
            return Progress.DONE
        ctx.mark_event(index)
        self.prev_gap = gap
        return Progress.DONE if self.extra > 2 * max(1, self.count) else Progress.AGAIN

    def _retransmission(
        self, ctx: Context, now: float, index: int, seg: Segment, gap: float, diffs: tuple[FieldDiff, ...]
    ) -> Progress:
        w, sched = self.step, self._schedule
        entry = ctx.entry(index)
        fdiffs = diffs
        if not matches(fdiffs):
            entry.ok, entry.note = False, f"line {w.line}: not a retransmission of {w.retransmits}"
            message = (
                f"the target sent {seg.flags} seq={seg.seq} ack={seg.ack} len={len(seg.payload)} "
                f"{format_duration(gap)} after the previous event, not a retransmission of {w.retransmits}"
            )
            if ctx.fail(w, self._label(), FailureKind.MISMATCH, message, now, fdiffs, seg.time, self._note()):
                return Progress.DONE
        expected = self.expected()
        problem = Window("after", expected).check(gap, ctx.case.tolerance)
        if self.seen == 0:
            basis = f"the initial value {format_duration(expected)} ({sched.initial_param})"
            ref = self._ref(ctx, "initial")
        else:
            factor = sched.intervals[self.seen] / sched.intervals[self.seen - 1]
            basis = f"{format_duration(self.prev_gap or 0)} (the previous gap) x {factor:g}"
            ref = True
        if problem is not None:
            entry.ok, entry.note = False, f"line {w.line}: {problem.split(':')[0]}"
            if ctx.fail(
                w,
                self._label() + f" after {basis}",
                FailureKind.TIMING,
                problem,
                now,
                fdiffs,
                seg.time,
                note=self._note(),
                ref=ref,
            ):
                return Progress.DONE
        else:
            entry.ok, entry.note = True, f"line {w.line}"
            timing = f"{format_duration(gap)} after the previous event"
            ctx.record(w.line, f"{self._label()} after {basis}", Status.PASSED, seg.time, fdiffs, timing)
        ctx.mark_event(index)
        self.seen += 1
        self.prev_gap = gap
        return Progress.DONE if self.seen >= self.count and not w.then_silence else Progress.AGAIN
