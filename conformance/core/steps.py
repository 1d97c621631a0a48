"""The engine's working parts: addressing, connections, agent commands, and how steps are described.
Shared by :mod:`~conformance.core.engine` and the judges (:mod:`~conformance.core.judges`); no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Bound, SegmentPattern, SendStep
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
    #: The prefix length of the target's IPv4 subnet, when the run knows it (its directed broadcast, core.ipfields).
    prefix: int | None = None
    #: The target's second address of this family, when it has one the run knows (``secondary``, core.ipfields).
    secondary: str | None = None

    def named(self) -> dict[str, str]:
        """The target's addresses by the names a case gives them (``primary``, ``secondary``)."""
        names = {"primary": self.target_ip}
        if self.secondary is not None:
            names["secondary"] = self.secondary
        return names

    def name_of(self, address: str) -> str | None:
        """The name of `address` among the target's (None: not one of them)."""
        return next((name for name, a in self.named().items() if a == address), None)


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
    cleaned_up: bool = False  # our cleanup RST went out at the end of the case
    #: The target's port: the service's, or learned from its SYN when its application connects.
    tport: int | None = None
    sock: int | None = None  # the agent's socket for this connection
    #: The target's address of this connection, when it is not the primary one: the secondary a send named
    #: (``ip: {dst: secondary}``), or the address the target's application connected from (RFC 9293 §3.9.1.1).
    taddr: str | None = None


def describe_send(s: SendStep) -> str:
    if s.icmp is not None:
        return f"send ICMP type {s.icmp.type} code {s.icmp.code} about {s.icmp.quote}"
    text = f"send {s.flags or '<none>'}"
    if s.seq is not None:
        text += f" seq={s.seq}"
    if s.ack is not None:
        text += f" ack={s.ack}"
    if s.length is not None:
        text += f" len={s.length} (at most {s.max_length})"
    elif s.data:
        text += f" len={len(s.data)}"
    if s.urgptr and "U" in s.flags:
        text += f" urgptr={s.urgptr}"
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
    if p.max_length is not None:
        v4, v6 = p.max_length
        parts.append(f"len<={v4}" if v4 == v6 else f"len<={v4} (IPv4), <={v6} (IPv6)")
    if p.window is not None:
        parts.append(f"win={p.window}")
    if p.urgptr is not None:
        parts.append(f"urgptr={p.urgptr}")
    if p.padding:
        parts.append("padding=zero")
    if p.data is not None:
        parts.append(f"data={p.data[:16]!r}" + ("..." if len(p.data) > 16 else ""))
    for o in p.options or ():
        if o.kind != "nop":
            parts.append(
                f"{o.kind} absent"
                if o.absent
                else f"{o.kind} present"
                if o.value is None
                else f"{o.kind} {o.value}"
                if isinstance(o.value, Bound)
                else f"{o.kind}={o.value}"
            )
    return f"expect {' '.join(parts) or 'any segment'} {w}"
