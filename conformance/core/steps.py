"""The engine's working parts: addressing, connections, agent commands, and the
state of the step in progress. Shared by :mod:`engine`, :mod:`appsteps` and
:mod:`retransmissions`; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import AssertStep, Reference, SegmentPattern, SendStep, Step, WithholdStep
from .schedules import Schedule
from .segment import Segment
from .timing import Window

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
    """A command for the target's agent (see :mod:`conformance.inside.agent`)."""

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
class ActiveExpect:
    step: Step
    pattern: SegmentPattern
    window: Window
    description: str
    label: str | None = None
    bind: tuple[tuple[str, str], ...] = ()
    ref_index: int | None = None  # trace index of the reference event, set on start
    note: str = ""  # added to a failure message (e.g. how a schedule was derived)


@dataclass
class ActiveSilence:
    step: Step
    seconds: float
    description: str
    start: float | None = None
    note: str = ""


@dataclass
class ActiveApp:
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
class ActiveRetrans:
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


Active = SendStep | ActiveExpect | ActiveSilence | AssertStep | WithholdStep | ActiveApp | ActiveRetrans


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
