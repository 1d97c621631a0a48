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
from the target's parameters; ``app``, ``state`` and ``app_result`` steps go
through the target's agent, or probes when there is none.

Each step is played by a *judge* (:mod:`conformance.core.judges`), an object with
one protocol: ``start``, ``advance(now)``, ``deadline()`` and its ``outcome``. The
dialogue owns the list of steps and alone moves from one to the next; the judges
see the dialogue only through the :class:`~conformance.core.judges.base.Context`
it implements (the connections, the unexamined segments, the trace, the agent).

Every check answers to a document at a level; the run's policy (from its
profile, :mod:`conformance.core.profiles`) says whether a check that does not hold
ends the dialogue with a :class:`Failure` (field diffs, timing, the document),
or is kept as a :class:`Finding` (a warning or a note) while the dialogue goes on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence as Seq

from .checks import Check, document
from .evidence import accepted_rst_seq, blind_since, late_repeat, main_reference_unchecked, opened
from .ipfields import BIND_FIELDS, observed
from .judges import ActiveStep, Progress, judge_for
from .judges.base import Taken
from .judges.segments import Expect, Silence
from .matching import FieldDiff
from .model import ANY_CONN, AppStep, Case, Reference, Step
from .outcomes import FailureKind, Outcome, Status
from .params import Params
from .schedules import Schedule
from .segment import SEQ_MOD, IcmpError, Segment, seq_add, seq_diff
from .steps import (
    AGENT_TIMEOUT,
    DELIVERY_GRACE,
    STATE_SETTLE,
    Action,
    Addressing,
    AppRequest,
    Connection,
    describe_pattern,
    describe_send,
)
from .verdict import Failure, Finding, Policy, Series, StepRecord, TraceEntry, Verdict, fail_always

__all__ = [
    "AGENT_TIMEOUT",
    "describe_pattern",
    "describe_send",
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
    """Plays one case; see the module docstring. Implements the judges' :class:`~conformance.core.judges.Context`."""

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
        self._pending: deque[Step] = deque(case.steps)
        self._current: ActiveStep | None = None
        self._inbox: deque[Taken] = deque()  # (trace index, segment), not examined yet
        #: ICMP errors that came while an expect step waited, or during a silence
        self._icmp: list[tuple[Expect | Silence, int, IcmpError]] = []
        self._bad_checksums: list[int] = []  # trace indexes of the target's segments with a bad checksum
        self.trace: list[TraceEntry] = []
        self.steps: list[StepRecord] = []
        self.names: dict[str, int] = {}
        self.labelled: dict[str, Segment] = {}
        self.schedules: list[Schedule] = []
        self.series: list[Series] = []
        #: Trace index of the last event the steps have dealt with (a segment we
        #: sent, or one an expect step took): what the next timing counts from.
        self.last_event = -1
        self.last_app_answer: float | None = None
        self._out: list[Action] = []  # the list advance() is filling
        self.failure: Failure | None = None
        self.done = False
        self._start: float | None = None
        self._end: float | None = None
        self._next_request = 1
        self._answers: dict[int, tuple[dict[str, object], float]] = {}
        self._request_label: dict[int, str] = {}
        self.app_results: dict[str, tuple[dict[str, object], float]] = {}
        self.listener: int | None = None
        self.last_give_up: float | None = None
        self.last_series: Series | None = None

    # ------------------------------------------------------------------ inputs
    def receive(self, seg: Segment) -> None:
        """A segment of this dialogue seen on the wire (either direction)."""
        if seg.src == self.addr.our_ip or seg.extra.get("ours"):  # ours: from our MAC, a named source (ipfields)
            self._own_segment_captured(seg)
            return
        conn = self._by_port.get(seg.dport)
        if conn is None:
            return
        if conn.tport is None and "S" in seg.flags:
            conn.tport = seg.sport  # the target's application connected to us: learn its port
            if seg.src != self.addr.target_ip and self.addr.name_of(seg.src) is not None:
                conn.taddr = seg.src  # and its address, when it is another of the target's (never any other)
        if seg.sport != conn.tport:
            return
        name = self.addr.name_of(seg.src)
        if name is not None:  # which of the target's addresses it came from (an expect's ip src, core.ipfields)
            seg.extra["src_name"] = name
        seg.extra["to_prober"] = seg.dst == self.addr.our_ip  # a source route's first hop (core.ipfields)
        self.trace.append(TraceEntry(seg.time, False, conn.name, seg))
        if seg.checksum_ok is False:  # a corrupt copy: noted, never judged as the target's answer
            self.trace[-1].note = "bad TCP checksum: not judged as the target's answer (RFC 9293 MUST-2)"
            self._bad_checksums.append(len(self.trace) - 1)
            return
        if "S" in seg.flags and "A" in seg.flags:
            conn.synack_time = seg.time
        if not self.done:
            self._inbox.append((len(self.trace) - 1, seg))
        elif conn.cleaned_up and seg.flags == "A":  # a challenge ACK (RFC 5961 §3.2)
            self.trace[-1].note = (
                "after the end of the case: the target did not take our cleanup RST (it answered with an ACK) "
                "and may keep the connection"
            )
        else:
            self.trace[-1].note = "after the end of the case"

    def app_answer(self, request: int, answer: dict[str, object], time: float) -> None:
        """The agent's answer to an :class:`AppRequest`, with the time it arrived."""
        self._answers[request] = (answer, time)
        label = self._request_label.pop(request, None)
        if label is not None:
            self.app_results[label] = (answer, time)

    def receive_icmp(self, error: IcmpError) -> None:
        """An ICMP or ICMPv6 error quoting a segment of ours: noted in the trace; an expect step waiting when it
        came fails on it at the next :meth:`advance` (the target answered with ICMP instead of a segment)."""
        if error.src == self.addr.our_ip:  # one we sent (a send with icmp:), captured on its way out
            self._own_segment_captured(error.as_segment().at(error.time))
            return
        conn = self._by_port.get(error.quoted.sport)
        if conn is None:
            return
        sender = "the target" if error.src == self.addr.target_ip else error.src
        note = f"{error.type_name} from {sender}: {error.text}"
        self.trace.append(TraceEntry(error.time, False, conn.name, error.as_segment(), note=note))
        if error.src != self.addr.target_ip or not error.unreachable:
            return  # noted only: a router's or another host's error, or one that says nothing about the port
        current = self._current
        waiting = isinstance(current, Expect) and current.step.conn == conn.name
        quiet = isinstance(current, Silence) and current.step.conn in (conn.name, ANY_CONN)
        if not self.done and isinstance(current, Expect | Silence) and (waiting or quiet):
            self._icmp.append((current, len(self.trace) - 1, error))

    def _answered_with_icmp(self, now: float) -> bool:
        """Fail the waiting expect step on an ICMP error that came instead of its segment (True: the case failed;
        under a policy that only warns, the step goes on waiting)."""
        pending, self._icmp = self._icmp, []
        for judge, index, error in pending:
            if judge is not self._current:
                continue
            if any(self.trace[i].conn == self.trace[index].conn for i, _ in self._inbox):
                continue  # a segment of the flow came too: the step judges it, the ICMP error stays a note
            self.trace[index].ok = False
            sender = "the target" if error.src == self.addr.target_ip else f"{error.src} (not the target)"
            if isinstance(judge, Silence):  # e.g. a RST to a closed port, which RFC 9293 §3.10.7.1 discards
                message = f"{sender} answered with ICMP {error.text} where nothing may come: {error.describe()}"
                kind, check = FailureKind.UNEXPECTED, Check.UNEXPECTED
            else:
                assert isinstance(judge, Expect)
                wanted = "a RST" if "R" in (judge.pattern.flags or "") else "a segment"
                message = f"{sender} answered with ICMP {error.text} instead of {wanted}: {error.describe()}"
                kind, check = FailureKind.MISMATCH, Check.MISSING
            return self.fail(judge.step, judge.description, kind, message, now, time=error.time, check=check)
        return False

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
                self._current = judge_for(self._pending.popleft(), self)
                self._current.start(self, now)
            if self._icmp and self._answered_with_icmp(now):
                break
            progress = self._current.advance(self, now)
            if self.done or progress is Progress.WAIT:
                break
            if progress is Progress.DONE:
                self._current = None
                if self.failure is not None:  # a judge that kept watching after its failure is done now
                    self._finish(now, out)
        return out

    def next_deadline(self) -> float | None:
        """When to call :meth:`advance` next if no segment arrives."""
        if self.done or self._current is None:
            return None
        return self._current.deadline(self)

    def verdict(self) -> Verdict:
        status = Status.PASSED
        skip_reason = ""
        if self.failure:
            status = Status.FAILED
        elif self.done and (skip_reason := main_reference_unchecked(self.case, self.steps)):
            status = Status.SKIPPED
        elif any(f.outcome == Outcome.WARN for f in self.findings):
            status = Status.WARNING
        return Verdict(
            skip_reason=skip_reason,
            status=status,
            findings=self.findings,
            failure=self.failure,
            steps=self.steps,
            trace=self.trace,
            schedules=self.schedules,
            series=self.series,
            start=self._start or 0.0,
            end=self._end or (self._start or 0.0),
        )

    # ------------------------------------------------- the judges' Context
    def names_for(self, conn: Connection) -> dict[str, int]:
        """The names an expression of `conn` may use: the bound ones, isn, snd_nxt and rcv_nxt."""
        names = dict(self.names)
        names["isn"] = conn.isn
        names["snd_nxt"] = conn.snd_nxt
        if conn.rcv_nxt is not None:
            names["rcv_nxt"] = conn.rcv_nxt
        return names

    def conn_of(self, seg: Segment) -> Connection:
        """The connection a segment from the target belongs to."""
        return self._by_port[seg.dport]

    def take(self, conn: str) -> Taken | None:
        """The oldest unexamined segment of connection `conn`, removed from the inbox."""
        for i, (index, seg) in enumerate(self._inbox):
            if self.trace[index].conn == conn:
                del self._inbox[i]
                return index, seg
        return None

    def put_back(self, taken: Taken) -> None:
        """Return a taken segment, unexamined, for the next step."""
        self._inbox.appendleft(taken)

    def unexamined(self) -> list[Taken]:
        return list(self._inbox)

    def discard(self, taken: Taken) -> None:
        self._inbox.remove(taken)

    def entry(self, index: int) -> TraceEntry:
        return self.trace[index]

    def event_time(self, index: int) -> float:
        """The time of trace entry `index`; the dialogue's start for -1."""
        return self.trace[index].time if index >= 0 else (self._start or 0.0)

    def last_event_time(self, default: float) -> float:
        """The time of the last event the steps dealt with; `default` when there is none yet."""
        return self.trace[self.last_event].time if self.last_event >= 0 else default

    def mark_event(self, index: int) -> None:
        self.last_event = index

    def bad_checksums(self, conn: str, since: float) -> list[TraceEntry]:
        """The target's segments on `conn` with a bad checksum captured at or after `since` (never judged)."""
        return [e for e in (self.trace[i] for i in self._bad_checksums) if e.conn == conn and e.time >= since]

    def opened(self, conn: str) -> float | None:
        return opened(self.trace, conn)

    def blind_since(self) -> TraceEntry | None:
        return blind_since(self.trace)

    def document(self, step: Step, check: Check) -> Reference | None:
        """The document check `check` of `step` answers to."""
        return document(self.case, step, check)

    def add_schedule(self, schedule: Schedule) -> None:
        self.schedules.append(schedule)

    def add_series(self, series: Series) -> None:
        self.series.append(series)
        self.last_series = series

    def ask(self, conn: str, cmd: str, args: dict[str, object], label: str | None) -> int:
        """Give the agent a command (sent with this advance's actions); its number, for :meth:`answer`."""
        req = AppRequest(self._next_request, conn, cmd, args)
        self._next_request += 1
        self._out.append(req)
        if label:
            self._request_label[req.id] = label
        return req.id

    def answer(self, request: int) -> tuple[dict[str, object], float] | None:
        """The agent's answer to `request` with its time, once (None: not yet)."""
        return self._answers.pop(request, None)

    def app_result(self, label: str) -> tuple[dict[str, object], float] | None:
        return self.app_results.get(label)

    def record(
        self,
        line: int,
        description: str,
        status: Status,
        time: float | None = None,
        diffs: tuple[FieldDiff, ...] = (),
        timing: str = "",
    ) -> None:
        """A check's outcome, for the report's steps."""
        self.steps.append(StepRecord(line, description, status, time, diffs, timing))
        if self._current is not None and (self._current.outcome in (None, Status.PASSED)):
            self._current.outcome = status

    def fail(
        self,
        step: Step,
        description: str,
        kind: FailureKind,
        message: str,
        now: float,
        diffs: tuple[FieldDiff, ...] = (),
        time: float | None = None,
        note: str = "",
        ref: Reference | None | bool = True,
        fatal: bool = False,
        check: Check | None = None,
        keep_going: bool = False,
    ) -> bool:
        """A check did not hold. Returns True when that fails the case.

        `ref` is the document the check answers to (True: the document of `check` of the step, see
        :mod:`conformance.core.checks`). Unless `fatal`, the run's policy decides: a failure ends the case; a
        warning or a note is recorded as a finding and the dialogue goes on. With `keep_going`, a failure is
        recorded but the case ends only when the current step is done (a withhold watches its whole series).
        """
        if note:
            message += f"\n  {note}"
        if ref is not True:
            reference = ref or None
        elif check is not None:
            reference = self.document(step, check)
        else:
            reference = self.case.reference(step.ref)
        failure = Failure(step.line, description, kind, message, diffs, reference, time)
        outcome = Outcome.FAIL if fatal else self.policy(failure.reference)
        if outcome != Outcome.FAIL:
            self.findings.append(Finding(failure, outcome))
            status = Status.WARNING if outcome == Outcome.WARN else Status.INFO
            self.record(step.line, description, status, time, diffs, message)
            return False
        if self.failure is None:
            self.failure = failure
        # a further failure of a step that kept going is in its record, with its message
        shown = message if kind == FailureKind.TIMING or keep_going else ""
        self.record(step.line, description, Status.FAILED, time, diffs, shown)
        if not keep_going:
            self._finish(now, self._out)
        return True

    def emit(self, conn: Connection, seg: Segment, now: float, note: str) -> None:
        """Send `seg` now; it is in the trace from now on, timed by its capture when that comes back."""
        seg = seg.at(now)
        self._out.append(seg)
        self.trace.append(TraceEntry(now, True, conn.name, seg, note=note, provisional=True))
        self.last_event = len(self.trace) - 1

    def segment(
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
            dst=conn.taddr or self.addr.target_ip,
            sport=conn.sport,
            dport=conn.tport if conn.tport is not None else self.addr.target_port,
            seq=seq,
            ack=ack,
            flags=flags,
            window=window,
            payload=data,
            options=options,
        )

    def accept(self, conn: Connection, seg: Segment, label: str | None, bind: Seq[tuple[str, str]]) -> None:
        """The dialogue goes on with `seg`: advance rcv_nxt, note a RST, keep its label and bound values."""
        if "S" in seg.flags:
            conn.rcv_nxt = seq_add(seg.seq, seg.seg_len)
        elif seg.seg_len and conn.rcv_nxt is not None:
            end = seq_add(seg.seq, seg.seg_len)
            if seq_diff(end, conn.rcv_nxt) > 0:
                conn.rcv_nxt = end
        if "R" in seg.flags:
            conn.reset = True
        if label:
            self.labelled[label] = seg
        for name, fld in bind:
            if fld in BIND_FIELDS:  # an IP header field (core.ipfields): bound when the capture has it
                value = observed(seg.extra, {"ip_id": "id"}.get(fld, fld))
                if value is not None:
                    self.names[name] = value
                continue
            self.names[name] = {"seq": seg.seq, "ack": seg.ack, "win": seg.window, "len": len(seg.payload)}[fld]

    def our_ack_was_late(self, index: int, seg: Segment) -> bool:
        """A repeat our late ACK caused (see :func:`conformance.core.evidence.late_repeat`): noted, not judged."""
        floor = self.params.value("retransmit_floor") if "retransmit_floor" in self.params else 0.0
        if not late_repeat(self.trace, index, seg, floor):
            return False
        self.trace[index].note = "a retransmission before our ACK reached the target (not judged)"
        return True

    # ---------------------------------------------------------------- internals
    def _own_segment_captured(self, seg: Segment) -> None:
        for entry in self.trace:
            if (
                entry.provisional
                and entry.outgoing
                and entry.segment.sport == seg.sport
                and entry.segment.seq == seg.seq
                and entry.segment.flags == seg.flags
                and ("icmp" in entry.segment.extra) == ("icmp" in seg.extra)
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
            seg = self.segment(conn, "R", accepted_rst_seq(self.trace, conn.name, conn.snd_nxt), 0, 0, b"", ())
            self.emit(conn, seg, now, note="cleanup (not judged)")
            conn.reset = conn.cleaned_up = True


def _actively_opened(case: Case) -> set[str]:
    """Connections whose first step is the target's application connecting to us."""
    first: dict[str, Step] = {}
    for step in case.steps:
        first.setdefault(step.conn, step)
    return {c for c, st in first.items() if isinstance(st, AppStep) and st.do == "connect"}
