"""The case model: what a loaded case file is, independent of YAML.

A :class:`Case` is a dialogue of steps over one or more connections. Every step
keeps the line it came from so that failures can point at the case file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ipfields import IcmpSpec, IpSend
from .outcomes import Level
from .timing import Tolerance, Window
from .values import Expr

#: The conn of a step that concerns every connection of the case (a silence with no conn:).
ANY_CONN = "*"

#: Every requirement level, in order of strength (the words a case file may use).
LEVELS = tuple(Level)


@dataclass(frozen=True)
class Reference:
    """A documented behaviour a case checks: a document, a section, a level."""

    id: str
    doc: str
    level: Level
    says: str = ""
    #: For level "default": the stack whose documentation states the value (linux, freebsd ...).
    stack: str | None = None

    def cite(self) -> str:
        level = f"{self.stack} default" if self.level == Level.DEFAULT and self.stack else str(self.level)
        text = f"{self.doc} ({level}"
        if self.id and self.id not in self.doc:
            text += f", {self.id}"
        text += ")"
        return text


@dataclass(frozen=True)
class Bound:
    """``{max: ...}`` of an expected option: its value at most this, over IPv4 and over IPv6. Each bound is a
    number or a documented value's name plus or minus a number (``mms_r_ipv4-20``: see core.params)."""

    ipv4: Expr
    ipv6: Expr

    def of(self, ipv6: bool) -> Expr:
        return self.ipv6 if ipv6 else self.ipv4

    def __str__(self) -> str:
        if self.ipv4 == self.ipv6:
            return f"at most {self.ipv4}"
        return f"at most {self.ipv4} (IPv4), {self.ipv6} (IPv6)"


@dataclass(frozen=True)
class OptionSpec:
    """A TCP option we send, or one we expect (value None = present, any value; a :class:`Bound`: present, at most
    that; `absent`: must not be there)."""

    kind: str  # mss | wscale | sackok | timestamp | nop | eol
    value: object = None
    absent: bool = False  # expect only: the segment must not carry this option


@dataclass(frozen=True)
class SegmentPattern:
    """Fields of an expected segment; None means don't care."""

    flags: str | None = None  # required flags, canonical order
    flags_optional: str = ""  # flags that may or may not be set ("P?" in the case)
    seq: Expr | None = None
    ack: Expr | None = None
    window: int | None = None
    length: int | None = None
    #: The payload may be at most this long over IPv4, over IPv6 (``max_len``: a bound such as the MSS, which
    #: may differ by family, e.g. RFC 9293 MUST-15's 536 and 1220), rather than a length.
    max_length: tuple[int, int] | None = None
    data: bytes | None = None
    options: tuple[OptionSpec, ...] | None = None
    #: IP header fields to check (``ip: {ttl: 64}``: ttl, tos, id), see core.ipfields.
    ip: tuple[tuple[str, Expr], ...] | None = None
    #: The target's addresses the segment may come from, by name (``ip: {src: secondary}``: primary, secondary;
    #: core.ipfields), or None: not checked.
    src: tuple[str, ...] | None = None
    #: The source route the segment must carry (``ip: {options: {lsrr: [...]}}``, ``prober``: our address; RFC 9293
    #: MUST-53), or None: not checked (core.ipfields).
    route: tuple[str, ...] | None = None
    #: The urgent pointer field (``urgptr: N``, with U among the flags): SEG.SEQ + N is the octet after the urgent
    #: data (RFC 9293 §3.8.5, MUST-62).
    urgptr: int | None = None
    #: ``padding: zero``: the header octets after an EOL option must be zero (RFC 9293 §3.1, MUST-69); a segment
    #: without an EOL leaves the check not made.
    padding: bool = False
    #: Label of an earlier expect step whose observed flags, seq, ack and payload
    #: this pattern repeats (used for retransmissions).
    same_as: str | None = None


@dataclass(frozen=True)
class Step:
    line: int
    conn: str
    #: The refs id every check of the step answers to, when the step names one (``ref: ID``).
    ref: str | None
    #: A refs id per check (``ref: {ack: EP-DATA, within: MUST-40}``), by check name (see core.checks).
    check_refs: tuple[tuple[str, str], ...] = field(default=(), kw_only=True)


@dataclass(frozen=True)
class SendStep(Step):
    flags: str
    seq: Expr | None  # None: the connection's snd_nxt
    ack: Expr | None  # None: rcv_nxt when ACK is set, else 0
    window: int
    data: bytes
    options: tuple[OptionSpec, ...]
    #: Sent with a wrong TCP checksum (``checksum: bad``): a receiver must drop it (RFC 9293 §3.1, MUST-3).
    bad_checksum: bool = False
    #: The urgent pointer field (``urgptr: N``), read by the target when the flags hold URG.
    urgptr: int = 0
    #: An ICMP error to send instead of a segment (``icmp:``, see core.ipfields).
    icmp: IcmpSpec | None = None
    #: IPv4 header fields and named addresses of the segment (``ip:``, see core.ipfields).
    ip: IpSend | None = None
    #: ``len: w4`` (a bound name, e.g. a window to fill): the payload length, evaluated when the step plays; the
    #: step sends that many 'x' octets instead of `data`. ``max_len: N`` bounds it: a larger value ends the case
    #: with the remaining steps not checked (one segment of the case cannot carry it).
    length: Expr | None = None
    max_length: int = 0


@dataclass(frozen=True)
class ExpectStep(Step):
    pattern: SegmentPattern
    window_: Window
    label: str | None = None
    bind: tuple[tuple[str, str], ...] = ()  # (name, field)
    description: str = ""
    #: ``until: FIN`` or ``until: data``: every segment up to one with FIN (or with data) must match.
    until: str | None = None
    #: ``until: {ack: EXPR}``: every segment up to one that acknowledges EXPR (or beyond) must match.
    until_ack: Expr | None = None
    #: ``segments: {at_least: N, at_most: M}``: how many segments such a series may hold (a bound may be None).
    segments: tuple[int | None, int | None] | None = None
    #: ``repeats: judged``: a repeat of a segment already judged is compared with the pattern, even when it does not
    #: match and none of our ACKs covered it (by default such a repeat is passed over as one our late ACK caused).
    #: For an expect that waits for the target's own retransmission: we never sent the ACK it would answer.
    judge_repeats: bool = False


@dataclass(frozen=True)
class SilenceStep(Step):
    seconds: float
    description: str = ""
    #: ``repeats: judged``: a repeat of a segment already judged breaks the silence even when none of our ACKs
    #: covered it. By default such a repeat is taken as one our late ACK caused and passed over; a dialogue that
    #: withholds its ACK on purpose makes the repeat the target's own doing, so it asks for it to be judged.
    judge_repeats: bool = False


@dataclass(frozen=True)
class WithholdStep(Step):
    """Let time pass without answering while the target retransmits `retransmits`."""

    what: str
    retransmits: str  # label of an expect step
    schedule: str  # a name known to :mod:`conformance.core.schedules`
    count: int | None  # check only the first `count` retransmissions
    then_silence: bool  # after the last one, expect nothing until the schedule gives up


@dataclass(frozen=True)
class AssertStep(Step):
    """A check on bound values, e.g. that ISNs are not predictable."""

    check: str  # "unpredictable", "nondecreasing" or "outside"
    names: tuple[str, ...]
    #: ``nondecreasing``: the sequence expressions compared, in order (``a1+w1``: an ACK's right window edge);
    #: `names` are the names they use. ``outside``: the one expression judged (a bound window, ``w5``).
    exprs: tuple[Expr, ...] = ()
    #: ``outside: [w5, 1, 199]``: the value must lie outside this closed range of plain integers (low, high).
    span: tuple[int, int] = (0, 0)


#: Commands a case can give the target's application (see conformance.inside.agent).
APP_COMMANDS = ("listen", "accept", "connect", "send", "recv", "shutdown", "close", "setsockopt")
#: TCP states a case can assert, as RFC 9293 names them.
STATES = (
    "LISTEN",
    "SYN-SENT",
    "SYN-RECEIVED",
    "ESTABLISHED",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "CLOSE-WAIT",
    "CLOSING",
    "LAST-ACK",
    "TIME-WAIT",
    "CLOSED",
)


@dataclass(frozen=True)
class AppStep(Step):
    """The target's application does something (through the agent)."""

    do: str  # one of APP_COMMANDS
    args: tuple[tuple[str, object], ...]
    label: str | None
    wait: bool  # wait for the agent's answer before the next step
    at: float | None = None  # seconds after the previous event (None: at once)


@dataclass(frozen=True)
class AppResultStep(Step):
    """Check the answer of an earlier app step that did not wait (e.g. connect)."""

    of: str  # label of the app step
    ok: bool | None
    error: str | None
    window: Window | None  # None: whenever it came
    give_up: bool = False  # the window is the give-up time of the preceding withhold


@dataclass(frozen=True)
class StateStep(Step):
    """The target's TCP state of this connection is `state` (white box, through the agent)."""

    state: str
    #: How long the state must last from the previous event, then the 4-tuple is free:
    #: a duration in seconds, or the name of a documented parameter (e.g. time_wait).
    lasts: float | str | None = None


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    group: str
    path: str
    refs: tuple[Reference, ...]
    service: str  # which service of the target the case talks to (listen/banner/echo/http/closed/agent)
    steps: tuple[Step, ...]
    tolerance: Tolerance
    sysctls: dict[str, int] = field(default_factory=dict)
    description: str = ""
    tags: tuple[str, ...] = ()
    #: A self-test: the case must fail with a message containing this text.
    expect_failure: str | None = None

    def reference(self, ref_id: str | None) -> Reference | None:
        if ref_id is None:
            return self.refs[0] if self.refs else None
        for r in self.refs:
            if r.id == ref_id:
                return r
        return None

    @property
    def needs_agent(self) -> bool:
        """True when the case drives the target's application (state checks can be inferred without it)."""
        return any(isinstance(s, (AppStep, AppResultStep)) for s in self.steps)

    @property
    def needs_own_target(self) -> bool:
        """A case that changes the target's configuration gets a target of its own."""
        return bool(self.sysctls)

    def connections(self) -> list[str]:
        """The case's connections (each gets a source port and an ISN), in order of use."""
        seen: list[str] = []
        for s in self.steps:
            if s.conn == ANY_CONN or isinstance(s, AssertStep):
                continue
            if isinstance(s, AppStep) and s.do == "listen":
                continue
            if s.conn not in seen:
                seen.append(s.conn)
        return seen or ["main"]
