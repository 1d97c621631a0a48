"""What a dialogue produces: its trace, the steps' records, failures and findings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .matching import FieldDiff
from .model import Reference
from .outcomes import FailureKind, Outcome, Status
from .schedules import Schedule
from .segment import Segment


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
    kind: FailureKind
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
    outcome: Outcome  # WARN (a SHOULD) | INFO (a MAY, or another stack's documented default)


#: Decides what a failed check means (see conformance.core.profiles.outcome).
Policy = Callable[[Reference | None], Outcome]


def fail_always(ref: Reference | None) -> Outcome:
    return Outcome.FAIL


@dataclass
class StepRecord:
    line: int
    description: str
    status: Status  # PASSED | FAILED | WARNING | INFO | SKIPPED
    time: float | None = None
    diffs: tuple[FieldDiff, ...] = ()
    timing: str = ""


@dataclass(frozen=True)
class Retransmission:
    """One retransmission of a withhold series, as the withhold judge judged it (the report draws these)."""

    number: int  # 1 for the first retransmission
    expected: float | None  # the gap expected before it (None: beyond the schedule's count)
    tolerance: float  # the tolerance it was judged with (the case's, widened by the timer granularity)
    measured: float | None  # the gap observed (None: it never came)
    ok: bool | None  # None: not judged
    basis: str = ""  # what the expected gap came from


@dataclass
class Series:
    """What a withhold saw: every retransmission, and how and when the target gave up."""

    line: int
    schedule: Schedule
    #: When the original segment was sent (the time the series counts from).
    origin_time: float = 0.0
    points: list[Retransmission] = field(default_factory=list)
    #: Seconds from the original segment to the target's give-up (its give-up segment, or the last retransmission
    #: plus the silence that followed it); None while the series is open.
    gave_up: float | None = None
    #: What the target sent when it gave up (e.g. "R seq=5556"), "" when it fell silent.
    give_up_segment: str = ""
    #: The silence after the last retransmission that showed the target had given up (with its tolerance).
    silence: float | None = None


@dataclass
class Verdict:
    status: Status  # PASSED | WARNING | FAILED
    failure: Failure | None
    steps: list[StepRecord]
    trace: list[TraceEntry]
    schedules: list[Schedule] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    #: Why the case is SKIPPED although it played: no check of its main reference could be made.
    skip_reason: str = ""
    findings: list[Finding] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0


def not_checked(steps: list[StepRecord]) -> list[StepRecord]:
    """The checks that could not be made (e.g. a state the tool cannot infer without an agent)."""
    return [s for s in steps if s.status == Status.SKIPPED]
