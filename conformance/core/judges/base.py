"""The one protocol of an active step, and what the engine offers the steps.

A case's steps are data (:mod:`conformance.core.model`). When the engine reaches one, it makes its *judge*, an
:class:`ActiveStep`, and from then on talks to it through four calls only:

* :meth:`ActiveStep.start` — the step becomes current at ``now`` (timings count from the previous event);
* :meth:`ActiveStep.advance` — segments or agent answers may have arrived, and the time is ``now``: the step
  takes what it needs through the :class:`Context` and says how far it got (:class:`Progress`);
* :meth:`ActiveStep.deadline` — when it must be advanced again if nothing arrives;
* :attr:`ActiveStep.outcome` — what it concluded (set as it records its checks).

The engine alone moves from one step to the next: a judge never touches the list of steps. A judge that needs
several checks in a row (a ``state`` with ``lasts:``) holds them as children of a :class:`Sequence`.

The :class:`Context` is everything a judge may use of the dialogue: the connections, the unexamined segments,
the trace, the names bound so far, the agent, and the two ways to conclude, ``record`` and ``fail``. It is a
:class:`~typing.Protocol` that :class:`~conformance.core.engine.Dialogue` implements; tests may give a judge
any object with these members.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence as Seq
from enum import Enum
from typing import Protocol

from ..checks import Check
from ..matching import FieldDiff
from ..model import Case, Reference, Step
from ..outcomes import FailureKind, Status
from ..params import Params
from ..schedules import Schedule
from ..segment import Segment
from ..steps import Addressing, Connection
from ..verdict import Series, TraceEntry

#: A segment the dialogue has not examined yet: its index in the trace, and the segment.
Taken = tuple[int, Segment]


class Progress(Enum):
    """How far :meth:`ActiveStep.advance` got."""

    WAIT = "wait"  # nothing more until a segment, an answer or the deadline
    AGAIN = "again"  # made progress and is still current: advance it again at the same time
    DONE = "done"  # finished: the engine moves on to the next step


class Context(Protocol):
    """What the engine offers a judge (see the module docstring)."""

    case: Case
    params: Params
    addr: Addressing
    conns: dict[str, Connection]
    white_box: bool
    labelled: dict[str, Segment]
    #: Values bound by earlier expect steps (``bind:``), by name.
    names: dict[str, int]
    #: The trace index of the last event the steps dealt with (-1: none yet): what the next timing counts from.
    last_event: int
    #: When the answer of the last ``app`` step that was waited for arrived (None: none yet). A ``within`` window
    #: counts from it when it is later than the last event on the wire: the target cannot send what its
    #: application has not yet been told to do, and the agent's round trips are the prober's time, not the
    #: target's (RFC 9293 judges the stack, not our harness).
    last_app_answer: float | None
    #: The application's listening socket (the agent's number for it), once a ``listen`` succeeded.
    listener: int | None
    #: The give-up time of the last withhold's schedule (``app_result ... after: give_up``).
    last_give_up: float | None
    #: What the last withhold saw (its schedule, when its original was sent), for ``after: give_up``.
    last_series: Series | None

    def names_for(self, conn: Connection) -> dict[str, int]: ...
    def conn_of(self, seg: Segment) -> Connection: ...
    def take(self, conn: str) -> Taken | None: ...
    def put_back(self, taken: Taken) -> None: ...
    def unexamined(self) -> list[Taken]: ...
    def discard(self, taken: Taken) -> None: ...
    def entry(self, index: int) -> TraceEntry: ...
    def event_time(self, index: int) -> float: ...
    def last_event_time(self, default: float) -> float: ...
    def mark_event(self, index: int) -> None: ...
    def bad_checksums(self, conn: str, since: float) -> list[TraceEntry]: ...
    def opened(self, conn: str) -> float | None: ...
    def blind_since(self) -> TraceEntry | None: ...
    def emit(self, conn: Connection, seg: Segment, now: float, note: str) -> None: ...
    def segment(
        self,
        conn: Connection,
        flags: str,
        seq: int,
        ack: int,
        window: int,
        data: bytes,
        options: tuple[tuple[str, object], ...],
    ) -> Segment: ...
    def accept(self, conn: Connection, seg: Segment, label: str | None, bind: Seq[tuple[str, str]]) -> None: ...
    def our_ack_was_late(self, index: int, seg: Segment) -> bool: ...
    def add_schedule(self, schedule: Schedule) -> None: ...
    def add_series(self, series: Series) -> None: ...
    def ask(self, conn: str, cmd: str, args: dict[str, object], label: str | None) -> int: ...
    def answer(self, request: int) -> tuple[dict[str, object], float] | None: ...
    def app_result(self, label: str) -> tuple[dict[str, object], float] | None: ...
    def record(
        self,
        line: int,
        description: str,
        status: Status,
        time: float | None = None,
        diffs: tuple[FieldDiff, ...] = (),
        timing: str = "",
    ) -> None: ...
    def skip_rest(self, reason: str, now: float) -> None: ...
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
    ) -> bool: ...
    def document(self, step: Step, check: Check) -> Reference | None: ...


class ActiveStep(ABC):
    """A step in progress: started once, advanced until it is done (see the module docstring)."""

    step: Step
    #: The worst status its checks recorded so far (None: none yet).
    outcome: Status | None = None

    def start(self, ctx: Context, now: float) -> None:  # noqa: B027 (most steps need nothing at start)
        """The step becomes current at `now`."""

    @abstractmethod
    def advance(self, ctx: Context, now: float) -> Progress:
        """Take what arrived, judge it, and say how far the step got."""

    def deadline(self, ctx: Context) -> float | None:
        """When to advance the step again if nothing arrives (None: only when something arrives)."""
        return None


class Sequence(ActiveStep):
    """Several judges run one after the other as one step (e.g. a state check and how long it lasts)."""

    def __init__(self, step: Step, children: list[ActiveStep]) -> None:
        self.step = step
        self.children = children
        self._index = 0
        self._started = False

    @property
    def current(self) -> ActiveStep | None:
        return self.children[self._index] if self._index < len(self.children) else None

    def advance(self, ctx: Context, now: float) -> Progress:
        child = self.current
        if child is None:
            return Progress.DONE
        if not self._started:
            child.start(ctx, now)
            self._started = True
        progress = child.advance(ctx, now)
        if progress is Progress.DONE:
            self._index += 1
            self._started = False
            return Progress.AGAIN if self.current is not None else Progress.DONE
        return progress

    def deadline(self, ctx: Context) -> float | None:
        child = self.current
        return child.deadline(ctx) if child is not None and self._started else None


def stale(ctx: Context, taken: Taken, line: int) -> bool:
    """A segment captured before our first segment of its connection cannot belong to it (a segment of an earlier
    connection on the same 4-tuple, say): noted in the trace, dropped, True."""
    index, seg = taken
    opened = ctx.opened(ctx.entry(index).conn)
    if opened is None or seg.time >= opened:
        return False
    ctx.entry(index).note = f"line {line}: captured before our first segment of this connection (not judged)"
    return True


def blind(ctx: Context, step: Step, description: str, now: float) -> bool:
    """Before concluding from an absence: did the wire see our own segments? If our latest segment never came
    back from the capture, the wire is blind and silence proves nothing: a harness error, True."""
    unseen = ctx.blind_since()
    if unseen is None:
        return False
    ctx.fail(
        step,
        description,
        FailureKind.HARNESS,
        f"the capture never saw our own {unseen.segment.flags or '<no flags>'} seq={unseen.segment.seq} "
        f"({unseen.note or 'sent'}): the wire is blind, so that nothing came from the target proves nothing",
        now,
        fatal=True,
    )
    return True


def only_bad_checksums(ctx: Context, step: Step, description: str, now: float, conn: str, since: float) -> bool:
    """Nothing valid came, but copies with a bad checksum did: the target's checksums are wrong (MUST-2)."""
    bad = ctx.bad_checksums(conn, since)
    if not bad:
        return False
    first = bad[0]
    ctx.fail(
        step,
        description,
        FailureKind.MISMATCH,
        f"only segments with a bad TCP checksum came ({len(bad)}, the first {first.segment.flags} "
        f"seq={first.segment.seq} {first.time - since:.3f} s after the previous event): a corrupt copy is not "
        "an answer",
        now,
        time=first.time,
        check=Check.CHECKSUM,
    )
    return True
