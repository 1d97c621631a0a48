"""Judges of the segment steps: ``send``, ``expect``, ``silence`` and ``assert``.

``expect`` takes the next segment of its connection and compares it field by field with the pattern, then its
time with the window, counted from the previous event on the wire (packetdrill style). ``silence`` fails on any
segment from the target. A retransmission that only our late ACK caused is passed over by both (see
:meth:`~conformance.core.engine.Dialogue.our_ack_was_late`), except by a step with ``repeats: judged``.
"""

from __future__ import annotations

from dataclasses import replace

from ..checks import Check, check_of_field, strongest
from ..ipfields import IcmpSpec, with_ip
from ..matching import FieldDiff, compare, matches, not_checked
from ..model import ANY_CONN, AssertStep, SegmentPattern, SendStep, Step
from ..outcomes import FailureKind, Status
from ..rto import rto_bounds, rtt_samples
from ..schedules import named_time
from ..segment import IcmpError, Segment, seq_add, seq_diff
from ..steps import DELIVERY_GRACE, Connection, describe_send
from ..timing import Tolerance, Window
from ..values import Expr, format_duration
from .base import ActiveStep, Context, Progress, blind, only_bad_checksums, stale


class Send(ActiveStep):
    """Emit one segment; seq and ack default to the connection's snd_nxt and rcv_nxt."""

    step: SendStep

    def __init__(self, step: SendStep) -> None:
        self.step = step

    def advance(self, ctx: Context, now: float) -> Progress:
        s = self.step
        conn = ctx.conns[s.conn]
        if s.icmp is not None:
            return self._icmp(ctx, conn, s.icmp, now)
        names = ctx.names_for(conn)
        try:
            seq = s.seq.evaluate(names) if s.seq is not None else conn.snd_nxt
            if s.ack is not None:
                ack = s.ack.evaluate(names)
            elif "A" in s.flags:
                if conn.rcv_nxt is None:
                    raise KeyError("rcv_nxt")
                ack = conn.rcv_nxt
            else:
                ack = 0
        except KeyError as exc:
            ctx.fail(
                s,
                describe_send(s),
                FailureKind.UNEXPECTED,
                f"cannot send: {exc.args[0]} is not known yet (nothing received on connection {conn.name})",
                now,
                fatal=True,
            )
            return Progress.DONE
        data = s.data
        if s.length is not None:  # len: w4, a bound name (a window to fill)
            length = s.length.evaluate(names)
            if length > s.max_length:
                why = f"len {s.length} = {length} is more than this segment may carry (max_len {s.max_length})"
                ctx.record(s.line, f"{describe_send(s)} (not sent: {why})", Status.SKIPPED, now)
                ctx.skip_rest(f"line {s.line} could not send its segment: {why}", now)
                return Progress.DONE
            data = b"x" * length
        options = tuple((o.kind, o.value) for o in s.options)
        seg = ctx.segment(conn, s.flags, seq, ack, s.window, data, options)
        if s.bad_checksum or s.urgptr:
            seg = replace(seg, checksum_ok=False if s.bad_checksum else None, urgptr=s.urgptr)
        if s.ip is not None:
            ip_seg = with_ip(seg, s.ip, ctx.addr.target_ip, ctx.addr.prefix, ctx.addr.secondary)
            if ip_seg is None:
                problem = f"cannot send: no {s.ip.src or s.ip.dst} address is known for {ctx.addr.target_ip}"
                ctx.fail(s, describe_send(s), FailureKind.UNEXPECTED, problem, now, fatal=True)
                return Progress.DONE
            seg = ip_seg
            if s.ip.dst == "secondary":  # the connection is at that address from now on (RFC 9293 §3.9.1.1)
                conn.taddr = seg.dst
        ctx.emit(conn, seg, now, note=f"line {s.line}")
        ctx.record(s.line, describe_send(s), Status.PASSED, now)
        end = seq_add(seq, seg.seg_len)
        if seq_diff(end, conn.snd_nxt) > 0 or "S" in s.flags:
            conn.snd_nxt = end
        if "R" in s.flags:
            conn.reset = True
        return Progress.DONE

    def _icmp(self, ctx: Context, conn: Connection, icmp: IcmpSpec, now: float) -> Progress:
        """An ICMP error from us about the target's segment `icmp.quote` (see core.ipfields)."""
        s = self.step
        quoted = ctx.labelled.get(icmp.quote)
        if quoted is None:  # the expect that labels it did not hold, and the run's profile let the case go on
            problem = f"cannot send: {icmp.quote} was never received (the step that labels it did not hold)"
            ctx.fail(s, describe_send(s), FailureKind.UNEXPECTED, problem, now, fatal=True)
            return Progress.DONE
        error = IcmpError(ctx.addr.our_ip, ctx.addr.target_ip, 4, icmp.type, icmp.code, quoted, now)
        ctx.emit(conn, error.as_segment(), now, note=f"line {s.line}: {error.label} about {icmp.quote}")
        ctx.record(s.line, describe_send(s), Status.PASSED, now)
        return Progress.DONE


class Expect(ActiveStep):
    """The next segment of the connection must match `pattern`, within `window` of the previous event."""

    def __init__(
        self,
        step: Step,
        pattern: SegmentPattern,
        window: Window,
        description: str,
        label: str | None = None,
        bind: tuple[tuple[str, str], ...] = (),
        note: str = "",
        until: str | None = None,
        until_ack: Expr | None = None,
        segments: tuple[int | None, int | None] | None = None,
        judge_repeats: bool = False,
    ) -> None:
        self.step = step
        self.pattern = pattern
        self.window = window
        self.description = description
        self.label = label
        self.bind = bind
        self.note = note  # added to a failure message (e.g. how a state was inferred)
        self.until = until  # take segments until one carries FIN or data (``until: FIN|data``), or None
        self.until_ack = until_ack  # or until one acknowledges this (``until: {ack: EXPR}``)
        self.segments = segments  # (at_least, at_most): how many segments the series may hold
        self.taken = 0  # segments of the series so far
        self.judge_repeats = judge_repeats  # ``repeats: judged``: no repeat is taken as our late ACK's doing
        #: The trace index of the event the window counts from (-1: the dialogue's start). An index, not a
        #: time: the time of a segment we sent becomes its capture time when its capture comes back.
        self.ref_index = -1
        #: The tolerance of a window that names a timer (see :meth:`_resolve`); None: the case's.
        self.timer_tolerance: Tolerance | None = None
        #: The answer time of the last app step waited for, when the window is a ``within`` (see :meth:`ref_time`).
        self.app_anchor: float | None = None
        #: The window names a run value, resolved at start and again when judging (see :meth:`_resolve`).
        self.named = window.value is not None and not window.seconds
        self.plain_description = description

    def start(self, ctx: Context, now: float) -> None:
        self.ref_index = ctx.last_event
        self.app_anchor = ctx.last_app_answer if self.window.kind == "within" else None
        if self.named:
            self._resolve(ctx)

    def _resolve(self, ctx: Context) -> None:
        """A window that names a run value gets its seconds from the run's values, and the tolerance of a timer:
        the case's widened by the target's timer granularity (as a retransmission's, see judges.withhold).
        ``after: rto`` is the range of RTOs the target could have from the RTT samples on the wire up to the event
        the window counts from (:mod:`conformance.core.rto`): resolved again when judging, once the capture has
        given our own segments their wire times. The report and a failure show the derivation."""
        name = self.window.value
        assert name is not None
        if name == "rto":
            entries = [ctx.entry(i) for i in range(self.ref_index + 1)]
            rto_min = ctx.params["rto_min"]
            origin = f"from {rto_min.origin}: {rto_min.source}"
            initial = ctx.params["rto_initial"]
            bounds = rto_bounds(
                rtt_samples(entries, self.step.conn),
                rto_min.value,
                origin,
                initial.value,
                f"from {initial.origin}: {initial.source}",
            )
            latest = bounds.high if bounds.high > bounds.low else None
            self.window, how = replace(self.window, seconds=bounds.low, latest=latest), bounds.how
        else:
            seconds, how = named_time(name, ctx.params, ctx.conns[self.step.conn].rtt)
            self.window = replace(self.window, seconds=seconds)
        granularity = ctx.params.value("timer_granularity") if "timer_granularity" in ctx.params else 0.0
        self.timer_tolerance = ctx.case.tolerance.widened(granularity)
        self.description = f"{self.plain_description} ({how})"

    def _tolerance(self, ctx: Context) -> Tolerance:
        return self.timer_tolerance or ctx.case.tolerance

    def ref_time(self, ctx: Context) -> float:
        """The time the window counts from: the previous event on the wire, or for a ``within`` window the answer
        of an ``app`` step that came after it (see :attr:`Context.last_app_answer`)."""
        wire = ctx.event_time(self.ref_index)
        return max(wire, self.app_anchor) if self.app_anchor is not None else wire

    def deadline(self, ctx: Context) -> float | None:
        return self.ref_time(ctx) + self.window.deadline(self._tolerance(ctx)) + DELIVERY_GRACE

    def _late_repeat(self, ctx: Context, index: int, seg: Segment) -> bool:
        """A repeat our late ACK caused, passed over; one that matches the pattern, or any with ``repeats: judged``
        (we withheld the ACK: the repeat is the target's own) captured after the window's start, is judged."""
        if self.judge_repeats:
            return before_stimulus(ctx, index, seg, ctx.event_time(self.ref_index))
        conn = ctx.conn_of(seg)
        try:
            if matches(compare(self.pattern, seg, ctx.names_for(conn), ctx.labelled, values(ctx))):
                return False  # what the step expects: judge it
        except KeyError:
            return False
        return ctx.our_ack_was_late(index, seg)

    def advance(self, ctx: Context, now: float) -> Progress:
        if self.named:
            self._resolve(ctx)
        tol = self._tolerance(ctx)
        ref = self.ref_time(ctx)
        while True:
            taken = ctx.take(self.step.conn)
            if taken is None or not (self._late_repeat(ctx, *taken) or stale(ctx, taken, self.step.line)):
                break
        if taken is None:
            if now <= ref + self.window.deadline(tol) + DELIVERY_GRACE:
                return Progress.WAIT
            if blind(ctx, self.step, self.description, now):
                return Progress.DONE
            if only_bad_checksums(ctx, self.step, self.description, now, self.step.conn, ref):
                return Progress.DONE
            ctx.fail(
                self.step,
                self.description,
                FailureKind.MISSING,
                f"no segment from the target: expected {self.window} ({self.window.tolerance_text(tol)}) of the "
                "previous event, "
                f"nothing came in {format_duration(now - ref)}",
                now,
                note=self.note,
                check=Check.MISSING,
            )
            return Progress.DONE  # (when the policy lets the case go on)
        return self._judge(ctx, now, *taken)

    def _documented(self, ctx: Context, diffs: list[FieldDiff]) -> tuple[FieldDiff, ...]:
        """Each field check with the document it answers to (see core.checks)."""
        return tuple(replace(d, reference=ctx.document(self.step, check_of_field(d.field))) for d in diffs)

    def _judge(self, ctx: Context, now: float, index: int, seg: Segment) -> Progress:
        tol = self._tolerance(ctx)
        conn = ctx.conn_of(seg)
        line = self.step.line
        try:
            diffs = self._documented(ctx, compare(self.pattern, seg, ctx.names_for(conn), ctx.labelled, values(ctx)))
        except KeyError as exc:
            ctx.fail(
                self.step,
                self.description,
                FailureKind.UNEXPECTED,
                f"cannot check the segment: {exc.args[0]} is not known yet on connection {conn.name}",
                now,
                fatal=True,
            )
            return Progress.DONE
        entry = ctx.entry(index)
        gap = seg.time - self.ref_time(ctx)
        if not matches(diffs):
            entry.ok, entry.note = False, f"line {line}: not as expected"
            message = (
                f"the target sent {seg.flags or '<no flags>'} seq={seg.seq} ack={seg.ack} "
                f"len={len(seg.payload)} {format_duration(gap)} after the previous event, "
                "which differs from the expected segment"
            )
            cited = strongest([d.reference for d in diffs if not d.ok])
            kind = FailureKind.MISMATCH
            if ctx.fail(self.step, self.description, kind, message, now, diffs, seg.time, self.note, ref=cited):
                return Progress.DONE
        else:
            problem = self.window.check(gap, tol)
            if problem is not None:
                entry.ok, entry.note = False, f"line {line}: {problem.split(':')[0]}"
                kind = FailureKind.TIMING
                timing = Check.TIMING
                if ctx.fail(self.step, self.description, kind, problem, now, diffs, seg.time, self.note, check=timing):
                    return Progress.DONE
            else:
                entry.ok, entry.note = True, f"line {line}"
                shown = f"{format_duration(gap)} after the previous event"
                if unmade := not_checked(self.pattern, seg, values(ctx)):  # checks it could not make: said so
                    desc = f"{self.description} ({'; '.join(unmade)})"
                    ctx.record(line, desc, Status.SKIPPED, seg.time, diffs, shown)
                else:
                    ctx.record(line, self.description, Status.PASSED, seg.time, diffs, shown)
        # matched, or a deviation the profile lets pass: the dialogue goes on with this segment
        ctx.mark_event(index)
        ctx.accept(conn, seg, self.label, self.bind)
        self.taken += 1
        if (self.until is not None or self.until_ack is not None) and not self._ends_series(ctx, seg):
            if self.until == "FIN" and seg.payload:  # read, as an application would: acknowledged at once
                ack = ctx.segment(conn, "A", conn.snd_nxt, conn.rcv_nxt or seg.ack, 65535, b"", ())
                ctx.emit(conn, ack, now, note=f"line {line}: ACK of the data (until FIN)")
            self.ref_index = ctx.last_event  # the next of the series is timed from the event before it
            return self.advance(ctx, now)
        if self.segments is not None:
            self._count(ctx, now)
        return Progress.DONE

    def _ends_series(self, ctx: Context, seg: Segment) -> bool:
        if self.until_ack is not None:  # names were checked when the series' first segment was compared
            return "A" in seg.flags and seq_diff(seg.ack, self.until_ack.evaluate(ctx.names_for(ctx.conn_of(seg)))) >= 0
        return "F" in seg.flags if self.until == "FIN" else bool(seg.payload)

    def _count(self, ctx: Context, now: float) -> None:
        """The series has ended: it must hold `segments` (at_least, at_most) segments."""
        at_least, at_most = self.segments or (None, None)
        n = self.taken
        if at_least is not None and n < at_least:
            problem, check = f"expected at least {at_least}", Check.AT_LEAST
        elif at_most is not None and n > at_most:
            problem, check = f"expected at most {at_most}", Check.AT_MOST
        else:
            bounds = " and ".join(f"{w} {v}" for w, v in (("at least", at_least), ("at most", at_most)) if v)
            ctx.record(self.step.line, f"{self.description}: {n} segments", Status.PASSED, now, timing=bounds)
            return
        message = f"the series held {n} segments, {problem}"
        ctx.fail(self.step, f"{self.description}: {n} segments", FailureKind.ASSERTION, message, now, check=check)


def before_stimulus(ctx: Context, index: int, seg: Segment, begin: float) -> bool:
    """With ``repeats: judged``: a segment captured before the step's begin (our previous segment had not left,
    so the target could not have seen it, e.g. a SYN-ACK retransmitted by its timer while a slow prober was still
    sending) is not the target's answer to it: noted in the trace, not judged, True."""
    if seg.time >= begin:
        return False
    ctx.entry(index).note = (
        f"captured {format_duration(begin - seg.time)} before the step began: the target could not have seen "
        "what we sent (not judged)"
    )
    return True


def _into(offset: float) -> str:
    return f"{format_duration(offset)} into" if offset >= 0 else f"{format_duration(-offset)} before the start of"


def values(ctx: Context) -> dict[str, float]:
    """The run's documented values by name (core.params), for the bounds of options."""
    return {name: param.value for name, param in ctx.params.items()}


class Silence(ActiveStep):
    """Nothing from the target for `seconds` (on the step's connection, or on every one)."""

    def __init__(self, step: Step, seconds: float, description: str, judge_repeats: bool = False) -> None:
        self.step = step
        self.seconds = seconds
        self.description = description
        self.judge_repeats = judge_repeats  # ``repeats: judged``: no repeat is taken as our late ACK's doing
        self.begin = 0.0

    def start(self, ctx: Context, now: float) -> None:
        self.begin = ctx.last_event_time(default=now)  # counted from the previous event, like every timing

    def deadline(self, ctx: Context) -> float | None:
        return self.begin + self.seconds + DELIVERY_GRACE

    def _concerns(self, ctx: Context, index: int) -> bool:
        return self.step.conn == ANY_CONN or ctx.entry(index).conn == self.step.conn

    def _late(self, ctx: Context, index: int, seg: Segment) -> bool:
        """A repeat our late ACK caused, passed over unless the step judges repeats (we withheld the ACK); one
        that judges repeats passes over what was captured before the silence began (see :func:`before_stimulus`)."""
        if self.judge_repeats:
            return before_stimulus(ctx, index, seg, self.begin)
        return ctx.our_ack_was_late(index, seg)

    def advance(self, ctx: Context, now: float) -> Progress:
        s = self.step
        end = self.begin + self.seconds
        for item in ctx.unexamined():  # retransmissions our slowness caused do not break a silence
            if self._concerns(ctx, item[0]) and (stale(ctx, item, s.line) or self._late(ctx, *item)):
                ctx.discard(item)
        mine = [item for item in ctx.unexamined() if self._concerns(ctx, item[0])]
        if mine:
            index, seg = mine[0]
            if seg.time >= end:  # the first segment after the silence: for the next step
                ctx.record(s.line, self.description, Status.PASSED, end)
                return Progress.DONE
            ctx.discard(mine[0])
            entry = ctx.entry(index)
            entry.ok, entry.note = False, f"line {s.line}: unexpected"
            ctx.fail(
                s,
                self.description,
                FailureKind.UNEXPECTED,
                f"the target sent {seg.flags or '<no flags>'} seq={seg.seq} ack={seg.ack} "
                f"len={len(seg.payload)} {_into(seg.time - self.begin)} a silence of {format_duration(self.seconds)}",
                now,
                time=seg.time,
                check=Check.UNEXPECTED,
            )
            return Progress.DONE
        if now > end + DELIVERY_GRACE:
            if not blind(ctx, s, self.description, now):  # a silence counts only if the wire saw our own frames
                ctx.record(s.line, self.description, Status.PASSED, end)
            return Progress.DONE
        return Progress.WAIT


class Assert(ActiveStep):
    """Bound values must be neither all equal nor a constant increment (``assert: {unpredictable: [...]}``), or
    sequence values must never move left (``assert: {nondecreasing: [a1+w1, a2+w2]}``, in sequence space), or a
    value must lie outside a range (``assert: {outside: [w5, 1, 199]}``, plain whole numbers)."""

    step: AssertStep

    def __init__(self, step: AssertStep) -> None:
        self.step = step

    def advance(self, ctx: Context, now: float) -> Progress:
        a = self.step
        unbound = [n for n in a.names if n not in ctx.names]
        if unbound:  # the expect that binds it did not hold, and the run's profile let the case go on
            reason = f"not checked: {', '.join(unbound)} never bound (the step that binds it did not hold)"
            ctx.record(a.line, f"assert {a.check}: {', '.join(a.names)} ({reason})", Status.SKIPPED, now)
            return Progress.DONE
        if a.check == "nondecreasing":
            return self._nondecreasing(ctx, now)
        if a.check == "outside":
            return self._outside(ctx, now)
        values = [ctx.names[n] for n in a.names]
        desc = f"assert unpredictable: {', '.join(a.names)}"
        shown = ", ".join(str(v) for v in values)
        if len(set(values)) == 1:
            message = f"all {len(values)} values are equal ({values[0]})"
            ctx.fail(a, desc, FailureKind.ASSERTION, message, now, check=Check.EQUAL)
            return Progress.DONE
        steps = {seq_diff(b, a_) for a_, b in zip(values, values[1:], strict=False)}
        if len(steps) == 1:
            message = f"the values grow by the same constant {steps.pop()} each time ({shown})"
            ctx.fail(a, desc, FailureKind.ASSERTION, message, now, check=Check.INCREMENT)
            return Progress.DONE
        ctx.record(a.line, desc, Status.PASSED, now, timing=shown)
        return Progress.DONE

    def _nondecreasing(self, ctx: Context, now: float) -> Progress:
        a = self.step
        names = dict(ctx.names)
        values = [e.evaluate(names) for e in a.exprs]
        desc = f"assert nondecreasing: {', '.join(map(str, a.exprs))}"
        shown = ", ".join(str(v) for v in values)
        for i, (before, after) in enumerate(zip(values, values[1:], strict=False)):
            back = seq_diff(after, before)
            if back < 0:
                message = (
                    f"{a.exprs[i + 1]} = {after} is {-back} left of {a.exprs[i]} = {before} "
                    f"(sequence space; values in order: {shown})"
                )
                ctx.fail(a, desc, FailureKind.ASSERTION, message, now, check=Check.NONDECREASING)
                return Progress.DONE
        ctx.record(a.line, desc, Status.PASSED, now, timing=shown)
        return Progress.DONE

    def _outside(self, ctx: Context, now: float) -> Progress:
        a = self.step
        (expr,), (low, high) = a.exprs, a.span
        value = expr.evaluate(dict(ctx.names))
        desc = f"assert outside: {expr} not in {low}..{high}"
        if low <= value <= high:
            message = f"{expr} = {value}, within {low}..{high}, where it must be below {low} or above {high}"
            ctx.fail(a, desc, FailureKind.ASSERTION, message, now, check=Check.OUTSIDE)
            return Progress.DONE
        ctx.record(a.line, desc, Status.PASSED, now, timing=f"{expr} = {value}")
        return Progress.DONE
