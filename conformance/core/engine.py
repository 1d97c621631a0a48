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
``silence`` fails on any segment from the target. ``withhold`` waits for the
target's retransmissions and judges them gap by gap against the schedule derived
from the target's parameters (:mod:`conformance.core.retransmissions`); ``app``,
``state`` and ``app_result`` steps go through the target's agent, or probes when
there is none (:mod:`conformance.core.appsteps`).

Every check answers to a document at a level; the run's policy (from its
profile, :mod:`conformance.core.profiles`) says whether a check that does not hold
ends the dialogue with a :class:`Failure` (field diffs, timing, the document),
or is kept as a :class:`Finding` (a warning or a note) while the dialogue goes on.
"""

from __future__ import annotations

from collections import deque

from . import appsteps, retransmissions
from .matching import FieldDiff, compare, matches
from .model import (
    ANY_CONN,
    AppResultStep,
    AppStep,
    AssertStep,
    Case,
    ExpectStep,
    Reference,
    SendStep,
    SilenceStep,
    StateStep,
    Step,
    WithholdStep,
)
from .params import Params
from .schedules import Schedule
from .segment import SEQ_MOD, Segment, seq_add, seq_diff
from .steps import (
    AGENT_TIMEOUT,
    DELIVERY_GRACE,
    STATE_SETTLE,
    Action,
    Active,
    ActiveApp,
    ActiveExpect,
    ActiveRetrans,
    ActiveSilence,
    Addressing,
    AppRequest,
    Connection,
    describe_pattern,
    describe_send,
)
from .values import format_duration
from .verdict import Failure, Finding, Policy, StepRecord, TraceEntry, Verdict, fail_always

__all__ = [
    "AGENT_TIMEOUT",
    "DELIVERY_GRACE",
    "STATE_SETTLE",
    "Action",
    "Addressing",
    "AppRequest",
    "Connection",
    "Dialogue",
    "Failure",
    "Finding",
    "Policy",
    "StepRecord",
    "TraceEntry",
    "Verdict",
]


class Dialogue:
    """Plays one case; see the module docstring."""

    def __init__(
        self,
        case: Case,
        params: Params,
        addressing: Addressing,
        ports: dict[str, int],
        isns: dict[str, int],
        white_box: bool = True,
        policy: Policy = fail_always,
    ) -> None:
        self.case = case
        #: States are read through the agent (white box) or inferred from probes (black box).
        self.white_box = white_box
        self.policy = policy
        self.findings: list[Finding] = []
        self.params = params
        self.addr = addressing
        active = _actively_opened(case)
        self.conns = {
            name: Connection(
                name,
                ports[name],
                isns[name] % SEQ_MOD,
                isns[name] % SEQ_MOD,
                tport=None if name in active else addressing.target_port,
            )
            for name in case.connections()
        }
        self._by_port = {c.sport: c for c in self.conns.values()}
        self._pending: deque[Active] = deque(case.steps)  # type: ignore[arg-type]
        self._inbox: deque[tuple[int, Segment]] = deque()  # (trace index, segment)
        self.trace: list[TraceEntry] = []
        self.steps: list[StepRecord] = []
        self.names: dict[str, int] = {}
        self.labelled: dict[str, Segment] = {}
        self.schedules: list[Schedule] = []
        self._current: Active | None = None
        #: Trace index of the last event the steps have dealt with (a segment we
        #: sent, or one an expect step took): what the next timing counts from.
        self._last_event = -1
        self._out: list[Action] = []  # the list advance() is filling
        self.failure: Failure | None = None
        self.done = False
        self._start: float | None = None
        self._end: float | None = None
        self._next_request = 1
        self._answers: dict[int, tuple[dict[str, object], float]] = {}
        self._request_label: dict[int, str] = {}
        self.app_results: dict[str, tuple[dict[str, object], float]] = {}
        self._listener: int | None = None
        self._last_give_up: float | None = None

    # ------------------------------------------------------------------ inputs
    def receive(self, seg: Segment) -> None:
        """A segment of this dialogue seen on the wire (either direction)."""
        if seg.src == self.addr.our_ip:
            self._own_segment_captured(seg)
            return
        conn = self._by_port.get(seg.dport)
        if conn is None:
            return
        if conn.tport is None and "S" in seg.flags:
            conn.tport = seg.sport  # the target's application connected to us: learn its port
        if seg.sport != conn.tport:
            return
        self.trace.append(TraceEntry(seg.time, False, conn.name, seg))
        if "S" in seg.flags and "A" in seg.flags:
            conn.synack_time = seg.time
        if not self.done:
            self._inbox.append((len(self.trace) - 1, seg))
        else:
            self.trace[-1].note = "after the end of the case"

    def app_answer(self, request: int, answer: dict[str, object], time: float) -> None:
        """The agent's answer to an :class:`AppRequest`, with the time it arrived."""
        self._answers[request] = (answer, time)
        label = self._request_label.pop(request, None)
        if label is not None:
            self.app_results[label] = (answer, time)

    def advance(self, now: float) -> list[Action]:
        """Run every step that can run at `now`; return segments and agent commands to send."""
        if self._start is None:
            self._start = now
        out: list[Action] = []
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
        if isinstance(cur, ActiveExpect):
            return self._ref_time(cur) + cur.window.deadline(self.case.tolerance) + DELIVERY_GRACE
        if isinstance(cur, ActiveSilence) and cur.start is not None:
            return cur.start + cur.seconds + DELIVERY_GRACE
        if isinstance(cur, ActiveApp):
            if cur.sent_at is not None:
                return cur.sent_at + cur.timeout
            return cur.earliest
        if isinstance(cur, ActiveRetrans):
            ref = self.trace[self._last_event].time if self._last_event >= 0 else (self._start or 0.0)
            return ref + retransmissions.retrans_wait(self, cur) + DELIVERY_GRACE
        return None

    def verdict(self) -> Verdict:
        status = "passed"
        if self.failure:
            status = "failed"
        elif any(f.outcome == "warn" for f in self.findings):
            status = "warning"
        return Verdict(
            status=status,
            findings=self.findings,
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

    def _ref_time(self, e: ActiveExpect) -> float:
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
        ref: Reference | None | bool = True,
        fatal: bool = False,
    ) -> bool:
        """A check did not hold. Returns True when that ends the case.

        `ref` is the document the check answers to (True: the step's ref). Unless
        `fatal`, the run's policy decides: a failure ends the case; a warning or
        a note is recorded as a finding and the dialogue goes on.
        """
        if note:
            message += f"\n  {note}"
        reference = self.case.reference(step.ref) if ref is True else (ref or None)
        failure = Failure(
            line=step.line,
            step=description,
            kind=kind,
            message=message,
            diffs=diffs,
            reference=reference,  # type: ignore[arg-type]
            time=time,
        )
        outcome = "fail" if fatal else self.policy(failure.reference)
        if outcome != "fail":
            self.findings.append(Finding(failure, outcome))
            self._record(step.line, description, "warning" if outcome == "warn" else "info", time, diffs, message)
            return False
        self.failure = failure
        self._record(step.line, description, "failed", time, diffs, message if kind == "timing" else "")
        self._finish(now, self._out)
        return True

    def _finish(self, now: float, out: list[Action]) -> None:
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

    def _begin(self, step: Active, now: float) -> Active | None:
        if isinstance(step, ExpectStep):
            return self._start_expect(
                ActiveExpect(
                    step,
                    step.pattern,
                    step.window_,
                    describe_pattern(step.pattern, step.window_),
                    step.label,
                    step.bind,
                )
            )
        if isinstance(step, SilenceStep):
            return ActiveSilence(step, step.seconds, f"silence for {format_duration(step.seconds)}")
        if isinstance(step, WithholdStep):
            retransmissions.expand_withhold(self, step)
            return None
        if isinstance(step, AppStep):
            ref = self.trace[self._last_event].time if self._last_event >= 0 else now
            desc = f"app {step.do}" + "".join(f" {k}={v}" for k, v in step.args)
            return ActiveApp(step, desc, cmd=step.do, earliest=ref + step.at if step.at else None)
        if isinstance(step, StateStep):
            appsteps.expand_state(self, step, now)
            return None
        if isinstance(step, AppResultStep):
            want = step.error or ("ok" if step.ok else "an answer")
            return ActiveApp(step, f"app_result of {step.of}: {want}")
        return step

    def _start_expect(self, e: ActiveExpect) -> ActiveExpect:
        e.ref_index = self._last_event
        return e

    def _run_current(self, now: float, out: list[Action]) -> bool:
        cur = self._current
        if isinstance(cur, SendStep):
            self._do_send(cur, now, out)
            self._current = None
            return True
        if isinstance(cur, ActiveExpect):
            if cur.ref_index is None:
                self._start_expect(cur)
            return self._run_expect(cur, now)
        if isinstance(cur, ActiveSilence):
            if cur.start is None:  # counted from the previous event, like every timing
                cur.start = self.trace[self._last_event].time if self._last_event >= 0 else now
            return self._run_silence(cur, now)
        if isinstance(cur, AssertStep):
            self._run_assert(cur, now)
            self._current = None
            return True
        if isinstance(cur, ActiveApp):
            return appsteps.run_app(self, cur, now)
        if isinstance(cur, ActiveRetrans):
            return retransmissions.run_retrans(self, cur, now)
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
            dport=conn.tport if conn.tport is not None else self.addr.target_port,
            seq=seq,
            ack=ack,
            flags=flags,
            window=window,
            payload=data,
            options=options,
        )

    def _emit(self, conn: Connection, seg: Segment, now: float, out: list[Action], note: str) -> None:
        seg = seg.at(now)
        out.append(seg)
        self.trace.append(TraceEntry(now, True, conn.name, seg, note=note, provisional=True))
        self._last_event = len(self.trace) - 1

    def _do_send(self, s: SendStep, now: float, out: list[Action]) -> None:
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
                fatal=True,
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

    def _late_repeat_to_skip(self, e: ActiveExpect, index: int, seg: Segment) -> bool:
        conn = self._by_port[seg.dport]
        try:
            if matches(compare(e.pattern, seg, self._conn_names(conn), self.labelled)):
                return False  # what the step expects: judge it
        except KeyError:
            return False
        return self._our_ack_was_late(index, seg)

    def _our_ack_was_late(self, index: int, seg: Segment) -> bool:
        """True when `seg` repeats a segment already taken and none of our segments had
        acknowledged it on the wire before the repeat was sent: a timely retransmission.

        Expect steps pass such a repeat over when it is not what they expect, and silence
        steps always (withhold steps never: there retransmissions are the point). The
        target did right, and the verdict must not depend on how fast the prober answers.
        """
        entry = self.trace[index]
        end = seq_add(seg.seq, seg.seg_len)
        repeated = any(
            not e.outgoing
            and e.ok is not None
            and e.conn == entry.conn
            and e.segment.seq == seg.seq
            and e.segment.flags == seg.flags
            and e.segment.payload == seg.payload
            for e in self.trace[:index]
        )
        if not repeated or seg.seg_len == 0:
            return False
        acked = any(
            e.outgoing
            and e.conn == entry.conn
            and "A" in e.segment.flags
            and not e.provisional
            and seq_diff(e.segment.ack, end) >= 0
            and e.time < seg.time
            for e in self.trace[:index]
        )
        if acked:
            return False
        entry.note = "a retransmission before our ACK reached the target (not judged)"
        return True

    def _run_expect(self, e: ActiveExpect, now: float) -> bool:
        tol = self.case.tolerance
        while True:
            taken = self._take(e.step.conn)
            if taken is None or not self._late_repeat_to_skip(e, *taken):
                break
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
                self._current = None  # (when the policy lets the case go on)
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
                fatal=True,
            )
            return True
        entry = self.trace[index]
        gap = seg.time - self._ref_time(e)
        if not matches(diffs):
            entry.ok = False
            entry.note = f"line {e.step.line}: not as expected"
            if self._fail(
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
            ):
                return True
        else:
            problem = e.window.check(gap, tol)
            if problem is not None:
                entry.ok = False
                entry.note = f"line {e.step.line}: {problem.split(':')[0]}"
                if self._fail(e.step, e.description, "timing", problem, now, diffs, seg.time, note=e.note):
                    return True
            else:
                entry.ok = True
                entry.note = f"line {e.step.line}"
                self._record(
                    e.step.line,
                    e.description,
                    "passed",
                    seg.time,
                    diffs,
                    f"{format_duration(gap)} after the previous event",
                )
        # matched, or a deviation the profile lets pass: the dialogue goes on with this segment
        self._last_event = index
        self._accept(conn, seg, e)
        self._current = None
        return True

    def _accept(self, conn: Connection, seg: Segment, e: ActiveExpect) -> None:
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

    def _run_silence(self, s: ActiveSilence, now: float) -> bool:
        assert s.start is not None
        end = s.start + s.seconds
        for item in list(self._inbox):  # retransmissions our slowness caused do not break a silence
            if self.trace[item[0]].conn == s.step.conn or s.step.conn == ANY_CONN:
                if self._our_ack_was_late(*item):
                    self._inbox.remove(item)
        mine = [(i, item) for i, item in enumerate(self._inbox) if s.step.conn in (ANY_CONN, self.trace[item[0]].conn)]
        if mine:
            position, (index, seg) = mine[0]
            if seg.time >= end:  # the first segment after the silence: for the next step
                self._record(s.step.line, s.description, "passed", end)
                self._current = None
                return True
            del self._inbox[position]
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


def _actively_opened(case: Case) -> set[str]:
    """Connections whose first step is the target's application connecting to us."""
    first: dict[str, Step] = {}
    for step in case.steps:
        first.setdefault(step.conn, step)
    return {c for c, st in first.items() if isinstance(st, AppStep) and st.do == "connect"}
