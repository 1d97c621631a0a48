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
it implements (the connections, the unexamined segments, the trace, the agent),
which is :class:`~conformance.core.context.DialogueContext`, the state it builds on.

Every check answers to a document at a level; the run's policy (from its
profile, :mod:`conformance.core.profiles`) says whether a check that does not hold
ends the dialogue with a :class:`Failure` (field diffs, timing, the document),
or is kept as a :class:`Finding` (a warning or a note) while the dialogue goes on.
"""

from __future__ import annotations

from .checks import Check
from .context import DialogueContext
from .evidence import main_reference_unchecked
from .judges import Progress, judge_for
from .judges.segments import Expect, Silence
from .model import ANY_CONN
from .outcomes import FailureKind, Outcome, Status
from .segment import IcmpError, Segment
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
from .verdict import Failure, Finding, Policy, StepRecord, TraceEntry, Verdict

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


class Dialogue(DialogueContext):
    """Plays one case; see the module docstring. Built as a :class:`~conformance.core.context.DialogueContext` (the
    case, the target's parameters, the addressing, our ports and ISNs, white or black box, the run's policy), which
    is also what its judges see."""

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
