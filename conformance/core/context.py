"""What a dialogue offers its judges: the state of one case in play and the judges' Context over it.

:class:`DialogueContext` holds what a :class:`~conformance.core.engine.Dialogue` knows while it plays a case: the
connections, the trace, the segments not examined yet, the names bound so far, the agent's requests and answers,
and the findings and failure so far. Its methods are the :class:`~conformance.core.judges.base.Context` the judges
use, the two ways a check concludes (:meth:`~DialogueContext.record` and :meth:`~DialogueContext.fail`), and how a
case ends (:meth:`~DialogueContext._finish`: the cleanup RSTs that leave the target clean).

It never chooses which step runs: taking inputs and moving from one step to the next is the engine's
(:mod:`conformance.core.engine`), which builds on this class.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence as Seq

from .checks import Check, document
from .evidence import accepted_rst_seq, blind_since, late_repeat, opened
from .ipfields import BIND_FIELDS, observed
from .judges import ActiveStep
from .judges.base import Taken
from .judges.segments import Expect, Silence
from .matching import FieldDiff
from .model import AppStep, Case, Reference, Step
from .outcomes import FailureKind, Outcome, Status
from .params import Params
from .schedules import Schedule
from .segment import SEQ_MOD, IcmpError, Segment, seq_add, seq_diff
from .steps import Action, Addressing, AppRequest, Connection
from .verdict import Failure, Finding, Policy, Series, StepRecord, TraceEntry, fail_always


class DialogueContext:
    """The state of one case in play, and the judges' :class:`~conformance.core.judges.base.Context` over it."""

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
        self._pending: deque[Step] = deque(case.steps)  # the steps not started yet: the engine's to take
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

    def skip_rest(self, reason: str, now: float) -> None:
        """End the case here: every step not started yet is recorded as not checked, for `reason` (the verdict is
        then not checked when none of its main reference's checks was made, see core.evidence)."""
        while self._pending:
            step = self._pending.popleft()
            self.record(step.line, f"not checked: {reason}", Status.SKIPPED, now)

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
