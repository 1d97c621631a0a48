"""The dialogue engine: a sans-IO state machine that plays one case.

Theory of operation
-------------------
A :class:`Dialogue` is built from a case, the target's parameters and the
addressing the runner chose (our source ports and ISNs). It never touches a
socket or a clock. The runner feeds it:

* :meth:`Dialogue.receive` — every segment of the dialogue's flows seen on the
  wire, *in both directions*, stamped with the kernel's capture time. Our own
  segments come back this way too, which gives the true send time;
* :meth:`Dialogue.advance` — the current time; the engine runs as many steps as
  it can and returns the segments to send now;
* :meth:`Dialogue.next_deadline` — when the engine next needs to be advanced if
  nothing arrives.

Steps run in order. ``send`` emits a segment. ``expect`` takes the next segment
from the target and compares it field by field with the pattern, then its time
with the window (counted from the previous event on the wire, packetdrill style).
``silence`` fails on any segment from the target. ``withhold`` expands, when it
is reached, into one ``expect`` per retransmission of the schedule derived from
the target's parameters, then a silence until the schedule gives up. The first
failing step ends the dialogue with a :class:`Failure` that carries the field
diffs, the timing, and the document that requires the behaviour.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .matching import FieldDiff, compare, matches
from .model import (
    AssertStep,
    Case,
    ExpectStep,
    Reference,
    SegmentPattern,
    SendStep,
    SilenceStep,
    Step,
    WithholdStep,
)
from .params import Params
from .schedules import SCHEDULES, Schedule
from .segment import SEQ_MOD, Segment, seq_add, seq_diff
from .timing import Window
from .values import format_duration

#: How long past a deadline the engine waits for a segment already on the wire
#: to reach it (capture delivery). Not part of the tolerance: a segment is judged
#: by its kernel timestamp, not by when the engine saw it.
DELIVERY_GRACE = 0.05


@dataclass(frozen=True)
class Addressing:
    """Where the dialogue's segments go: our address, the target's, its port."""

    our_ip: str
    target_ip: str
    target_port: int


@dataclass
class Connection:
    name: str
    sport: int
    isn: int
    snd_nxt: int
    rcv_nxt: int | None = None
    synack_time: float | None = None
    rtt: float | None = None
    reset: bool = False  # a RST was sent or received: nothing to clean up


@dataclass
class TraceEntry:
    """One segment of the exchange, for ladders and pcaps."""

    time: float
    outgoing: bool
    conn: str
    segment: Segment
    note: str = ""
    ok: bool | None = None  # None: not judged; True/False: matched/failed a step
    provisional: bool = False  # a sent segment whose capture has not come back yet


@dataclass(frozen=True)
class Failure:
    line: int
    step: str
    kind: str  # mismatch | timing | missing | unexpected | assertion
    message: str
    diffs: tuple[FieldDiff, ...] = ()
    reference: Reference | None = None
    time: float | None = None

    def render(self) -> str:
        text = f"line {self.line}: {self.step}: {self.message}"
        bad = [d for d in self.diffs if not d.ok]
        for d in bad:
            text += f"\n  {d.field}: expected {d.expected}, observed {d.observed}"
        if self.reference is not None:
            text += f"\n  required by {self.reference.cite()}"
            if self.reference.says:
                text += f": {self.reference.says}"
        return text


@dataclass
class StepRecord:
    line: int
    description: str
    status: str  # passed | failed | pending
    time: float | None = None
    diffs: tuple[FieldDiff, ...] = ()
    timing: str = ""


@dataclass
class _Expect:
    step: Step
    pattern: SegmentPattern
    window: Window
    description: str
    label: str | None = None
    bind: tuple[tuple[str, str], ...] = ()
    ref_index: int | None = None  # trace index of the reference event, set on start
    note: str = ""  # added to a failure message (e.g. how a schedule was derived)


@dataclass
class _Silence:
    step: Step
    seconds: float
    description: str
    start: float | None = None
    note: str = ""


_Active = SendStep | _Expect | _Silence | AssertStep | WithholdStep


@dataclass
class Verdict:
    status: str  # passed | failed
    failure: Failure | None
    steps: list[StepRecord]
    trace: list[TraceEntry]
    schedules: list[Schedule] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0


def describe_send(s: SendStep) -> str:
    text = f"send {s.flags or '<none>'}"
    if s.seq is not None:
        text += f" seq={s.seq}"
    if s.ack is not None:
        text += f" ack={s.ack}"
    if s.data:
        text += f" len={len(s.data)}"
    return text


def describe_pattern(p: SegmentPattern, w: Window) -> str:
    parts = []
    if p.same_as:
        parts.append(f"same as {p.same_as}")
    if p.flags is not None:
        parts.append(p.flags + "".join(f"{f}?" for f in p.flags_optional) or "<none>")
    for name in ("seq", "ack"):
        v = getattr(p, name)
        if v is not None:
            parts.append(f"{name}={v}")
    if p.length is not None:
        parts.append(f"len={p.length}")
    return f"expect {' '.join(parts) or 'any segment'} {w}"


class Dialogue:
    """Plays one case; see the module docstring."""

    def __init__(
        self,
        case: Case,
        params: Params,
        addressing: Addressing,
        ports: dict[str, int],
        isns: dict[str, int],
    ) -> None:
        self.case = case
        self.params = params
        self.addr = addressing
        self.conns = {
            name: Connection(name, ports[name], isns[name] % SEQ_MOD, isns[name] % SEQ_MOD)
            for name in case.connections()
        }
        self._by_port = {c.sport: c for c in self.conns.values()}
        self._pending: deque[_Active] = deque(case.steps)  # type: ignore[arg-type]
        self._inbox: deque[tuple[int, Segment]] = deque()  # (trace index, segment)
        self.trace: list[TraceEntry] = []
        self.steps: list[StepRecord] = []
        self.names: dict[str, int] = {}
        self.labelled: dict[str, Segment] = {}
        self.schedules: list[Schedule] = []
        self._current: _Active | None = None
        #: Trace index of the last event the steps have dealt with (a segment we
        #: sent, or one an expect step took): what the next timing counts from.
        self._last_event = -1
        self._out: list[Segment] = []  # the list advance() is filling
        self.failure: Failure | None = None
        self.done = False
        self._start: float | None = None
        self._end: float | None = None

    # ------------------------------------------------------------------ inputs
    def receive(self, seg: Segment) -> None:
        """A segment of this dialogue seen on the wire (either direction)."""
        if seg.src == self.addr.our_ip:
            self._own_segment_captured(seg)
            return
        conn = self._by_port.get(seg.dport)
        if conn is None or seg.sport != self.addr.target_port:
            return
        self.trace.append(TraceEntry(seg.time, False, conn.name, seg))
        if "S" in seg.flags and "A" in seg.flags:
            conn.synack_time = seg.time
        if not self.done:
            self._inbox.append((len(self.trace) - 1, seg))
        else:
            self.trace[-1].note = "after the end of the case"

    def advance(self, now: float) -> list[Segment]:
        """Run every step that can run at `now`; return the segments to send."""
        if self._start is None:
            self._start = now
        out: list[Segment] = []
        self._out = out
        while not self.done:
            if self._current is None:
                if not self._pending:
                    self._finish(now, out)
                    break
                self._current = self._begin(self._pending.popleft(), now)
                if self._current is None:
                    continue
            progressed = self._run_current(now, out)
            if not progressed:
                break
        return out

    def next_deadline(self) -> float | None:
        """When to call :meth:`advance` next if no segment arrives."""
        cur = self._current
        if self.done or cur is None:
            return None
        if isinstance(cur, _Expect):
            return self._ref_time(cur) + cur.window.deadline(self.case.tolerance) + DELIVERY_GRACE
        if isinstance(cur, _Silence) and cur.start is not None:
            return cur.start + cur.seconds + DELIVERY_GRACE
        return None

    def verdict(self) -> Verdict:
        return Verdict(
            status="failed" if self.failure else "passed",
            failure=self.failure,
            steps=self.steps,
            trace=self.trace,
            schedules=self.schedules,
            start=self._start or 0.0,
            end=self._end or (self._start or 0.0),
        )

    # ---------------------------------------------------------------- internals
    def _own_segment_captured(self, seg: Segment) -> None:
        for entry in self.trace:
            if (
                entry.provisional
                and entry.outgoing
                and entry.segment.sport == seg.sport
                and entry.segment.seq == seg.seq
                and entry.segment.flags == seg.flags
            ):
                entry.time = seg.time
                entry.provisional = False
                conn = self._by_port.get(seg.sport)
                if (
                    conn is not None
                    and conn.synack_time is not None
                    and conn.rtt is None
                    and "A" in seg.flags
                    and "S" not in seg.flags
                ):
                    conn.rtt = seg.time - conn.synack_time
                return

    def _ref_time(self, e: _Expect) -> float:
        assert e.ref_index is not None
        if e.ref_index < 0:
            return self._start or 0.0
        return self.trace[e.ref_index].time

    def _record(
        self,
        line: int,
        description: str,
        status: str,
        time: float | None = None,
        diffs: tuple[FieldDiff, ...] = (),
        timing: str = "",
    ) -> None:
        self.steps.append(StepRecord(line, description, status, time, diffs, timing))

    def _fail(
        self,
        step: Step,
        description: str,
        kind: str,
        message: str,
        now: float,
        diffs: tuple[FieldDiff, ...] = (),
        time: float | None = None,
        note: str = "",
    ) -> None:
        if note:
            message += f"\n  {note}"
        self.failure = Failure(
            line=step.line,
            step=description,
            kind=kind,
            message=message,
            diffs=diffs,
            reference=self.case.reference(step.ref),
            time=time,
        )
        self._record(step.line, description, "failed", time, diffs, message if kind == "timing" else "")
        self._finish(now, self._out)

    def _finish(self, now: float, out: list[Segment]) -> None:
        self.done = True
        self._current = None
        self._end = now
        if self.trace and self.trace[-1].time > now:
            self._end = self.trace[-1].time
        for entry_index, _ in self._inbox:
            if not self.trace[entry_index].note:
                self.trace[entry_index].note = "not examined (case ended)"
        self._inbox.clear()
        # Leave the target clean: reset every connection that may hold state there.
        for conn in self.conns.values():
            if conn.reset or (conn.rcv_nxt is None and conn.synack_time is None):
                continue
            seg = self._segment(conn, "R", conn.snd_nxt, 0, 0, b"", ())
            self._emit(conn, seg, now, out, note="cleanup (not judged)")
            conn.reset = True

    def _begin(self, step: _Active, now: float) -> _Active | None:
        if isinstance(step, ExpectStep):
            return self._start_expect(
                _Expect(
                    step,
                    step.pattern,
                    step.window_,
                    describe_pattern(step.pattern, step.window_),
                    step.label,
                    step.bind,
                )
            )
        if isinstance(step, SilenceStep):
            return _Silence(step, step.seconds, f"silence for {format_duration(step.seconds)}")
        if isinstance(step, WithholdStep):
            self._expand_withhold(step)
            return None
        return step

    def _start_expect(self, e: _Expect) -> _Expect:
        e.ref_index = self._last_event
        return e

    def _expand_withhold(self, w: WithholdStep) -> None:
        conn = self.conns[w.conn]
        schedule = SCHEDULES[w.schedule](self.params, conn.rtt)
        self.schedules.append(schedule)
        intervals = schedule.intervals[: w.count] if w.count else schedule.intervals
        expanded: list[_Active] = []
        n = len(intervals)
        for i, gap in enumerate(intervals, 1):
            pattern = SegmentPattern(same_as=w.retransmits)
            expanded.append(
                _Expect(
                    w,
                    pattern,
                    Window("after", gap),
                    f"withhold {w.what}: retransmission {i}/{n} of {w.retransmits} after {format_duration(gap)} "
                    f"(schedule {schedule.name})",
                    note=f"schedule {schedule.name}: {schedule.derivation}",
                )
            )
        if w.then_silence:
            tol = self.case.tolerance.of(schedule.give_up)
            expanded.append(
                _Silence(
                    w,
                    schedule.give_up + tol,
                    f"withhold {w.what}: no retransmission after the last one; the target gives up "
                    f"{format_duration(schedule.give_up)} after it (+ tolerance {format_duration(tol)})",
                    note=f"schedule {schedule.name}: {schedule.derivation}",
                )
            )
        self._pending.extendleft(reversed(expanded))

    def _run_current(self, now: float, out: list[Segment]) -> bool:
        cur = self._current
        if isinstance(cur, SendStep):
            self._do_send(cur, now, out)
            self._current = None
            return True
        if isinstance(cur, _Expect):
            if cur.ref_index is None:
                self._start_expect(cur)
            return self._run_expect(cur, now)
        if isinstance(cur, _Silence):
            if cur.start is None:  # counted from the previous event, like every timing
                cur.start = self.trace[self._last_event].time if self._last_event >= 0 else now
            return self._run_silence(cur, now)
        if isinstance(cur, AssertStep):
            self._run_assert(cur, now)
            self._current = None
            return True
        raise AssertionError(f"unknown step {cur!r}")

    def _conn_names(self, conn: Connection) -> dict[str, int]:
        names = dict(self.names)
        names["isn"] = conn.isn
        names["snd_nxt"] = conn.snd_nxt
        if conn.rcv_nxt is not None:
            names["rcv_nxt"] = conn.rcv_nxt
        return names

    def _segment(
        self,
        conn: Connection,
        flags: str,
        seq: int,
        ack: int,
        window: int,
        data: bytes,
        options: tuple[tuple[str, object], ...],
    ) -> Segment:
        return Segment(
            src=self.addr.our_ip,
            dst=self.addr.target_ip,
            sport=conn.sport,
            dport=self.addr.target_port,
            seq=seq,
            ack=ack,
            flags=flags,
            window=window,
            payload=data,
            options=options,
        )

    def _emit(self, conn: Connection, seg: Segment, now: float, out: list[Segment], note: str) -> None:
        seg = seg.at(now)
        out.append(seg)
        self.trace.append(TraceEntry(now, True, conn.name, seg, note=note, provisional=True))
        self._last_event = len(self.trace) - 1

    def _do_send(self, s: SendStep, now: float, out: list[Segment]) -> None:
        conn = self.conns[s.conn]
        names = self._conn_names(conn)
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
            self._fail(
                s,
                describe_send(s),
                "unexpected",
                f"cannot send: {exc.args[0]} is not known yet (nothing received on connection {conn.name})",
                now,
            )
            return
        options = tuple((o.kind, o.value) for o in s.options)
        seg = self._segment(conn, s.flags, seq, ack, s.window, s.data, options)
        self._emit(conn, seg, now, out, note=f"line {s.line}")
        self._record(s.line, describe_send(s), "passed", now)
        end = seq_add(seq, seg.seg_len)
        if seq_diff(end, conn.snd_nxt) > 0 or "S" in s.flags:
            conn.snd_nxt = end
        if "R" in s.flags:
            conn.reset = True

    def _take(self, conn: str) -> tuple[int, Segment] | None:
        """The oldest unexamined segment of connection `conn`, removed from the inbox."""
        for i, (index, seg) in enumerate(self._inbox):
            if self.trace[index].conn == conn:
                del self._inbox[i]
                return index, seg
        return None

    def _run_expect(self, e: _Expect, now: float) -> bool:
        tol = self.case.tolerance
        taken = self._take(e.step.conn)
        if taken is None:
            ref = self._ref_time(e)
            if now > ref + e.window.deadline(tol) + DELIVERY_GRACE:
                self._fail(
                    e.step,
                    e.description,
                    "missing",
                    f"no segment from the target: expected {e.window} (tolerance "
                    f"{format_duration(tol.of(e.window.seconds))}, {tol}) of the previous event, "
                    f"nothing came in {format_duration(now - ref)}",
                    now,
                    note=e.note,
                )
                return True
            return False
        index, seg = taken
        conn = self._by_port[seg.dport]
        try:
            diffs = tuple(compare(e.pattern, seg, self._conn_names(conn), self.labelled))
        except KeyError as exc:
            self._fail(
                e.step,
                e.description,
                "unexpected",
                f"cannot check the segment: {exc.args[0]} is not known yet on connection {conn.name}",
                now,
            )
            return True
        entry = self.trace[index]
        gap = seg.time - self._ref_time(e)
        if not matches(diffs):
            entry.ok = False
            entry.note = f"line {e.step.line}: not as expected"
            self._fail(
                e.step,
                e.description,
                "mismatch",
                f"the target sent {seg.flags or '<no flags>'} seq={seg.seq} ack={seg.ack} "
                f"len={len(seg.payload)} {format_duration(gap)} after the previous event, "
                "which differs from the expected segment",
                now,
                diffs,
                seg.time,
                note=e.note,
            )
            return True
        problem = e.window.check(gap, tol)
        if problem is not None:
            entry.ok = False
            entry.note = f"line {e.step.line}: {problem.split(':')[0]}"
            self._fail(e.step, e.description, "timing", problem, now, diffs, seg.time, note=e.note)
            return True
        entry.ok = True
        entry.note = f"line {e.step.line}"
        self._last_event = index
        self._accept(conn, seg, e)
        self._record(
            e.step.line, e.description, "passed", seg.time, diffs, f"{format_duration(gap)} after the previous event"
        )
        self._current = None
        return True

    def _accept(self, conn: Connection, seg: Segment, e: _Expect) -> None:
        if "S" in seg.flags:
            conn.rcv_nxt = seq_add(seg.seq, seg.seg_len)
        elif seg.seg_len and conn.rcv_nxt is not None:
            end = seq_add(seg.seq, seg.seg_len)
            if seq_diff(end, conn.rcv_nxt) > 0:
                conn.rcv_nxt = end
        if "R" in seg.flags:
            conn.reset = True
        if e.label:
            self.labelled[e.label] = seg
        for name, fld in e.bind:
            self.names[name] = {"seq": seg.seq, "ack": seg.ack, "win": seg.window, "len": len(seg.payload)}[fld]

    def _run_silence(self, s: _Silence, now: float) -> bool:
        assert s.start is not None
        end = s.start + s.seconds
        if self._inbox:
            index, seg = self._inbox[0]
            if seg.time >= end:  # the first segment after the silence: for the next step
                self._record(s.step.line, s.description, "passed", end)
                self._current = None
                return True
            self._inbox.popleft()
            entry = self.trace[index]
            entry.ok = False
            entry.note = f"line {s.step.line}: unexpected"
            self._fail(
                s.step,
                s.description,
                "unexpected",
                f"the target sent {seg.flags or '<no flags>'} seq={seg.seq} ack={seg.ack} "
                f"len={len(seg.payload)} {format_duration(seg.time - s.start)} into a silence of "
                f"{format_duration(s.seconds)}",
                now,
                time=seg.time,
                note=s.note,
            )
            return True
        if now > end + DELIVERY_GRACE:
            self._record(s.step.line, s.description, "passed", end)
            self._current = None
            return True
        return False

    def _run_assert(self, a: AssertStep, now: float) -> None:
        values = [self.names[n] for n in a.names]
        desc = f"assert unpredictable: {', '.join(a.names)}"
        shown = ", ".join(str(v) for v in values)
        if len(set(values)) == 1:
            self._fail(a, desc, "assertion", f"all {len(values)} values are equal ({values[0]})", now)
            return
        steps = {seq_diff(b, a_) for a_, b in zip(values, values[1:], strict=False)}
        if len(steps) == 1:
            self._fail(
                a, desc, "assertion", f"the values grow by the same constant {steps.pop()} each time ({shown})", now
            )
            return
        self._record(a.line, desc, "passed", now, timing=shown)
