"""The judge of ``withhold``: we send nothing while the target retransmits a labelled segment on a schedule.

The schedule is derived from the target's parameters when the step starts
(:data:`~conformance.core.schedules.SCHEDULES`), and the series is judged as a whole against its law:

* the **first gap** against the schedule's initial value, at that value's level (RFC 6298 §2.1 SHOULD under
  ``rfc``, a stack's documented default under its profile). The wait for it is long enough for any plausible
  first retransmission (:data:`~conformance.core.schedules.PLAUSIBLE_INITIAL_RTO`): one that comes later than
  expected is *late*, at the value's level, never "missing";
* **each later gap k** against the law anchored on the initial value: ``initial x intervals[k] / intervals[0]``
  (RFC 6298 §5.5, doubling; MUST-19). The anchor is the documented initial value when the first gap matched it,
  else the observed first gap (a stack with another initial RTO is judged for its backoff, not again for its
  initial value). Gaps are never judged against the previous *observed* gap, which let a slow drift pass;
* every tolerance is the case's, widened by the target's timer granularity (a profile value with its source:
  a stack on a 500 ms tick fires up to a tick off);
* the **count** against the documented retries, and, under a profile that documents one, the **persistence**
  (how long the target kept trying: RFC 9293 §3.8.3, R2 >= 100 s, and >= 3 min for a SYN);
* what the target sends when it **gives up** (a RST) is judged on its own (``<SEQ=SND.NXT><CTL=RST>``, RFC 9293
  §3.10.4), not counted as a retransmission, and ends the withhold at once.

After a deviation the judge keeps watching until the series ends (bounded by the schedule's give-up time plus
tolerance), so the report has every gap, the give-up time and the give-up segment; the case fails when the
withhold is done. The whole series goes to the report as a :class:`~conformance.core.verdict.Series`.
"""

from __future__ import annotations

from ..checks import Check
from ..matching import FieldDiff, compare, matches
from ..model import Reference, SegmentPattern, Step, WithholdStep
from ..outcomes import FailureKind, Level, Status
from ..schedules import PLAUSIBLE_INITIAL_RTO, SCHEDULES, Schedule
from ..segment import Segment, seq_add
from ..steps import DELIVERY_GRACE
from ..timing import Tolerance, Window
from ..values import format_duration
from ..verdict import Retransmission, Series
from .base import ActiveStep, Context, Progress, blind, only_bad_checksums, stale

#: RFC 9293 §3.10.4: a connection aborted (by its user, or by a timeout that gives up) sends a reset at SND.NXT.
GIVE_UP_RST = Reference(
    id="ABORT",
    doc="RFC 9293 §3.10.4",
    level=Level.MUST,
    says="ABORT in SYN-RECEIVED, ESTABLISHED ... : send a reset segment <SEQ=SND.NXT><CTL=RST>",
)


class Withhold(ActiveStep):
    """A withhold in progress: the target's retransmissions, judged against the schedule's law."""

    step: WithholdStep

    def __init__(self, step: WithholdStep) -> None:
        self.step = step
        self.schedule: Schedule | None = None
        self.series: Series | None = None
        self.count = 0  # retransmissions to see
        self.seen = 0  # retransmissions seen (of the schedule's count, then beyond it)
        self.anchor = 0.0  # the initial value the law is anchored on (see the module docstring)
        self.origin = -1  # trace index of the event the series counts from
        self.failed = False
        self.smallest_gap = float("inf")  # the smallest gap between retransmissions seen so far
        self.first_gap = 0.0  # the first gap observed
        self._last_retransmission = -1  # trace index of the latest retransmission

    # ---------------------------------------------------------------- set-up
    def start(self, ctx: Context, now: float) -> None:
        schedule = SCHEDULES[self.step.schedule](ctx.params, ctx.conns[self.step.conn].rtt)
        ctx.add_schedule(schedule)
        ctx.last_give_up = schedule.give_up
        self.schedule = schedule
        n = len(schedule.intervals)
        self.count = min(self.step.count, n) if self.step.count else n
        self.anchor = schedule.intervals[0]
        self.origin = ctx.last_event
        self.series = Series(self.step.line, schedule, ctx.event_time(self.origin))
        ctx.add_series(self.series)

    @property
    def _schedule(self) -> Schedule:
        assert self.schedule is not None, "a withhold is started before it is advanced"
        return self.schedule

    @property
    def _series(self) -> Series:
        assert self.series is not None, "a withhold is started before it is advanced"
        return self.series

    def _tolerance(self, ctx: Context) -> Tolerance:
        """The case's tolerance widened by the target's timer granularity. A timer cannot fire twice within less
        than its tick, so the granularity is taken as no coarser than the smallest gap this series has shown:
        a stack that retransmits every 5 ms runs no 500 ms tick, whatever the profile allows."""
        granularity = ctx.params.value("timer_granularity") if "timer_granularity" in ctx.params else 0.0
        return ctx.case.tolerance.widened(min(granularity, self.smallest_gap))

    # ---------------------------------------------------------------- the law
    def expected(self, k: int | None = None) -> float:
        """The gap expected before retransmission k (0-based; default: the next), or, past the count, before the
        target gives up."""
        iv = self._schedule.intervals
        k = self.seen if k is None else k
        if k == 0:
            return iv[0]
        if k < self.count:
            return self.anchor * iv[k] / iv[0]
        return self._give_up_gap()

    def wait(self, ctx: Context) -> float:
        """How long after the last event to wait for the next one before concluding (generous: judged after)."""
        tol = self._tolerance(ctx)
        expected = self.expected()
        if self.seen == 0:
            plausible = PLAUSIBLE_INITIAL_RTO + tol.of(PLAUSIBLE_INITIAL_RTO)
            return max(3 * expected + tol.of(expected), plausible)
        if self.seen < self.count:
            return 2 * expected + tol.of(expected)
        return self._give_up_gap() + tol.of(self._give_up_gap())  # the give-up silence

    def _give_up_gap(self) -> float:
        """The gap after the last retransmission of the count until the target gives up, by the law."""
        iv = self._schedule.intervals
        if self.count < len(iv):  # a count below the schedule's: the next retransmission's gap
            return self.anchor * iv[self.count] / iv[0]
        return self.anchor * self._schedule.give_up / iv[0]

    def deadline(self, ctx: Context) -> float | None:
        return ctx.event_time(ctx.last_event) + self.wait(ctx) + DELIVERY_GRACE

    # ---------------------------------------------------------------- documents
    def _value_ref(self, ctx: Context, param: str | None, check: Check) -> Reference | None | bool:
        """A check of a schedule value answers to the step's ref for it, else the value's document in the profile."""
        if check.value in dict(self.step.check_refs) or param is None or param not in ctx.params:
            return ctx.document(self.step, check)
        return ctx.params[param].reference()

    def _fail(
        self,
        ctx: Context,
        now: float,
        description: str,
        kind: FailureKind,
        message: str,
        check: Check,
        *,
        diffs: tuple[FieldDiff, ...] = (),
        time: float | None = None,
        ref: Reference | None | bool = True,
    ) -> None:
        note = f"schedule {self._schedule.name}: {self._schedule.derivation}"
        if ctx.fail(self.step, description, kind, message, now, diffs, time, note, ref, check=check, keep_going=True):
            self.failed = True

    def _label(self, k: int | None = None) -> str:
        w = self.step
        k = self.seen if k is None else k
        return f"withhold {w.what}: retransmission {k + 1}/{self.count} of {w.retransmits}"

    # ---------------------------------------------------------------- advance
    def advance(self, ctx: Context, now: float) -> Progress:
        ref_time = ctx.last_event_time(default=now)
        taken = ctx.take(self.step.conn)
        while taken is not None and stale(ctx, taken, self.step.line):
            taken = ctx.take(self.step.conn)
        if taken is None:
            if now <= ref_time + self.wait(ctx) + DELIVERY_GRACE:
                return Progress.WAIT
            if not blind(ctx, self.step, f"withhold {self.step.what}", now):
                self._silence(ctx, now, ref_time)
            return Progress.DONE
        index, seg = taken
        gap = seg.time - ref_time
        pattern = SegmentPattern(same_as=self.step.retransmits)
        diffs = tuple(compare(pattern, seg, ctx.names_for(ctx.conn_of(seg)), ctx.labelled))
        if matches(diffs):
            if self.seen >= self.count:
                return self._beyond_the_count(ctx, now, index, seg, gap, diffs)
            return self._retransmission(ctx, now, index, seg, gap, diffs)
        if "R" in seg.flags:
            return self._give_up_segment(ctx, now, index, seg)
        if not self.step.then_silence and self.seen >= self.count:
            ctx.put_back((index, seg))  # not ours: the next step's
            return Progress.DONE
        return self._not_a_retransmission(ctx, now, index, seg, gap, diffs)

    # ---------------------------------------------------------------- what came
    def _retransmission(
        self, ctx: Context, now: float, index: int, seg: Segment, gap: float, diffs: tuple[FieldDiff, ...]
    ) -> Progress:
        w, sched, k = self.step, self._schedule, self.seen
        self.smallest_gap = min(self.smallest_gap, gap)
        tol = self._tolerance(ctx)
        expected = self.expected()
        problem = Window("after", expected).check(gap, tol)
        if k == 0:
            basis = f"the initial value {format_duration(expected)} ({sched.initial_param})"
            check, ref = Check.INITIAL, self._value_ref(ctx, sched.initial_param, Check.INITIAL)
            self.anchor = expected if problem is None else gap
            self.first_gap = gap
        else:
            factor = sched.intervals[k] / sched.intervals[0]
            if problem is not None and self.anchor != self.first_gap:
                # The first gap matched the documented value only within its tolerance: the law may as well be
                # anchored on the first gap observed (a stack whose RTO is 1.5 s and doubles exactly).
                other = self.first_gap * factor
                if Window("after", other).check(gap, tol) is None:
                    self.anchor, expected, problem = self.first_gap, other, None
            basis = f"{format_duration(self.anchor)} (the initial value) x {factor:g}"
            check, ref = Check.BACKOFF, True
        entry = ctx.entry(index)
        description = f"{self._label()} after {basis}"
        if problem is not None:
            entry.ok, entry.note = False, f"line {w.line}: {problem.split(':')[0]}"
            self._fail(ctx, now, description, FailureKind.TIMING, problem, check, diffs=diffs, time=seg.time, ref=ref)
        else:
            entry.ok, entry.note = True, f"line {w.line}"
            shown = f"{format_duration(gap)} after the previous event"
            ctx.record(w.line, description, Status.PASSED, seg.time, diffs, shown)
        self._series.points.append(Retransmission(k + 1, expected, tol.of(expected), gap, problem is None, basis))
        ctx.mark_event(index)
        self._last_retransmission = index
        self.seen += 1
        return Progress.DONE if self.seen >= self.count and not self._watching_to_the_end else Progress.AGAIN

    @property
    def _watching_to_the_end(self) -> bool:
        """Watch the series until the target gives up: asked for (then_silence), or after a failure (the case
        ends with this step anyway, and the report should have every gap and the give-up time)."""
        return self.step.then_silence or self.failed

    def _beyond_the_count(
        self, ctx: Context, now: float, index: int, seg: Segment, gap: float, diffs: tuple[FieldDiff, ...]
    ) -> Progress:
        """More than the documented count: a deviation of the count (or, without then_silence, not ours)."""
        w = self.step
        if not self._watching_to_the_end:
            ctx.put_back((index, seg))
            return Progress.DONE
        if not w.then_silence:  # after a failure, observed only: the count was not asked to be checked
            ctx.entry(index).note = f"line {w.line}: observed after the failure (not judged)"
            self._series.points.append(Retransmission(self.seen + 1, None, 0.0, gap, None, "observed only"))
            ctx.mark_event(index)
            self.seen += 1
            return Progress.DONE if self.seen > 3 * max(1, self.count) else Progress.AGAIN
        entry = ctx.entry(index)
        entry.ok, entry.note = False, f"line {w.line}: one more than the schedule"
        message = (
            f"a retransmission beyond the schedule's {self.count} came {format_duration(gap)} after the last "
            f"one (expected silence until the target gives up, {format_duration(self._give_up_gap())})"
        )
        ref = self._value_ref(ctx, self._schedule.count_param, Check.COUNT)
        description = f"withhold {w.what}: no retransmission after the last one"
        self._fail(
            ctx, now, description, FailureKind.UNEXPECTED, message, Check.COUNT, diffs=diffs, time=seg.time, ref=ref
        )
        self._series.points.append(Retransmission(self.seen + 1, None, 0.0, gap, False, "beyond the count"))
        ctx.mark_event(index)
        self.seen += 1
        # the series is bounded: a target that never stops is not watched for ever
        return Progress.DONE if self.seen > 3 * max(1, self.count) else Progress.AGAIN

    def _give_up_segment(self, ctx: Context, now: float, index: int, seg: Segment) -> Progress:
        """A RST: the target gave up. Judged on its own (RFC 9293 §3.10.4), then the withhold is over."""
        w = self.step
        label = ctx.labelled[w.retransmits]
        want = seq_add(label.seq, label.seg_len)  # SND.NXT once the labelled segment was sent
        since = seg.time - ctx.event_time(self.origin)
        series = self._series
        series.gave_up, series.give_up_segment = since, f"{seg.flags} seq={seg.seq}"
        entry = ctx.entry(index)
        description = f"withhold {w.what}: the target gives up with {seg.flags}"
        diffs = (FieldDiff("seq", f"SND.NXT ({want})", str(seg.seq), seg.seq == want, GIVE_UP_RST),)
        ctx.mark_event(index)
        if seg.seq != want:
            entry.ok, entry.note = False, f"line {w.line}: give-up RST at the wrong seq"
            message = (
                f"the target gave up {format_duration(since)} into the series with {seg.flags} seq={seg.seq}, "
                f"which is not SND.NXT ({want}): a reset the peer would not accept"
            )
            self._fail(
                ctx, now, description, FailureKind.MISMATCH, message, Check.GIVE_UP, diffs=diffs, ref=GIVE_UP_RST
            )
        else:
            entry.ok, entry.note = True, f"line {w.line}: gives up"
            ctx.record(w.line, description, Status.PASSED, seg.time, diffs, f"{format_duration(since)} into the series")
        if self.seen < self.count:
            self._too_few(ctx, now, f"then it gave up with {seg.flags} {format_duration(since)} into the series")
            return Progress.DONE
        gap = seg.time - ctx.event_time(self._last_retransmission)
        expected, tol = self._give_up_gap(), self._tolerance(ctx)
        if gap < expected - tol.of(expected):  # before its last retransmission timed out: too soon
            message = (
                f"the target gave up with {seg.flags} {format_duration(gap)} after its last retransmission; by the "
                f"schedule it gives up {format_duration(expected)} after it "
                f"(tolerance {format_duration(tol.of(expected))})"
            )
            ref = self._value_ref(ctx, self._schedule.count_param, Check.COUNT)
            self._fail(ctx, now, description, FailureKind.TIMING, message, Check.COUNT, time=seg.time, ref=ref)
        self._persistence(ctx, now, since)
        return Progress.DONE

    def _not_a_retransmission(
        self, ctx: Context, now: float, index: int, seg: Segment, gap: float, diffs: tuple[FieldDiff, ...]
    ) -> Progress:
        w = self.step
        entry = ctx.entry(index)
        entry.ok, entry.note = False, f"line {w.line}: not a retransmission of {w.retransmits}"
        message = (
            f"the target sent {seg.flags} seq={seg.seq} ack={seg.ack} len={len(seg.payload)} "
            f"{format_duration(gap)} after the previous event, not a retransmission of {w.retransmits}"
        )
        kind, check = FailureKind.MISMATCH, Check.RETRANSMISSION
        self._fail(ctx, now, self._label(), kind, message, check, diffs=diffs, time=seg.time)
        ctx.mark_event(index)
        return Progress.AGAIN

    # ---------------------------------------------------------------- what did not come
    def _silence(self, ctx: Context, now: float, ref_time: float) -> None:
        w = self.step
        waited = format_duration(now - ref_time)
        if self.seen == 0:
            if only_bad_checksums(ctx, w, self._label(), now, w.conn, ref_time):
                return  # copies came, with bad checksums: MUST-2, not "never retransmitted"
            message = f"the target never retransmitted {w.retransmits} (waited {waited})"
            self._fail(ctx, now, self._label(), FailureKind.MISSING, message, Check.RETRANSMISSION)
            return
        if self.seen < self.count:
            for k in range(self.seen, self.count):
                first = k == self.seen
                self._series.points.append(Retransmission(k + 1, self.expected(k), 0.0, None, False if first else None))
            self._too_few(ctx, now, f"nothing in {waited} after the last one")
            self._series.gave_up = since = now - ctx.event_time(self.origin)  # by now, at the latest
            self._persistence(ctx, now, since)
            return
        # the silence after the last one held: the target gave up by now
        since = ref_time - ctx.event_time(self.origin) + self._give_up_gap()
        self._series.gave_up = since
        self._series.silence = self.wait(ctx)
        if w.then_silence:
            description = f"withhold {w.what}: no retransmission after the last one"
            ctx.record(w.line, description, Status.PASSED, now)
        if self._watching_to_the_end:
            self._persistence(ctx, now, since)

    def _too_few(self, ctx: Context, now: float, what: str) -> None:
        message = f"only {self.seen} retransmission(s) came, the schedule has {self.count} ({what})"
        ref = self._value_ref(ctx, self._schedule.count_param, Check.COUNT)
        self._fail(ctx, now, self._label(), FailureKind.MISSING, message, Check.COUNT, ref=ref)

    def _persistence(self, ctx: Context, now: float, gave_up: float) -> None:
        description = f"withhold {self.step.what}: the target keeps trying"
        judge_persistence(ctx, self.step, self._schedule, gave_up, now, description, self.step.retransmits)


def judge_persistence(
    ctx: Context, step: Step, schedule: Schedule, gave_up: float, now: float, description: str, what: str
) -> None:
    """Under a profile that documents how long a sender must keep trying (RFC 9293 §3.8.3: R2 >= 100 s, and
    >= 3 min for a SYN), judge how long it did (`gave_up`: seconds from the original to its giving up)."""
    param = schedule.persistence_param
    if param is None or param not in ctx.params or ctx.params.value(param) <= 0:
        return
    least = ctx.params.value(param)
    if gave_up >= least:
        return
    message = (
        f"the target gave up on {what} {format_duration(gave_up)} after sending it first; "
        f"it must keep trying for at least {format_duration(least)}"
    )
    ref = ctx.params[param].reference()
    ctx.fail(
        step,
        f"{description} for {format_duration(least)}",
        FailureKind.TIMING,
        message,
        now,
        ref=ref,
        check=Check.COUNT,
        keep_going=True,
    )
