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
from collections.abc import Callable
from dataclasses import dataclass, field

from .matching import FieldDiff, compare, matches
from .model import (
    ANY_CONN,
    AppResultStep,
    AppStep,
    AssertStep,
    Case,
    ExpectStep,
    Reference,
    SegmentPattern,
    SendStep,
    SilenceStep,
    StateStep,
    Step,
    WithholdStep,
)
from .params import Params
from .schedules import SCHEDULES, Schedule
from .segment import SEQ_MOD, Segment, seq_add, seq_diff
from .timing import Window
from .values import Expr, format_duration

#: How long past a deadline the engine waits for a segment already on the wire
#: to reach it (capture delivery). Not part of the tolerance: a segment is judged
#: by its kernel timestamp, not by when the engine saw it.
DELIVERY_GRACE = 0.05
#: A state is read this long after the previous event, so that the target has
#: processed the segment that changes it (veth delivery takes microseconds).
STATE_SETTLE = 0.02
#: How long the agent may take to answer a command that should not block.
AGENT_TIMEOUT = 10.0


@dataclass(frozen=True)
class AppRequest:
    """A command for the target's agent (see :mod:`conformance.agent`)."""

    id: int
    conn: str
    cmd: str
    args: dict[str, object]


#: What :meth:`Dialogue.advance` asks the runner to do: send a segment, or give the agent a command.
Action = Segment | AppRequest


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
    #: The target's port: the service's, or learned from its SYN when its application connects.
    tport: int | None = None
    sock: int | None = None  # the agent's socket for this connection


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


@dataclass(frozen=True)
class Finding:
    """A check that did not hold but does not fail the case under the run's profile."""

    failure: Failure
    outcome: str  # warn (a SHOULD) | info (a MAY, or another stack's documented default)


#: Decides what a failed check means: "fail", "warn" or "info" (see conformance.profiles.outcome).
Policy = Callable[[Reference | None], str]


def _strict(ref: Reference | None) -> str:
    return "fail"


@dataclass
class StepRecord:
    line: int
    description: str
    status: str  # passed | failed | warning | info | skipped
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


@dataclass
class _App:
    """An app step, a state query or an app_result check in progress."""

    step: Step
    description: str
    cmd: str = ""  # agent command to send ("" for app_result)
    state: str = ""  # expected state, for state queries
    earliest: float | None = None  # not before this time
    request: int | None = None
    sent_at: float | None = None
    timeout: float = AGENT_TIMEOUT
    ref: Reference | None = None  # the document the check answers to, when not the step's ref


@dataclass
class _Retrans:
    """A withhold in progress: the target's retransmissions, judged one by one.

    The first gap is checked against the schedule's initial value (at that
    value's level: RFC 6298 §2.1 SHOULD, or a stack's documented default); each
    later gap against the previous *observed* gap times the schedule's factor
    (RFC 6298 §5.5: double the current RTO, at the withhold's own level); the
    number of retransmissions against the documented count.
    """

    step: WithholdStep
    schedule: Schedule
    count: int  # retransmissions to see
    seen: int = 0
    prev_gap: float | None = None
    extra: int = 0  # retransmissions beyond the documented count


_Active = SendStep | _Expect | _Silence | AssertStep | WithholdStep | _App | _Retrans


@dataclass
class Verdict:
    status: str  # passed | warning | failed
    failure: Failure | None
    steps: list[StepRecord]
    trace: list[TraceEntry]
    schedules: list[Schedule] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
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
        white_box: bool = True,
        policy: Policy = _strict,
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
        if isinstance(cur, _Expect):
            return self._ref_time(cur) + cur.window.deadline(self.case.tolerance) + DELIVERY_GRACE
        if isinstance(cur, _Silence) and cur.start is not None:
            return cur.start + cur.seconds + DELIVERY_GRACE
        if isinstance(cur, _App):
            if cur.sent_at is not None:
                return cur.sent_at + cur.timeout
            return cur.earliest
        if isinstance(cur, _Retrans):
            ref = self.trace[self._last_event].time if self._last_event >= 0 else (self._start or 0.0)
            return ref + self._retrans_wait(cur) + DELIVERY_GRACE
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
        if isinstance(step, AppStep):
            ref = self.trace[self._last_event].time if self._last_event >= 0 else now
            desc = f"app {step.do}" + "".join(f" {k}={v}" for k, v in step.args)
            return _App(step, desc, cmd=step.do, earliest=ref + step.at if step.at else None)
        if isinstance(step, StateStep):
            self._expand_state(step, now)
            return None
        if isinstance(step, AppResultStep):
            want = step.error or ("ok" if step.ok else "an answer")
            return _App(step, f"app_result of {step.of}: {want}")
        return step

    def _state_check(self, st: StateStep, state: str, description: str, ref: Reference | None = None) -> list[_Active]:
        """Steps that check `state`: an agent query, or probes when there is no agent."""
        if self.white_box:
            return [_App(st, description, cmd="state", state=state, ref=ref)]
        how = "black box"
        if state == "CLOSED":
            # RFC 9293 §3.10.7.1/.2: with no connection, an ACK-bearing segment gets <SEQ=SEG.ACK><CTL=RST>.
            probe = SendStep(
                line=st.line,
                conn=st.conn,
                ref=st.ref,
                flags="A",
                seq=None,
                ack=None,
                window=65535,
                data=b"",
                options=(),
            )
            want = SegmentPattern(flags="R", seq=Expr("rcv_nxt", 0))
            note = f"{how}: an ACK to a connection that does not exist gets a RST with seq = its ack"
        elif state == "TIME-WAIT":
            # RFC 9293 §3.10.7.4: in TIME-WAIT a retransmitted FIN is acknowledged again.
            probe = SendStep(
                line=st.line,
                conn=st.conn,
                ref=st.ref,
                flags="FA",
                seq=Expr("snd_nxt", -1),
                ack=None,
                window=65535,
                data=b"",
                options=(),
            )
            want = SegmentPattern(flags="A", ack=Expr("snd_nxt", 0))
            note = f"{how}: a retransmission of our FIN is acknowledged again (this restarts Linux's TIME-WAIT timer)"
        elif state == "SYN-RECEIVED":
            rto = self.params.value("rto_initial")
            e = _Expect(
                st,
                SegmentPattern(flags="SA", ack=Expr("isn", 1)),
                Window("within", 2 * rto),
                f"{description} ({how}: the SYN-ACK is retransmitted)",
                note=f"{how}: a half-open connection retransmits its SYN-ACK (RFC 6298 §2.1 initial RTO)",
            )
            return [e]
        else:
            self._record(
                st.line, f"{description} (not checked: no agent, and no black-box inference for {state})", "skipped"
            )
            return []
        return [probe, _Expect(st, want, Window("within", 1.0), f"{description} ({note})", note=note)]

    def _expand_state(self, st: StateStep, now: float) -> None:
        expanded: list[_Active] = self._state_check(st, st.state, f"state {st.state}")
        if st.lasts is not None:
            d = self.params.value(st.lasts) if isinstance(st.lasts, str) else float(st.lasts)
            tol = self.case.tolerance.of(d)
            what = f"{st.lasts} = {format_duration(d)}" if isinstance(st.lasts, str) else format_duration(d)
            # how long it lasts answers to the document of the value (a profile's, or the target's)
            lref = self.params[st.lasts].reference() if isinstance(st.lasts, str) else None
            if self.white_box:
                expanded += [
                    _Silence(st, d - tol, f"{st.state} lasts {what}: nothing from the target meanwhile"),
                    *self._state_check(
                        st,
                        st.state,
                        f"state {st.state} still, {format_duration(d - tol)} on "
                        f"({what} less tolerance {format_duration(tol)})",
                        lref,
                    ),
                ]
            expanded += [
                _Silence(st, d + tol, f"{st.state} lasts {what}: nothing from the target meanwhile"),
                *self._state_check(
                    st,
                    "CLOSED",
                    f"state CLOSED (4-tuple free) {format_duration(d + tol)} on "
                    f"({what} plus tolerance {format_duration(tol)})",
                    lref,
                ),
            ]
        self._pending.extendleft(reversed(expanded))

    def _start_expect(self, e: _Expect) -> _Expect:
        e.ref_index = self._last_event
        return e

    def _expand_withhold(self, w: WithholdStep) -> None:
        conn = self.conns[w.conn]
        schedule = SCHEDULES[w.schedule](self.params, conn.rtt)
        self.schedules.append(schedule)
        self._last_give_up = schedule.give_up
        count = min(w.count, len(schedule.intervals)) if w.count else len(schedule.intervals)
        self._pending.appendleft(_Retrans(w, schedule, count))

    # --------------------------------------------------------- retransmissions
    def _retrans_expected(self, r: _Retrans) -> float:
        """The gap expected before the next retransmission, from what was observed so far."""
        iv = r.schedule.intervals
        i = r.seen
        if i == 0 or r.prev_gap is None:
            return iv[0]
        if i < len(iv):
            return r.prev_gap * iv[i] / iv[i - 1]
        return r.prev_gap * r.schedule.give_up / iv[-1]  # beyond the count: when it should give up

    def _retrans_wait(self, r: _Retrans) -> float:
        """How long to wait for the next one before calling it missing (generous: judged after)."""
        expected = self._retrans_expected(r)
        tol = self.case.tolerance.of(expected)
        if r.seen >= r.count:
            return expected + tol  # the give-up silence
        return (3 if r.seen == 0 else 2) * expected + tol

    def _retrans_ref(self, r: _Retrans, what: str) -> Reference | None | bool:
        param = r.schedule.initial_param if what == "initial" else r.schedule.count_param
        if param is None or param not in self.params:
            return True
        return self.params[param].reference()

    def _run_retrans(self, r: _Retrans, now: float) -> bool:
        w, sched = r.step, r.schedule
        tol = self.case.tolerance
        ref_time = self.trace[self._last_event].time if self._last_event >= 0 else now
        n = r.count
        label = f"withhold {w.what}: retransmission {r.seen + 1}/{n} of {w.retransmits}"
        note = f"schedule {sched.name}: {sched.derivation}"
        taken = self._take(w.conn)
        if taken is None:
            if now <= ref_time + self._retrans_wait(r) + DELIVERY_GRACE:
                return False
            if r.seen >= r.count:  # the silence after the last one held: done
                if w.then_silence:
                    self._record(w.line, f"withhold {w.what}: no retransmission after the last one", "passed", now)
                self._current = None
                return True
            waited = format_duration(now - ref_time)
            if r.seen == 0:
                self._fail(
                    w,
                    label,
                    "missing",
                    f"the target never retransmitted {w.retransmits} (waited {waited})",
                    now,
                    note=note,
                )
            else:
                self._fail(
                    w,
                    label,
                    "missing",
                    f"only {r.seen} retransmission(s) came, the schedule has {n} (nothing in {waited} "
                    f"after the last one)",
                    now,
                    note=note,
                    ref=self._retrans_ref(r, "count"),
                )
            self._current = None
            return True
        index, seg = taken
        entry = self.trace[index]
        conn = self._by_port[seg.dport]
        gap = seg.time - ref_time
        diffs = tuple(compare(SegmentPattern(same_as=w.retransmits), seg, self._conn_names(conn), self.labelled))
        if r.seen >= r.count:
            # more than the documented count: a deviation of the count (or, without then_silence, not ours)
            if not w.then_silence:
                self._inbox.appendleft(taken)
                self._current = None
                return True
            entry.ok, entry.note = False, f"line {w.line}: one more than the schedule"
            r.extra += 1
            if self._fail(
                w,
                f"withhold {w.what}: no retransmission after the last one",
                "unexpected",
                f"a retransmission beyond the schedule's {n} came {format_duration(gap)} after the last "
                f"one (expected silence for {format_duration(self._retrans_expected(r))})",
                now,
                diffs,
                seg.time,
                note=note,
                ref=self._retrans_ref(r, "count"),
            ):
                return True
            self._last_event = index
            r.prev_gap = gap
            if r.extra > 2 * max(1, n):
                self._current = None
            return True
        if not matches(diffs):
            entry.ok, entry.note = False, f"line {w.line}: not a retransmission of {w.retransmits}"
            if self._fail(
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
        expected = self._retrans_expected(r)
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
            if self._fail(
                w,
                label + f" after {basis}",
                "timing",
                problem,
                now,
                diffs,
                seg.time,
                note=note,
                ref=self._retrans_ref(r, "initial") if what == "initial" else True,
            ):
                return True
        else:
            entry.ok, entry.note = True, f"line {w.line}"
            self._record(
                w.line,
                f"{label} after {basis}",
                "passed",
                seg.time,
                diffs,
                f"{format_duration(gap)} after the previous event",
            )
        self._last_event = index
        r.seen += 1
        r.prev_gap = gap
        if r.seen >= r.count and not w.then_silence:
            self._current = None
        return True

    def _run_current(self, now: float, out: list[Action]) -> bool:
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
        if isinstance(cur, _App):
            return self._run_app(cur, now)
        if isinstance(cur, _Retrans):
            return self._run_retrans(cur, now)
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

    def _request(self, cur: _App, now: float, conn: Connection) -> AppRequest | str:
        """Build the agent command of `cur`, or say why it cannot be built."""
        args: dict[str, object] = {}
        step = cur.step
        if isinstance(step, AppStep):
            args.update(dict(step.args))
        cmd = cur.cmd
        if cmd == "state":
            if conn.tport is None:
                return f"the target's port of connection {conn.name} is not known yet"
            args = {"local": [self.addr.target_ip, conn.tport], "remote": [self.addr.our_ip, conn.sport]}
        elif cmd == "listen":
            args["port"] = self.addr.target_port
            args["addr"] = "::" if ":" in self.addr.target_ip else "0.0.0.0"
        elif cmd == "accept":
            if self._listener is None:
                return "accept before listen"
            args.update(sock=self._listener, timeout=float(args.get("timeout", 5.0)))  # type: ignore[arg-type]
            cur.timeout = float(args["timeout"]) + AGENT_TIMEOUT  # type: ignore[arg-type]
        elif cmd == "connect":
            args.update(addr=self.addr.our_ip, port=conn.sport)
            cur.timeout = 600.0
        else:
            if conn.sock is None:
                return f"the application has no socket for connection {conn.name} (accept or connect first)"
            args["sock"] = conn.sock
            if cmd == "recv":
                cur.timeout = float(args.get("timeout", 5.0)) + AGENT_TIMEOUT  # type: ignore[arg-type]
        req = AppRequest(self._next_request, conn.name, cmd, args)
        self._next_request += 1
        return req

    def _run_app(self, cur: _App, now: float) -> bool:
        step = cur.step
        conn = self.conns[step.conn] if step.conn in self.conns else next(iter(self.conns.values()))
        if isinstance(step, AppResultStep):
            return self._run_app_result(cur, step, now)
        if cur.request is None:
            if cur.earliest is None and cur.cmd == "state":
                ref = self.trace[self._last_event].time if self._last_event >= 0 else now
                cur.earliest = ref + STATE_SETTLE
            if cur.earliest is not None and now < cur.earliest:
                return False
            req = self._request(cur, now, conn)
            if isinstance(req, str):
                self._fail(step, cur.description, "app", f"cannot run: {req}", now, fatal=True)
                return True
            cur.request, cur.sent_at = req.id, now
            self._out.append(req)
            if isinstance(step, AppStep) and step.label:
                self._request_label[req.id] = step.label
            if isinstance(step, AppStep) and not step.wait:
                self._record(step.line, cur.description, "passed", now, timing="not waited for")
                self._current = None
                return True
            return True
        got = self._answers.pop(cur.request, None)
        if got is None:
            assert cur.sent_at is not None
            if now > cur.sent_at + cur.timeout:
                self._fail(
                    step,
                    cur.description,
                    "agent",
                    f"the target agent did not answer within {cur.timeout:g} s",
                    now,
                    fatal=True,
                )
                return True
            return False
        answer, when = got
        if cur.cmd == "state":
            return self._check_state(cur, conn, answer, when, now)
        if not answer.get("ok"):
            self._fail(
                step,
                cur.description,
                "app",
                f"the target's application failed: {cur.cmd} -> {answer.get('error')} ({answer.get('detail', '')})",
                now,
                time=when,
                fatal=True,
            )
            return True
        if cur.cmd == "listen":
            self._listener = int(answer["sock"])  # type: ignore[call-overload]
        elif cur.cmd in ("accept", "connect"):
            conn.sock = int(answer["sock"])  # type: ignore[call-overload]
        self._record(step.line, cur.description, "passed", when)
        self._current = None
        return True

    def _check_state(self, cur: _App, conn: Connection, answer: dict[str, object], when: float, now: float) -> bool:
        step = cur.step
        ref = self.trace[self._last_event].time if self._last_event >= 0 else (self._start or now)
        how = (
            f"white box: sock_diag in the target (Linux {answer.get('linux')}), "
            f"read {format_duration(when - ref)} after the previous event"
        )
        if not answer.get("ok"):
            self._fail(
                step,
                cur.description,
                "agent",
                f"the agent could not read the state: {answer.get('detail')}",
                now,
                fatal=True,
            )
            return True
        observed = str(answer.get("state"))
        if observed != cur.state:
            self._fail(
                step,
                cur.description,
                "state",
                f"expected state {cur.state}, observed {observed} ({how})",
                now,
                diffs=(FieldDiff("state", cur.state, observed, False),),
                time=when,
                ref=cur.ref if cur.ref is not None else True,
            )
            self._current = None
            return True
        self._record(step.line, cur.description, "passed", when, (FieldDiff("state", cur.state, observed, True),), how)
        self._current = None
        return True

    def _run_app_result(self, cur: _App, step: AppResultStep, now: float) -> bool:
        tol = self.case.tolerance
        ref = self.trace[self._last_event].time if self._last_event >= 0 else (self._start or now)
        window = step.window
        if step.give_up and self._last_give_up is not None:
            window = Window("after", self._last_give_up)
        got = self.app_results.get(step.of)
        if got is None:
            limit = ref + (window.deadline(tol) if window else 600.0) + DELIVERY_GRACE
            cur.earliest = limit  # for next_deadline
            if now > limit:
                self._fail(
                    step,
                    cur.description,
                    "missing",
                    f"no answer from the application's {step.of} ({window or 'any time'} of the previous event)",
                    now,
                )
                self._current = None
                return True
            return False
        answer, when = got
        diffs: list[FieldDiff] = []
        if step.error is not None:
            observed = str(answer.get("error")) if not answer.get("ok") else "success"
            diffs.append(FieldDiff("result", step.error, observed, observed == step.error))
        if step.ok is not None:
            diffs.append(FieldDiff("ok", str(step.ok), str(bool(answer.get("ok"))), bool(answer.get("ok")) == step.ok))
        if not all(d.ok for d in diffs):
            self._fail(
                step, cur.description, "app", f"the application's {step.of} ended otherwise", now, tuple(diffs), when
            )
            self._current = None
            return True
        if window is not None:
            problem = window.check(when - ref, tol)
            if problem is not None:
                self._fail(step, cur.description, "timing", problem, now, tuple(diffs), when)
                self._current = None
                return True
        self._record(
            step.line,
            cur.description,
            "passed",
            when,
            tuple(diffs),
            f"{format_duration(when - ref)} after the previous event",
        )
        self._current = None
        return True

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
